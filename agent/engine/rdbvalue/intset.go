package rdbvalue

import (
	"encoding/binary"
	"errors"
)

// Intset iterates over an intset (the compact encoding of small sets of
// integers): encoding (uint32 LE: 2, 4 or 8 bytes per integer), count
// (uint32 LE), the integers (signed, little endian). See the contract of
// the compact encodings (compact.go).
type Intset struct {
	b []byte // the integers
	w int    // bytes per integer
	i int    // next integer
}

// OpenIntset checks the header of the intset b (a known width, and a
// count that matches the size) and returns an iterator at its first
// integer.
func OpenIntset(b []byte) (Intset, error) {
	if len(b) < 8 {
		return Intset{}, errors.New("short intset")
	}
	w := binary.LittleEndian.Uint32(b)
	n := binary.LittleEndian.Uint32(b[4:])
	if (w != 2 && w != 4 && w != 8) || uint64(n)*uint64(w) != uint64(len(b)-8) {
		return Intset{}, errors.New("bad intset header")
	}
	return Intset{b: b[8:], w: int(w)}, nil
}

// Len returns the number of integers (checked by OpenIntset).
func (is *Intset) Len() int {
	if is.w == 0 {
		return 0
	}
	return len(is.b) / is.w
}

// Next returns the next integer; ok is false at the end.
func (is *Intset) Next() (v int64, ok bool) {
	p := is.b[is.i:]
	switch {
	case len(p) == 0:
		return 0, false
	case is.w == 2:
		v = int64(int16(binary.LittleEndian.Uint16(p)))
	case is.w == 4:
		v = int64(int32(binary.LittleEndian.Uint32(p)))
	default:
		v = int64(binary.LittleEndian.Uint64(p))
	}
	is.i += is.w
	return v, true
}
