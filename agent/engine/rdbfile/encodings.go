package rdbfile

import (
	"encoding/binary"
	"errors"
)

// Iterators over the compact encodings that an RDB stores as one string
// (a blob): listpack, ziplist, intset and zipmap. They never read outside
// the blob; their errors are plain descriptions that the Reader wraps
// with ErrCorrupt and the offset.

var (
	errLPTrunc = errors.New("truncated listpack entry")
	errZLTrunc = errors.New("truncated ziplist entry")
)

// listpack: total bytes (uint32 LE), element count (uint16 LE, 65535 when
// not known), entries, 0xFF. An entry is an encoding byte, maybe more
// length bytes, the data, and a backlen of 1 to 5 bytes.
type listpack struct {
	b    []byte
	i    int // next entry
	want int // declared count, -1 when unknown
	got  int
}

func openListpack(b []byte) (listpack, error) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != uint32(len(b)) || b[len(b)-1] != 0xff {
		return listpack{}, errors.New("bad listpack header")
	}
	want := int(binary.LittleEndian.Uint16(b[4:]))
	if want == 0xffff {
		want = -1
	}
	return listpack{b: b, i: 6, want: want}, nil
}

// next returns the next entry: a string s, or an integer v (isInt). ok is
// false at the end (after which err reports a count mismatch, if any).
func (lp *listpack) next() (s []byte, v int64, isInt, ok bool, err error) {
	b := lp.b
	end := len(b) - 1
	i := lp.i
	if i >= end {
		if i != end {
			return nil, 0, false, false, errors.New("listpack overrun")
		}
		if lp.want >= 0 && lp.want != lp.got {
			return nil, 0, false, false, errors.New("listpack element count does not match its header")
		}
		return nil, 0, false, false, nil
	}
	e := b[i]
	hdr, n := 1, -1 // header bytes; string length or -1 for an integer
	trunc := errLPTrunc
	switch {
	case e&0x80 == 0:
		v = int64(e)
	case e&0xc0 == 0x80:
		n = int(e & 0x3f)
	case e&0xe0 == 0xc0:
		if i+2 > end {
			return nil, 0, false, false, trunc
		}
		hdr = 2
		v = int64(uint16(e&0x1f)<<8 | uint16(b[i+1]))
		if v >= 1<<12 {
			v -= 1 << 13
		}
	case e&0xf0 == 0xe0:
		if i+2 > end {
			return nil, 0, false, false, trunc
		}
		hdr, n = 2, int(e&0x0f)<<8|int(b[i+1])
	case e == 0xf0:
		if i+5 > end {
			return nil, 0, false, false, trunc
		}
		u := binary.LittleEndian.Uint32(b[i+1:])
		if u > uint32(end) {
			return nil, 0, false, false, trunc
		}
		hdr, n = 5, int(u)
	case e >= 0xf1 && e <= 0xf4:
		w := [...]int{2, 3, 4, 8}[e-0xf1]
		if i+1+w > end {
			return nil, 0, false, false, trunc
		}
		p := b[i+1:]
		switch w {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(p)))
		case 3:
			v = int64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8)
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(p)))
		default:
			v = int64(binary.LittleEndian.Uint64(p))
		}
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
		return nil, 0, false, false, trunc
	}
	lp.i = i + total
	lp.got++
	if n >= 0 {
		return b[i+hdr : i+hdr+n : i+hdr+n], 0, false, true, nil
	}
	return nil, v, true, true, nil
}

// backlenSize is the size of the backlen of an entry of l bytes
// (lpEncodeBacklen).
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

// ziplist: zlbytes (uint32 LE), zltail (uint32 LE), zllen (uint16 LE,
// 65535 when not known), entries, 0xFF. An entry is prevlen (1 byte, or
// 0xFE and a uint32), an encoding and its data.
type ziplist struct {
	b    []byte
	i    int
	want int
	got  int
}

func openZiplist(b []byte) (ziplist, error) {
	if len(b) < 11 || binary.LittleEndian.Uint32(b) != uint32(len(b)) ||
		binary.LittleEndian.Uint32(b[4:]) >= uint32(len(b)) || b[len(b)-1] != 0xff {
		return ziplist{}, errors.New("bad ziplist header")
	}
	want := int(binary.LittleEndian.Uint16(b[8:]))
	if want == 0xffff {
		want = -1
	}
	return ziplist{b: b, i: 10, want: want}, nil
}

func (zl *ziplist) next() (s []byte, v int64, isInt, ok bool, err error) {
	b := zl.b
	end := len(b) - 1
	i := zl.i
	if i >= end {
		if i != end {
			return nil, 0, false, false, errors.New("ziplist overrun")
		}
		if zl.want >= 0 && zl.want != zl.got {
			return nil, 0, false, false, errors.New("ziplist element count does not match its header")
		}
		return nil, 0, false, false, nil
	}
	trunc := errZLTrunc
	switch b[i] {
	case 0xfe:
		i += 5
	case 0xff:
		return nil, 0, false, false, errors.New("bad ziplist prevlen")
	default:
		i++
	}
	if i >= end {
		return nil, 0, false, false, trunc
	}
	e := b[i]
	n := -1
	switch e >> 6 {
	case 0:
		n = int(e & 0x3f)
		i++
	case 1:
		if i+2 > end {
			return nil, 0, false, false, trunc
		}
		n = int(e&0x3f)<<8 | int(b[i+1])
		i += 2
	case 2:
		if e != 0x80 || i+5 > end {
			return nil, 0, false, false, errors.New("bad ziplist entry encoding")
		}
		u := binary.BigEndian.Uint32(b[i+1:])
		if u > uint32(end) {
			return nil, 0, false, false, trunc
		}
		n = int(u)
		i += 5
	default:
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
			v = int64(e&0x0f) - 1
		}
		if w > end-i {
			return nil, 0, false, false, trunc
		}
		p := b[i:]
		switch w {
		case 1:
			v = int64(int8(p[0]))
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(p)))
		case 3:
			v = int64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8)
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(p)))
		case 8:
			v = int64(binary.LittleEndian.Uint64(p))
		}
		zl.i = i + w
		zl.got++
		return nil, v, true, true, nil
	}
	if n > end-i {
		return nil, 0, false, false, trunc
	}
	zl.i = i + n
	zl.got++
	return b[i : i+n : i+n], 0, false, true, nil
}

// intset: encoding (uint32 LE: 2, 4 or 8 bytes per integer), count (uint32
// LE), the integers (little endian, signed).
type intset struct {
	b []byte
	w int
	i int
}

func openIntset(b []byte) (intset, error) {
	if len(b) < 8 {
		return intset{}, errors.New("short intset")
	}
	w := binary.LittleEndian.Uint32(b)
	n := binary.LittleEndian.Uint32(b[4:])
	if (w != 2 && w != 4 && w != 8) || uint64(n)*uint64(w) != uint64(len(b)-8) {
		return intset{}, errors.New("bad intset header")
	}
	return intset{b: b[8:], w: int(w)}, nil
}

func (is *intset) next() (int64, bool) {
	if is.i >= len(is.b) {
		return 0, false
	}
	p := is.b[is.i:]
	is.i += is.w
	switch is.w {
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(p))), true
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(p))), true
	}
	return int64(binary.LittleEndian.Uint64(p)), true
}

// zipmap (hashes before Redis 2.6): zmlen (1 byte), then field length,
// field, value length, free (1 byte), value, free bytes, ..., 0xFF. A
// length is 1 byte below 254, or 254 and a uint32 LE.
type zipmap struct {
	b []byte
	i int
}

func openZipmap(b []byte) (zipmap, error) {
	if len(b) < 2 || b[len(b)-1] != 0xff {
		return zipmap{}, errors.New("bad zipmap")
	}
	return zipmap{b: b, i: 1}, nil
}

func (zm *zipmap) len() (int, error) {
	b := zm.b
	if zm.i >= len(b) {
		return 0, errors.New("truncated zipmap")
	}
	l := int(b[zm.i])
	switch {
	case l < 254:
		zm.i++
		return l, nil
	case l == 254:
		if zm.i+5 > len(b) {
			return 0, errors.New("truncated zipmap")
		}
		u := binary.LittleEndian.Uint32(b[zm.i+1:])
		zm.i += 5
		if u > uint32(len(b)) {
			return 0, errors.New("truncated zipmap")
		}
		return int(u), nil
	}
	return 0, errors.New("bad zipmap length")
}

// next returns the next field and value; ok is false at the end.
func (zm *zipmap) next() (field, value []byte, ok bool, err error) {
	b := zm.b
	if zm.i >= len(b) {
		return nil, nil, false, errors.New("truncated zipmap")
	}
	if b[zm.i] == 0xff {
		if zm.i != len(b)-1 {
			return nil, nil, false, errors.New("bytes after the zipmap end")
		}
		return nil, nil, false, nil
	}
	fl, err := zm.len()
	if err != nil {
		return nil, nil, false, err
	}
	if fl > len(b)-zm.i {
		return nil, nil, false, errors.New("truncated zipmap")
	}
	field = b[zm.i : zm.i+fl : zm.i+fl]
	zm.i += fl
	vl, err := zm.len()
	if err != nil {
		return nil, nil, false, err
	}
	if zm.i >= len(b) {
		return nil, nil, false, errors.New("truncated zipmap")
	}
	free := int(b[zm.i])
	zm.i++
	if vl > len(b)-zm.i || free > len(b)-zm.i-vl {
		return nil, nil, false, errors.New("truncated zipmap")
	}
	value = b[zm.i : zm.i+vl : zm.i+vl]
	zm.i += vl + free
	return field, value, true, nil
}
