package engine

import (
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// Keys whose first 64 bits of hash agree are distinct keys: both are kept,
// and each is a repeat of itself only.
func TestSeenSetKeepsKeysWhoseFirst64BitsCollide(t *testing.T) {
	s := newHashSet()
	// Every key gets the same low half (same table, same home slot); the
	// high half differs by key.
	s.hash = func(k []byte) hash128 {
		h := hash128{lo: 0x9e3779b97f4a7c15}
		for _, c := range k {
			h.hi = h.hi*31 + uint64(c) + 1
		}
		return h
	}
	keys := []string{"a", "b", "user:1", "user:2", "user:3"}
	for _, k := range keys {
		if !s.add([]byte(k)) {
			t.Fatalf("%q taken for a repeat: a collision of 64 bits merged two keys", k)
		}
	}
	for _, k := range keys {
		if s.add([]byte(k)) {
			t.Fatalf("repeat of %q not detected", k)
		}
	}
	if s.Len() != len(keys) {
		t.Fatalf("len %d, want %d", s.Len(), len(keys))
	}

	// The real hash too: the two 64-bit halves come from different seeds.
	r := newHashSet()
	if r.seeds[0] == r.seeds[1] {
		t.Fatal("both halves of the hash use one seed")
	}
}

// The hash that marks an empty slot is still a key.
func TestSeenSetKeepsTheZeroHash(t *testing.T) {
	s := newHashSet()
	s.hash = func(k []byte) hash128 {
		if string(k) == "zero" {
			return hash128{}
		}
		return hash128{lo: 1, hi: uint64(len(k))}
	}
	if !s.add([]byte("zero")) || s.add([]byte("zero")) || !s.add([]byte("other")) {
		t.Fatal("the zero hash is not kept like any other")
	}
}

// The set's memory at a million keys, measured: logged, with the table
// sizes checked against the 80 % load bound.
func TestSeenSetMemoryAtAMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newHashSet()
	buf := make([]byte, 0, 32)
	for i := 0; i < n; i++ {
		buf = strconv.AppendInt(append(buf[:0], "user:session:"...), int64(i), 10)
		s.add(buf)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.Len() != n {
		t.Fatalf("len %d", s.Len())
	}
	slots := 0
	for i := range s.shards {
		slots += len(s.shards[i].slots)
	}
	tables := slots * int(unsafe.Sizeof(seenSlot{}))
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("seen-key set, %d keys: heap %.1f bytes a key, %.1f MiB (tables %.1f bytes a key, %.1f MiB); %.1f MiB allocated while growing",
		n, float64(heap)/n, float64(heap)/(1<<20), float64(tables)/n, float64(tables)/(1<<20),
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if perKey := float64(tables) / n; perKey > 19.5 || perKey < 15 {
		t.Fatalf("tables of %.1f bytes a key", perKey)
	}
	runtime.KeepAlive(s)
}

// BenchmarkSeenSetAdd adds a million distinct keys per iteration, as the
// scanner does for a million-key keyspace.
func BenchmarkSeenSetAdd(b *testing.B) {
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
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/key")
}

// BenchmarkSeenSetRepeat adds keys already in a set of a million: what a
// SCAN that returns keys again costs.
func BenchmarkSeenSetRepeat(b *testing.B) {
	keys := make([][]byte, 1_000_000)
	s := newHashSet()
	for i := range keys {
		keys[i] = []byte("user:session:" + strconv.Itoa(i))
		s.add(keys[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if s.add(keys[i]) {
			b.Fatal("a repeat taken for a new key")
		}
		if i++; i == len(keys) {
			i = 0
		}
	}
}
