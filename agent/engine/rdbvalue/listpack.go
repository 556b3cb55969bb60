package rdbvalue

import (
	"encoding/binary"
	"errors"
)

// Listpack iterates over a listpack (the compact encoding of small
// hashes, sets, sorted sets, list nodes and stream nodes from Redis 7.0):
// total bytes (uint32 LE), element count (uint16 LE, 65535 when not
// known), entries, 0xFF. An entry is an encoding byte, maybe more length
// bytes, the data, and a backlen of 1 to 5 bytes. See the contract of the
// compact encodings (compact.go).
type Listpack struct{ entries }

// OpenListpack checks the header of the listpack b and returns an
// iterator at its first entry.
func OpenListpack(b []byte) (Listpack, error) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return Listpack{}, errors.New("bad listpack header")
	}
	return Listpack{newEntries(b, 6, binary.LittleEndian.Uint16(b[4:]))}, nil
}

// Next returns the next entry: a string s, or an integer v (isInt). ok is
// false at the end, and on an error (err non-nil), which includes a count
// that does not match the header's.
func (lp *Listpack) Next() (s []byte, v int64, isInt, ok bool, err error) {
	if s, v, isInt, ok := lp.listpackShort(); ok {
		return s, v, isInt, true, nil
	}
	b := lp.b
	end := len(b) - 1
	i := lp.i
	if i >= end {
		return nil, 0, false, false, lp.endErr("listpack")
	}
	e := b[i]
	hdr, n := 1, -1 // header bytes; string length or -1 for an integer
	switch {
	case e < 0xc0: // the forms of listpackShort, cut short by the end
		return nil, 0, false, false, errLPTrunc
	case e&0xe0 == 0xc0: // 13-bit signed integer
		if i+2 > end {
			return nil, 0, false, false, errLPTrunc
		}
		hdr = 2
		v = int64(uint16(e&0x1f)<<8 | uint16(b[i+1]))
		if v >= 1<<12 {
			v -= 1 << 13
		}
	case e&0xf0 == 0xe0: // string of up to 4095 bytes
		if i+2 > end {
			return nil, 0, false, false, errLPTrunc
		}
		hdr, n = 2, int(e&0x0f)<<8|int(b[i+1])
	case e == 0xf0: // string with a 32-bit length
		if i+5 > end {
			return nil, 0, false, false, errLPTrunc
		}
		u := binary.LittleEndian.Uint32(b[i+1:])
		if u > uint32(end) {
			return nil, 0, false, false, errLPTrunc
		}
		hdr, n = 5, int(u)
	case e >= 0xf1 && e <= 0xf4: // 16, 24, 32 or 64-bit signed integer
		w := [...]int{2, 3, 4, 8}[e-0xf1]
		if i+1+w > end {
			return nil, 0, false, false, errLPTrunc
		}
		v = leInt(b[i+1:], w)
		hdr = 1 + w
	default:
		return nil, 0, false, false, errors.New("bad listpack entry encoding")
	}
	size := hdr
	if n > 0 {
		size += n
	}
	total := size + backlenSize(size)
	if total > end-i {
		return nil, 0, false, false, errLPTrunc
	}
	lp.i = i + total
	lp.got++
	if n >= 0 {
		return b[i+hdr : i+hdr+n : i+hdr+n], 0, false, true, nil
	}
	return nil, v, true, true, nil
}

// listpackShort is Next for the commonest entries, a 7-bit unsigned integer
// or a string of up to 63 bytes (with a 1-byte backlen), small enough to
// be inlined in a caller's loop; ok is false for anything else (another
// form, the end, an entry cut short), which Next handles.
func (lp *entries) listpackShort() (s []byte, v int64, isInt, ok bool) {
	b := lp.b[lp.i:] // the entry, then the rest and the end byte
	if len(b) < 3 {
		return
	}
	if e := b[0]; e < 0x80 {
		v, isInt = int64(e), true
	} else if n := int(e) - 0x80; n < 0x40 && n+2 < len(b) {
		s = b[1 : 1+n : 1+n]
	} else {
		return
	}
	lp.i += 2 + len(s)
	lp.got++
	return s, v, isInt, true
}

// backlenSize is the size of the backlen of an entry of l bytes
// (lpEncodeBacklen: note the upper bounds exclude 2^k-1).
func backlenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// leInt reads a little-endian signed integer of w (1, 2, 3, 4 or 8)
// bytes from the start of p, which holds at least w bytes.
func leInt(p []byte, w int) int64 {
	switch w {
	case 1:
		return int64(int8(p[0]))
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(p)))
	case 3:
		return int64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8)
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(p)))
	}
	return int64(binary.LittleEndian.Uint64(p))
}
