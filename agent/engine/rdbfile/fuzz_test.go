package rdbfile

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReader feeds mutated RDB files to the Reader: it must never panic,
// break its event invariants or allocate beyond its limits, whatever the
// input. The seeds are the committed real files and the synthetic ones,
// each also with its checksum zeroed (not checked), so that mutations
// that keep the structure read to the end, where the raw bytes of every
// value must read back as the same value.
func FuzzReader(f *testing.F) {
	seeds := [][]byte{}
	for _, b := range testdataFiles(f) {
		seeds = append(seeds, b)
	}
	old, _ := oldFile()
	seeds = append(seeds, old, newerRedisFile(), newerValkeyFile())
	for _, b := range seeds {
		f.Add(b)
		z := bytes.Clone(b)
		clear(z[len(z)-8:])
		f.Add(z)
	}
	opts := Options{MaxChunkElems: 3, MaxChunkBytes: 50, MaxBlobBytes: 1 << 20, MaxElemBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := collect(bytes.NewReader(data), collectOpts{Options: opts})
		var ie *invariantError
		if errors.As(err, &ie) {
			t.Fatal(err)
		}
		mixed, err2 := collect(bytes.NewReader(data), collectOpts{Options: opts, mode: modeMixed, walk: true})
		if errors.As(err2, &ie) {
			t.Fatal(err2)
		}
		if err != nil {
			return
		}
		if err2 != nil {
			// raw and skip check only the framing: they accept more, never less
			t.Fatalf("parsed fine, mixed mode fails: %v", err2)
		}
		raw, err := collect(bytes.NewReader(data), collectOpts{Options: opts, mode: modeRaw})
		if err != nil {
			t.Fatalf("parsed fine, raw fails: %v", err)
		}
		if err := checkRawRoundTrip(m.Header, m, raw, opts); err != nil {
			t.Fatal(err)
		}
		_ = mixed
	})
}
