// The seen-key set: the scanner drops the keys that SCAN returns more than
// once.

package engine

import "hash/maphash"

// hashSet remembers which keys a SCAN has returned, by a 96-bit hash of
// each instead of the key itself: a 64-bit hash/maphash hash and 32 bits of
// a second one under an independent random seed, both drawn anew for every
// set.
//
// A key is taken for a repeat only when all 96 bits match a key seen
// before; keys whose first 64 bits agree are both kept (the probe compares
// the whole hash). Two distinct keys are merged only if both hashes collide
// at once: about n²/2^97 per dump, 6e-18 for a million keys, 6e-14 for a
// hundred million and 1e-10 for 2^32 (more keys than one Redis database
// holds), and the seeds change every run, so no set of key names collides
// on every run. With 64 bits that was n²/2^65 (3e-8 for a million keys):
// rare, but not negligible over many agents and many runs, and a merged key
// is silently missing from the archive. (128 bits, 16-byte slots, cost a
// third more memory for no safety that matters.)
//
// The hashes live in 1024 open-addressing tables chosen by the hash's top
// bits, each grown by a quarter when it is 80 % full: 12 bytes a slot,
// 15–19.5 bytes a key (about 17 MB at a million keys), and a growth copies
// one small table instead of the whole set.
type hashSet struct {
	seeds [2]maphash.Seed
	// hash, when set, replaces maphash (tests force collisions with it).
	hash   func([]byte) hash128
	shards [hashShards]hashShard
	n      int
}

// hash128 is a key's hash as computed. lo chooses the table (top bits) and
// the home slot in it (low 32 bits); the set keeps lo and the low 32 bits of
// hi.
type hash128 struct{ lo, hi uint64 }

// seenSlot is a stored hash: lo's two halves and hi's low half (12 bytes,
// where a struct of a uint64 and a uint32 would be padded to 16). The zero
// value marks an empty slot.
type seenSlot [3]uint32

const hashShardBits = 10
const hashShards = 1 << hashShardBits

// hashShard is one linear-probing table. A hash's home slot is its low 32
// bits scaled to the table's length, so the length need not be a power of
// two.
type hashShard struct {
	slots []seenSlot
	n     int
}

func newHashSet() *hashSet {
	return &hashSet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// add records k and reports whether it was new.
func (s *hashSet) add(k []byte) bool {
	var h hash128
	if s.hash != nil {
		h = s.hash(k)
	} else {
		h = hash128{maphash.Bytes(s.seeds[0], k), maphash.Bytes(s.seeds[1], k)}
	}
	v := seenSlot{uint32(h.lo), uint32(h.lo >> 32), uint32(h.hi)}
	if v == (seenSlot{}) {
		v[2] = 1 // the empty mark
	}
	sh := &s.shards[h.lo>>(64-hashShardBits)]
	if (sh.n+1)*5 > len(sh.slots)*4 {
		sh.grow()
	}
	if sh.insert(v) {
		sh.n++
		s.n++
		return true
	}
	return false
}

func (sh *hashShard) insert(h seenSlot) bool {
	n := uint64(len(sh.slots))
	for i := (uint64(h[0]) * n) >> 32; ; {
		switch sh.slots[i] {
		case seenSlot{}:
			sh.slots[i] = h
			return true
		case h:
			return false
		}
		if i++; i == n {
			i = 0
		}
	}
}

func (sh *hashShard) grow() {
	old := sh.slots
	sh.slots = make([]seenSlot, len(old)+len(old)/4+16)
	for _, h := range old {
		if h != (seenSlot{}) {
			sh.insert(h)
		}
	}
}

// Len returns the number of distinct keys added.
func (s *hashSet) Len() int { return s.n }
