// The seen-key set: the scanner drops the keys that SCAN returns more than
// once.

package engine

import "hash/maphash"

// hashSet remembers which keys a SCAN has returned, by a 128-bit hash of
// each instead of the key itself: two 64-bit hash/maphash hashes under two
// independent random seeds, drawn anew for every set.
//
// A key is taken for a repeat only when all 128 bits match a key seen
// before; keys whose first 64 bits agree are both kept (the probe compares
// the whole hash). Two distinct keys are merged only if both hashes collide
// at once: about n²/2^129 per dump, 1.5e-27 for a million keys and 2.7e-20
// for 2^32 (more keys than one Redis database holds), and the seeds change
// every run, so no set of key names collides on every run. With 64 bits
// that was n²/2^65 (3e-8 for a million keys): rare, but not negligible over
// many agents and many runs, and a merged key is silently missing from the
// archive.
//
// The hashes live in 1024 open-addressing tables chosen by the hash's top
// bits, each grown by a quarter when it is 80 % full: 16 bytes a slot,
// about 20–25 bytes a key (25 MB at a million keys), and a growth copies
// one small table instead of the whole set.
type hashSet struct {
	seeds [2]maphash.Seed
	// hash, when set, replaces maphash (tests force collisions with it).
	hash   func([]byte) hash128
	shards [hashShards]hashShard
	n      int
}

// hash128 is a key's hash. lo chooses the table (top bits) and the home
// slot in it (low 32 bits); the zero value marks an empty slot.
type hash128 struct{ lo, hi uint64 }

const hashShardBits = 10
const hashShards = 1 << hashShardBits

// hashShard is one linear-probing table. A hash's home slot is its low 32
// bits scaled to the table's length, so the length need not be a power of
// two.
type hashShard struct {
	slots []hash128
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
	if h == (hash128{}) {
		h.hi = 1 // the empty mark
	}
	sh := &s.shards[h.lo>>(64-hashShardBits)]
	if (sh.n+1)*5 > len(sh.slots)*4 {
		sh.grow()
	}
	if sh.insert(h) {
		sh.n++
		s.n++
		return true
	}
	return false
}

func (sh *hashShard) insert(h hash128) bool {
	n := uint64(len(sh.slots))
	for i := (uint64(uint32(h.lo)) * n) >> 32; ; {
		switch sh.slots[i] {
		case hash128{}:
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
	sh.slots = make([]hash128, len(old)+len(old)/4+16)
	for _, h := range old {
		if h != (hash128{}) {
			sh.insert(h)
		}
	}
}

// Len returns the number of distinct keys added.
func (s *hashSet) Len() int { return s.n }
