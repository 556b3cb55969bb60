package rdbvalue

import (
	"encoding/binary"
	"errors"
)

// Zipmap iterates over a zipmap (the compact encoding of small hashes
// before Redis 2.6, found in old RDB files): zmlen (1 byte), then field
// length, field, value length, free (1 byte), value, free bytes, ...,
// 0xFF. A length is 1 byte below 254, or 254 and a uint32 LE. See the
// contract of the compact encodings (compact.go).
type Zipmap struct {
	b []byte
	i int // next length
}

// OpenZipmap checks the frame of the zipmap b (the end marker) and
// returns an iterator at its first field.
func OpenZipmap(b []byte) (Zipmap, error) {
	if len(b) < 2 || b[len(b)-1] != 0xff {
		return Zipmap{}, errors.New("bad zipmap")
	}
	return Zipmap{b: b, i: 1}, nil
}

// Next returns the next field and value; ok is false at the end, and on
// an error (err non-nil), which includes bytes after the end marker.
func (zm *Zipmap) Next() (field, value []byte, ok bool, err error) {
	b := zm.b
	if zm.i >= len(b) {
		return nil, nil, false, errZMTrunc
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
		return nil, nil, false, errZMTrunc
	}
	field = b[zm.i : zm.i+fl : zm.i+fl]
	zm.i += fl
	vl, err := zm.len()
	if err != nil {
		return nil, nil, false, err
	}
	if zm.i >= len(b) {
		return nil, nil, false, errZMTrunc
	}
	free := int(b[zm.i])
	zm.i++
	if vl > len(b)-zm.i || free > len(b)-zm.i-vl {
		return nil, nil, false, errZMTrunc
	}
	value = b[zm.i : zm.i+vl : zm.i+vl]
	zm.i += vl + free
	return field, value, true, nil
}

// len reads a field or value length.
func (zm *Zipmap) len() (int, error) {
	b := zm.b
	if zm.i >= len(b) {
		return 0, errZMTrunc
	}
	l := int(b[zm.i])
	switch {
	case l < 254:
		zm.i++
		return l, nil
	case l == 254:
		if zm.i+5 > len(b) {
			return 0, errZMTrunc
		}
		u := binary.LittleEndian.Uint32(b[zm.i+1:])
		zm.i += 5
		if u > uint32(len(b)) {
			return 0, errZMTrunc
		}
		return int(u), nil
	}
	return 0, errors.New("bad zipmap length")
}
