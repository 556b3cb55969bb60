package rdbvalue

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// randomElems returns elements of every listpack and ziplist form: strings
// around each length boundary, integers around each width.
func randomElems(rng *rand.Rand, n int) []elem {
	lens := []int{0, 1, 63, 64, 253, 254, 300, 4095, 4096, 16383, 16384}
	ints := []int64{0, 12, 13, 127, 128, -4096, 4095, 4096, math.MinInt16, math.MaxInt16,
		-1 << 23, 1<<23 - 1, 1 << 23, math.MinInt32, math.MaxInt32, math.MinInt64, math.MaxInt64}
	es := make([]elem, n)
	for i := range es {
		if rng.IntN(2) == 0 {
			es[i] = num(ints[rng.IntN(len(ints))] + int64(rng.IntN(3)) - 1)
		} else {
			es[i] = str(strings.Repeat("x", lens[rng.IntN(len(lens))]))
		}
	}
	return es
}

// entryIter is a Listpack or a Ziplist.
type entryIter interface {
	Next() (s []byte, v int64, isInt, ok bool, err error)
}

// drain reads all entries as text (with only Next, or as Decode does with
// the inlined fast path first), checking that strings lie within blob.
func drain(t *testing.T, blob []byte, it entryIter, short func() ([]byte, int64, bool, bool)) ([]string, error) {
	var out []string
	for {
		s, v, isInt, ok := []byte(nil), int64(0), false, false
		if short != nil {
			s, v, isInt, ok = short()
		}
		if !ok {
			var err error
			if s, v, isInt, ok, err = it.Next(); !ok {
				return out, err
			}
		}
		if isInt {
			out = append(out, num(v).text())
			continue
		}
		if cap(s) != len(s) {
			t.Fatalf("string entry with capacity %d > length %d", cap(s), len(s))
		}
		if len(s) > 0 {
			p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
			b := uintptr(unsafe.Pointer(unsafe.SliceData(blob)))
			if p < b || p+uintptr(len(s)) > b+uintptr(len(blob)) {
				t.Fatal("string entry outside the blob")
			}
		}
		out = append(out, string(s))
	}
}

// TestCompactIterators: listpacks and ziplists of every form read back, the
// same with and without the fast path; any prefix or mutation of them reads
// without a panic or a string outside the blob.
func TestCompactIterators(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for iter := range 200 {
		es := randomElems(rng, rng.IntN(40))
		want := texts(es)
		for _, format := range []string{"listpack", "ziplist"} {
			blob := buildListpack(es)
			open := func(b []byte) (entryIter, func() ([]byte, int64, bool, bool), error) {
				lp, err := OpenListpack(b)
				return &lp, lp.listpackShort, err
			}
			if format == "ziplist" {
				blob = buildZiplist(es)
				open = func(b []byte) (entryIter, func() ([]byte, int64, bool, bool), error) {
					zl, err := OpenZiplist(b)
					return &zl, zl.ziplistShort, err
				}
			}
			for _, fast := range []bool{false, true} {
				it, short, err := open(blob)
				if err != nil {
					t.Fatalf("iter %d %s: %v", iter, format, err)
				}
				if !fast {
					short = nil
				}
				got, err := drain(t, blob, it, short)
				if err != nil || !slices.Equal(got, want) {
					t.Fatalf("iter %d %s fast=%v: %v, %d of %d entries", iter, format, fast, err, len(got), len(want))
				}
			}
			for range 20 {
				bad := slices.Clone(blob)
				if rng.IntN(2) == 0 {
					bad = bad[:rng.IntN(len(bad))]
				} else {
					bad[rng.IntN(len(bad))] = byte(rng.Uint32())
				}
				if it, short, err := open(bad); err == nil {
					drain(t, bad, it, short)
				}
			}
		}
	}
}

func TestIntsetIterator(t *testing.T) {
	for _, in := range [][]int64{ // widths 2, 4 and 8
		{-7, 0, 5},
		{math.MinInt32, -7, 0, 5, math.MaxInt16 + 1},
		{math.MinInt64, -1 << 40, 5, math.MaxInt64},
	} {
		is, err := OpenIntset(buildIntset(in))
		if err != nil {
			t.Fatal(err)
		}
		if is.Len() != len(in) {
			t.Fatalf("Len %d, want %d", is.Len(), len(in))
		}
		var got []int64
		for v, ok := is.Next(); ok; v, ok = is.Next() {
			got = append(got, v)
		}
		if !slices.Equal(got, in) {
			t.Fatalf("got %v, want %v", got, in)
		}
	}
	b := buildIntset([]int64{1, 2, 3})
	for _, bad := range [][]byte{b[:7], b[:len(b)-1], append([]byte{3}, b[1:]...)} {
		if _, err := OpenIntset(bad); err == nil {
			t.Errorf("intset % x accepted", bad)
		}
	}
}

func TestZipmapIterator(t *testing.T) {
	// 2 pairs: "a" -> "bc" (1 free byte), "" -> 300 x's.
	zm := []byte{2, 1, 'a', 2, 1, 'b', 'c', 0, 0, 254, 44, 1, 0, 0, 0}
	zm = append(append(zm, strings.Repeat("x", 300)...), 0xff)
	it, err := OpenZipmap(zm)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		f, v, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, string(f), string(v))
	}
	if want := []string{"a", "bc", "", strings.Repeat("x", 300)}; !slices.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
	for n := range len(zm) - 1 { // every prefix, with the end byte put back
		bad := append(slices.Clone(zm[:n]), 0xff)
		it, err := OpenZipmap(bad)
		if err != nil {
			continue
		}
		for {
			if _, _, ok, err := it.Next(); !ok || err != nil {
				break
			}
		}
	}
}
