package rdbvalue

import (
	"encoding/binary"
	"errors"
)

// Ziplist iterates over a ziplist (the compact encoding before Redis 7.0):
// zlbytes (uint32 LE), zltail (uint32 LE), zllen (uint16 LE, 65535 when
// not known), entries, 0xFF. An entry is prevlen (1 byte, or 0xFE and a
// uint32), an encoding and its data. See the contract of the compact
// encodings (compact.go).
type Ziplist struct{ entries }

// OpenZiplist checks the header of the ziplist b and returns an iterator
// at its first entry.
func OpenZiplist(b []byte) (Ziplist, error) {
	if len(b) < 11 || binary.LittleEndian.Uint32(b) != uint32(len(b)) ||
		binary.LittleEndian.Uint32(b[4:]) >= uint32(len(b)) || b[len(b)-1] != 0xff {
		return Ziplist{}, errors.New("bad ziplist header")
	}
	return Ziplist{newEntries(b, 10, binary.LittleEndian.Uint16(b[8:]))}, nil
}

// Next returns the next entry: a string s, or an integer v (isInt). ok is
// false at the end, and on an error (err non-nil), which includes a count
// that does not match the header's.
func (zl *Ziplist) Next() (s []byte, v int64, isInt, ok bool, err error) {
	if s, v, isInt, ok := zl.ziplistShort(); ok {
		return s, v, isInt, true, nil
	}
	b := zl.b
	end := len(b) - 1
	i := zl.i
	if i >= end {
		return nil, 0, false, false, zl.endErr("ziplist")
	}
	switch b[i] { // prevlen
	case 0xfe:
		i += 5
	case 0xff:
		return nil, 0, false, false, errors.New("bad ziplist prevlen")
	default:
		i++
	}
	if i >= end {
		return nil, 0, false, false, errZLTrunc
	}
	e := b[i]
	n := -1 // string length, -1 for an integer
	switch e >> 6 {
	case 0: // string of up to 63 bytes
		n = int(e & 0x3f)
		i++
	case 1: // string of up to 16383 bytes
		if i+2 > end {
			return nil, 0, false, false, errZLTrunc
		}
		n = int(e&0x3f)<<8 | int(b[i+1])
		i += 2
	case 2: // string with a 32-bit length
		if e != 0x80 || i+5 > end {
			return nil, 0, false, false, errors.New("bad ziplist entry encoding")
		}
		u := binary.BigEndian.Uint32(b[i+1:])
		if u > uint32(end) {
			return nil, 0, false, false, errZLTrunc
		}
		n = int(u)
		i += 5
	default: // an integer
		i++
		w := 0
		switch e {
		case 0xc0:
			w = 2
		case 0xd0:
			w = 4
		case 0xe0:
			w = 8
		case 0xf0:
			w = 3
		case 0xfe:
			w = 1
		default:
			if e < 0xf1 || e > 0xfd {
				return nil, 0, false, false, errors.New("bad ziplist entry encoding")
			}
			v = int64(e&0x0f) - 1 // 0 to 12 in the encoding itself
		}
		if w > end-i {
			return nil, 0, false, false, errZLTrunc
		}
		if w > 0 {
			v = leInt(b[i:], w)
		}
		zl.i = i + w
		zl.got++
		return nil, v, true, true, nil
	}
	if n > end-i {
		return nil, 0, false, false, errZLTrunc
	}
	zl.i = i + n
	zl.got++
	return b[i : i+n : i+n], 0, false, true, nil
}

// ziplistShort is Next for the commonest entries, small enough to be inlined
// in a caller's loop: after a 1-byte prevlen, a string of up to 63 bytes
// or an integer from 0 to 12; ok is false for anything else, which Next
// handles (these two forms too, after a 5-byte prevlen).
func (zl *entries) ziplistShort() (s []byte, v int64, isInt, ok bool) {
	b := zl.b[zl.i:] // the entry, then the rest and the end byte
	if len(b) < 3 || b[0] >= 0xfe {
		return
	}
	e := int(b[1]) // a string length, or an immediate integer + 0xF1
	if e < 0x40 && e+2 < len(b) {
		s = b[2 : 2+e : 2+e]
	} else if e -= 0xf1; uint(e) < 13 { // 0xF1 to 0xFD: 0 to 12
		v, isInt = int64(e), true
	} else {
		return
	}
	zl.i += 2 + len(s)
	zl.got++
	ok = true
	return
}
