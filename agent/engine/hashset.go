package engine

import "hash/maphash"

// hashSet remembers which keys a SCAN has returned, by a 64-bit hash with a
// random seed per set (hash/maphash), in an open-addressing table: 8 bytes a
// key at most 2x overhead, instead of the keys themselves. Two different keys
// with the same hash would make the second look like a repeat; with a random
// 64-bit hash the chance is about n²/2^65 per dump (3e-8 for a million keys),
// and it differs from run to run.
type hashSet struct {
	seed  maphash.Seed
	slots []uint64 // 0 marks an empty slot
	n     int
}

func newHashSet() *hashSet {
	return &hashSet{seed: maphash.MakeSeed(), slots: make([]uint64, 1024)}
}

// add records k and reports whether it was new.
func (s *hashSet) add(k []byte) bool {
	h := maphash.Bytes(s.seed, k)
	if h == 0 {
		h = 1
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	if s.insert(h) {
		s.n++
		return true
	}
	return false
}

func (s *hashSet) insert(h uint64) bool {
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = h
			return true
		case h:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
}

// Len returns the number of distinct keys added.
func (s *hashSet) Len() int { return s.n }
