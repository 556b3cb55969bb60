package engine

import (
	"strconv"
	"testing"
)

// BenchmarkHashSetAdd adds a million distinct keys per iteration, as the
// scanner does for a million-key keyspace.
func BenchmarkHashSetAdd(b *testing.B) {
	keys := make([][]byte, 1_000_000)
	for i := range keys {
		keys[i] = []byte("user:session:" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s := newHashSet()
		for _, k := range keys {
			s.add(k)
		}
	}
}
