package engine

import "hash/maphash"

// hashSet remembers which keys a SCAN has returned, by a 64-bit hash with a
// random seed per set (hash/maphash), instead of the keys themselves. Two
// different keys with the same hash would make the second look like a
// repeat; with a random 64-bit hash the chance is about n²/2^65 per dump
// (3e-8 for a million keys), and it differs from run to run.
//
// The hashes live in 1024 open-addressing tables chosen by the hash's top
// bits, each grown by a quarter when it is 80 % full: about 10–12.5 bytes a
// key, and a growth copies one small table instead of the whole set (one
// table of 8 bytes a slot doubling at a million keys held 16 MB and, while
// it grew, 24 MB).
type hashSet struct {
	seed   maphash.Seed
	shards [hashShards]hashShard
	n      int
}

const hashShardBits = 10
const hashShards = 1 << hashShardBits

// hashShard is one linear-probing table; 0 marks an empty slot. A hash's
// home slot is its low 32 bits scaled to the table's length, so the length
// need not be a power of two.
type hashShard struct {
	slots []uint64
	n     int
}

func newHashSet() *hashSet {
	return &hashSet{seed: maphash.MakeSeed()}
}

// add records k and reports whether it was new.
func (s *hashSet) add(k []byte) bool {
	h := maphash.Bytes(s.seed, k)
	if h == 0 {
		h = 1
	}
	sh := &s.shards[h>>(64-hashShardBits)]
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

func (sh *hashShard) insert(h uint64) bool {
	n := uint64(len(sh.slots))
	for i := (uint64(uint32(h)) * n) >> 32; ; {
		switch sh.slots[i] {
		case 0:
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
	sh.slots = make([]uint64, len(old)+len(old)/4+16)
	for _, h := range old {
		if h != 0 {
			sh.insert(h)
		}
	}
}

// Len returns the number of distinct keys added.
func (s *hashSet) Len() int { return s.n }
