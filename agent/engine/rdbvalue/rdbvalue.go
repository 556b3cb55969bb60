// Package rdbvalue decodes the payloads of Redis DUMP and builds payloads
// for RESTORE, client side, for the plain data types (strings, hashes,
// lists, sets and sorted sets).
//
// A DUMP payload is one RDB-serialised value followed by the 2-byte RDB
// version (little endian) and the 8-byte CRC-64/Jones (little endian) of
// everything before it.
//
// Decode reads what Redis 2.6 to 7.4 DUMP for these types, whatever the
// server's internal encoding (plain, ziplist, listpack, intset, quicklist,
// LZF-compressed strings and nodes). Anything else (streams, modules,
// hashes with field expirations, unknown types) is ErrUnsupported, so the
// caller can fall back to commands for that key.
//
// Encode emits only the plain RDB types (string 0, list 1, set 2, sorted
// set 5 or 3, hash 4), which every Redis from 2.6 on loads into whatever
// encoding its configuration picks.
package rdbvalue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Kind is the type of a decoded or encoded value.
type Kind uint8

// Kinds. The zero Kind is no value (returned with errors).
const (
	KindString Kind = iota + 1
	KindHash
	KindList
	KindSet
	KindZSet
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindHash:
		return "hash"
	case KindList:
		return "list"
	case KindSet:
		return "set"
	case KindZSet:
		return "zset"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

var (
	// ErrUnsupported is an RDB type or encoding this package does not
	// decode (streams, modules, hashes with field TTLs, unknown types): the
	// caller falls back to commands for that key.
	ErrUnsupported = errors.New("rdbvalue: unsupported RDB type")
	// ErrCorrupt is a malformed payload or a CRC mismatch.
	ErrCorrupt = errors.New("rdbvalue: corrupt payload")
	// ErrInvalid is a value Encode cannot represent (wrong element count,
	// unparsable or NaN score, empty collection, bad RDB version).
	ErrInvalid = errors.New("rdbvalue: invalid value")
)

// RDB object types (src/rdb.h).
const (
	rdbTypeString           = 0
	rdbTypeList             = 1
	rdbTypeSet              = 2
	rdbTypeZSet             = 3
	rdbTypeHash             = 4
	rdbTypeZSet2            = 5
	rdbTypeListZiplist      = 10
	rdbTypeSetIntset        = 11
	rdbTypeZSetZiplist      = 12
	rdbTypeHashZiplist      = 13
	rdbTypeListQuicklist    = 14
	rdbTypeHashListpack     = 16
	rdbTypeZSetListpack     = 17
	rdbTypeListQuicklist2   = 18
	rdbTypeSetListpack      = 20
	quicklistNodePlain      = 1
	quicklistNodePacked     = 2
	maxStringLen            = 512 << 20
	rdbEncInt8, rdbEncInt16 = 0, 1
	rdbEncInt32, rdbEncLZF  = 2, 3
)

// Decode parses a DUMP payload after verifying its CRC and returns its kind
// and its elements, appended to dst[:0]:
//
//	string: one element, the value (integer-encoded strings as decimal text)
//	hash:   field, value, field, value, ...
//	list:   items, head to tail
//	set:    members
//	zset:   member, score, member, score, ... where a score is text that
//	        ZADD (and strconv.ParseFloat) parse back to the same float64:
//	        "inf"/"-inf" for infinities, the shortest round-trip 'g' form
//	        for binary doubles, the stored text or integer for ziplist and
//	        listpack encodings
//
// Ownership: the elements are sub-slices of payload where the bytes are
// stored raw (the common case), or of scratch space where they had to be
// produced (integers, decompressed LZF data, formatted scores). The scratch
// space is scratch[:cap(scratch)] first, then fresh chunks when it is
// full. So the elements are valid as long as the caller neither modifies
// payload nor reuses scratch. Each element's capacity is its length
// (appending to one copies it). Use a Decoder to keep the grown buffers
// across calls.
//
// Errors wrap ErrCorrupt or ErrUnsupported; the returned slice is then
// dst[:0] (possibly with junk written beyond its length).
func Decode(payload []byte, dst [][]byte, scratch []byte) (Kind, [][]byte, error) {
	d := decoder{out: dst[:0], a: arena{buf: scratch[:0]}}
	k, err := d.decode(payload)
	if err != nil {
		return 0, dst[:0], err
	}
	return k, d.out, nil
}

// Decoder decodes payloads reusing its element slice and scratch space
// between calls, so that steady-state decoding does not allocate. The
// elements returned by Decode are valid until the next call. A Decoder is
// not safe for concurrent use; its zero value is ready.
type Decoder struct {
	elems   [][]byte
	scratch []byte
}

// Decode is as the package-level Decode, with the Decoder's buffers.
func (dc *Decoder) Decode(payload []byte) (Kind, [][]byte, error) {
	d := decoder{out: dc.elems[:0], a: arena{buf: dc.scratch[:0]}}
	k, err := d.decode(payload)
	dc.elems = d.out[:0]
	dc.scratch = d.a.buf[:0] // the last (largest) chunk
	if err != nil {
		return 0, nil, err
	}
	return k, d.out, nil
}

// arena hands out byte ranges from a chunk; when the chunk is full it
// starts a new, larger one (earlier ranges keep pointing into the old
// chunk, which stays valid).
type arena struct{ buf []byte }

func (a *arena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		c := max(2*cap(a.buf), n, 4096)
		a.buf = make([]byte, 0, c)
	}
	l := len(a.buf)
	a.buf = a.buf[:l+n]
	return a.buf[l : l+n : l+n]
}

// ensure makes room for n more bytes and returns the free tail.
func (a *arena) ensure(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.alloc(n)
		a.buf = a.buf[:0]
	}
	return a.buf[len(a.buf):]
}

// commit records that the first n bytes of the free tail were written and
// returns them.
func (a *arena) commit(n int) []byte {
	l := len(a.buf)
	a.buf = a.buf[:l+n]
	return a.buf[l : l+n : l+n]
}

func (a *arena) int(v int64) []byte {
	b := strconv.AppendInt(a.ensure(20)[:0], v, 10)
	return a.commit(len(b))
}

func (a *arena) float(f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return infPos
	case math.IsInf(f, -1):
		return infNeg
	}
	b := strconv.AppendFloat(a.ensure(32)[:0], f, 'g', -1, 64)
	return a.commit(len(b))
}

var (
	infPos = []byte("inf")[:3:3]
	infNeg = []byte("-inf")[:4:4]
)

type decoder struct {
	p   []byte // the serialised value, without the footer
	pos int
	out [][]byte
	a   arena
}

func corrupt(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }

var (
	errTrunc    = fmt.Errorf("%w: truncated", ErrCorrupt)
	errTrailing = fmt.Errorf("%w: trailing bytes", ErrCorrupt)
	errCRC      = fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	errOdd      = fmt.Errorf("%w: odd element count in a pair encoding", ErrCorrupt)
)

func (d *decoder) decode(payload []byte) (Kind, error) {
	if len(payload) < minPayloadLen {
		return 0, errTrunc
	}
	if !payloadCRCOK(payload) {
		return 0, errCRC
	}
	d.p = payload[:len(payload)-footerLen]
	d.pos = 1
	t := d.p[0]
	var k Kind
	var err error
	switch t {
	case rdbTypeString:
		k = KindString
		var s []byte
		if s, err = d.str(); err == nil {
			d.out = append(d.out, s)
		}
	case rdbTypeList, rdbTypeSet:
		k = KindList
		if t == rdbTypeSet {
			k = KindSet
		}
		err = d.plain(1)
	case rdbTypeHash:
		k = KindHash
		err = d.plain(2)
	case rdbTypeZSet, rdbTypeZSet2:
		k = KindZSet
		from := len(d.out)
		err = d.zset(t == rdbTypeZSet2)
		if err == nil {
			// Redis writes skiplists from the greatest score down (it
			// loads faster); hand them out in ascending order.
			reversePairs(d.out[from:])
		}
	case rdbTypeListZiplist:
		k = KindList
		err = d.blob(0, blobZiplist)
	case rdbTypeSetIntset:
		k = KindSet
		err = d.blob(0, blobIntset)
	case rdbTypeZSetZiplist:
		k = KindZSet
		err = d.blob(2, blobZiplist)
	case rdbTypeHashZiplist:
		k = KindHash
		err = d.blob(2, blobZiplist)
	case rdbTypeHashListpack:
		k = KindHash
		err = d.blob(2, blobListpack)
	case rdbTypeZSetListpack:
		k = KindZSet
		err = d.blob(2, blobListpack)
	case rdbTypeSetListpack:
		k = KindSet
		err = d.blob(0, blobListpack)
	case rdbTypeListQuicklist, rdbTypeListQuicklist2:
		k = KindList
		err = d.quicklist(t == rdbTypeListQuicklist2)
	default:
		return 0, fmt.Errorf("%w %d", ErrUnsupported, t)
	}
	if err != nil {
		return 0, err
	}
	if d.pos != len(d.p) {
		return 0, errTrailing
	}
	return k, nil
}

// length reads an RDB length; enc reports the special (11xxxxxx) form,
// whose value is then the encoding type.
func (d *decoder) length() (n uint64, enc bool, err error) {
	p := d.p
	i := d.pos
	if i >= len(p) {
		return 0, false, errTrunc
	}
	b := p[i]
	switch b >> 6 {
	case 0:
		d.pos = i + 1
		return uint64(b & 0x3f), false, nil
	case 1:
		if i+2 > len(p) {
			return 0, false, errTrunc
		}
		d.pos = i + 2
		return uint64(b&0x3f)<<8 | uint64(p[i+1]), false, nil
	case 2:
		switch b {
		case 0x80:
			if i+5 > len(p) {
				return 0, false, errTrunc
			}
			d.pos = i + 5
			return uint64(binary.BigEndian.Uint32(p[i+1:])), false, nil
		case 0x81:
			if i+9 > len(p) {
				return 0, false, errTrunc
			}
			d.pos = i + 9
			return binary.BigEndian.Uint64(p[i+1:]), false, nil
		}
		return 0, false, corrupt("bad length prefix")
	}
	d.pos = i + 1
	return uint64(b & 0x3f), true, nil
}

// count reads a plain length that must not exceed the remaining bytes
// divided by per (each counted item takes at least per bytes).
func (d *decoder) count(per int) (int, error) {
	n, enc, err := d.length()
	if err != nil {
		return 0, err
	}
	if enc || n > uint64((len(d.p)-d.pos)/per) {
		return 0, corrupt("bad element count")
	}
	return int(n), nil
}

// str reads an RDB string (raw, integer-encoded or LZF-compressed).
func (d *decoder) str() ([]byte, error) {
	n, enc, err := d.length()
	if err != nil {
		return nil, err
	}
	p := d.p
	if !enc {
		if n > uint64(len(p)-d.pos) {
			return nil, errTrunc
		}
		i := d.pos
		d.pos += int(n)
		return p[i:d.pos:d.pos], nil
	}
	i := d.pos
	switch n {
	case rdbEncInt8:
		if i+1 > len(p) {
			return nil, errTrunc
		}
		d.pos = i + 1
		return d.a.int(int64(int8(p[i]))), nil
	case rdbEncInt16:
		if i+2 > len(p) {
			return nil, errTrunc
		}
		d.pos = i + 2
		return d.a.int(int64(int16(binary.LittleEndian.Uint16(p[i:])))), nil
	case rdbEncInt32:
		if i+4 > len(p) {
			return nil, errTrunc
		}
		d.pos = i + 4
		return d.a.int(int64(int32(binary.LittleEndian.Uint32(p[i:])))), nil
	case rdbEncLZF:
		clen, e1, err := d.length()
		if err != nil {
			return nil, err
		}
		ulen, e2, err := d.length()
		if err != nil {
			return nil, err
		}
		if e1 || e2 || clen > uint64(len(p)-d.pos) || !LZFLengthsOK(clen, ulen) || ulen > maxStringLen {
			return nil, corrupt("bad LZF lengths")
		}
		in := p[d.pos : d.pos+int(clen)]
		d.pos += int(clen)
		out := d.a.alloc(int(ulen))
		if !LZFDecompress(in, out) {
			return nil, corrupt("bad LZF data")
		}
		return out, nil
	}
	return nil, corrupt("bad string encoding")
}

// plain reads a counted sequence of strings (per strings per count unit).
func (d *decoder) plain(per int) error {
	n, err := d.count(per)
	if err != nil {
		return err
	}
	d.grow(n * per)
	for range n * per {
		s, err := d.str()
		if err != nil {
			return err
		}
		d.out = append(d.out, s)
	}
	return nil
}

func (d *decoder) grow(n int) {
	if cap(d.out)-len(d.out) < n {
		o := make([][]byte, len(d.out), len(d.out)+n)
		copy(o, d.out)
		d.out = o
	}
}

func (d *decoder) zset(binaryScores bool) error {
	n, err := d.count(2)
	if err != nil {
		return err
	}
	d.grow(2 * n)
	p := d.p
	for range n {
		m, err := d.str()
		if err != nil {
			return err
		}
		var score []byte
		i := d.pos
		if binaryScores {
			if i+8 > len(p) {
				return errTrunc
			}
			d.pos = i + 8
			f := math.Float64frombits(binary.LittleEndian.Uint64(p[i:]))
			if math.IsNaN(f) {
				return corrupt("NaN score")
			}
			score = d.a.float(f)
		} else {
			if i >= len(p) {
				return errTrunc
			}
			l := int(p[i])
			d.pos = i + 1
			switch l {
			case 253:
				return corrupt("NaN score")
			case 254:
				score = infPos
			case 255:
				score = infNeg
			default:
				if l == 0 || l > len(p)-d.pos {
					return errTrunc
				}
				score = p[d.pos : d.pos+l : d.pos+l]
				d.pos += l
			}
		}
		d.out = append(d.out, m, score)
	}
	return nil
}

// reversePairs reverses the order of the pairs of p in place.
func reversePairs(p [][]byte) {
	for i, j := 0, len(p)-2; i < j; i, j = i+2, j-2 {
		p[i], p[i+1], p[j], p[j+1] = p[j], p[j+1], p[i], p[i+1]
	}
}
