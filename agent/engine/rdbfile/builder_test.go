package rdbfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// A small RDB writer for synthetic test files: the encodings no server of
// the matrix writes any more (zipmap, ziplists, quicklist 1, text scores,
// stream type 15, Redis 7.4 pre-GA hashes), opcodes only some setups
// write (MODULE_AUX, SLOT_IMPORT, EXPIRETIME in seconds), and broken
// files.

type rdbBuilder struct{ b []byte }

func newBuilder(magic string) *rdbBuilder { return &rdbBuilder{b: []byte(magic)} }

func (w *rdbBuilder) byte(c byte) *rdbBuilder     { w.b = append(w.b, c); return w }
func (w *rdbBuilder) raw(p []byte) *rdbBuilder    { w.b = append(w.b, p...); return w }
func (w *rdbBuilder) length(n uint64) *rdbBuilder { w.b = appendLen(w.b, n); return w }
func (w *rdbBuilder) str(s string) *rdbBuilder    { w.b = appendStr(w.b, []byte(s)); return w }
func (w *rdbBuilder) aux(k, v string) *rdbBuilder {
	return w.byte(opAux).str(k).str(v)
}
func (w *rdbBuilder) selectDB(db uint64) *rdbBuilder { return w.byte(opSelectDB).length(db) }
func (w *rdbBuilder) key(t byte, name string, value []byte) *rdbBuilder {
	return w.byte(t).str(name).raw(value)
}

// eof appends the EOF opcode and the CRC (or zeros when !crc).
func (w *rdbBuilder) eof(crc bool) []byte {
	w.byte(opEOF)
	sum := uint64(0)
	if crc {
		sum = rdbvalue.CRC64(0, w.b)
	}
	return binary.LittleEndian.AppendUint64(w.b, sum)
}

func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x81), n)
}

func appendStr(b, s []byte) []byte { return append(appendLen(b, uint64(len(s))), s...) }

// appendIntStr appends v as an integer-encoded RDB string.
func appendIntStr(b []byte, v int64) []byte {
	switch {
	case v >= math.MinInt8 && v <= math.MaxInt8:
		return append(b, 0xc0|encInt8, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.LittleEndian.AppendUint16(append(b, 0xc0|encInt16), uint16(v))
	}
	return binary.LittleEndian.AppendUint32(append(b, 0xc0|encInt32), uint32(v))
}

// appendLZFStr appends s LZF-"compressed" as literal runs only (valid
// LZF that any decoder must accept).
func appendLZFStr(b, s []byte) []byte {
	var c []byte
	for rest := s; len(rest) > 0; {
		n := min(len(rest), 32)
		c = append(c, byte(n-1))
		c = append(c, rest[:n]...)
		rest = rest[n:]
	}
	b = append(b, 0xc0|encLZF)
	b = appendLen(b, uint64(len(c)))
	b = appendLen(b, uint64(len(s)))
	return append(b, c...)
}

// item is an element of a listpack or ziplist: an integer when s is nil
// and isInt.
type item struct {
	s     []byte
	v     int64
	isInt bool
}

func sItem(s string) item { return item{s: []byte(s)} }
func iItem(v int64) item  { return item{v: v, isInt: true} }

// items turns strings into items, numbers into integer items.
func items(ss ...string) []item {
	out := make([]item, len(ss))
	for i, s := range ss {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(v, 10) == s {
			out[i] = iItem(v)
		} else {
			out[i] = sItem(s)
		}
	}
	return out
}

func makeListpack(its []item) []byte {
	b := make([]byte, 6)
	for _, it := range its {
		start := len(b)
		if it.isInt {
			v := it.v
			switch {
			case v >= 0 && v <= 127:
				b = append(b, byte(v))
			case v >= -4096 && v <= 4095:
				u := uint16(v) & 0x1fff
				b = append(b, 0xc0|byte(u>>8), byte(u))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				b = binary.LittleEndian.AppendUint16(append(b, 0xf1), uint16(v))
			case v >= -1<<23 && v < 1<<23:
				u := uint32(v)
				b = append(b, 0xf2, byte(u), byte(u>>8), byte(u>>16))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				b = binary.LittleEndian.AppendUint32(append(b, 0xf3), uint32(v))
			default:
				b = binary.LittleEndian.AppendUint64(append(b, 0xf4), uint64(v))
			}
		} else {
			n := len(it.s)
			switch {
			case n < 64:
				b = append(b, 0x80|byte(n))
			case n < 4096:
				b = append(b, 0xe0|byte(n>>8), byte(n))
			default:
				b = binary.LittleEndian.AppendUint32(append(b, 0xf0), uint32(n))
			}
			b = append(b, it.s...)
		}
		l := len(b) - start
		b = appendBacklen(b, l)
	}
	b = append(b, 0xff)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	cnt := len(its)
	if cnt > 65535 {
		cnt = 65535
	}
	binary.LittleEndian.PutUint16(b[4:], uint16(cnt))
	return b
}

func appendBacklen(b []byte, l int) []byte {
	switch {
	case l <= 127:
		return append(b, byte(l))
	case l < 16383:
		return append(b, byte(l>>7), byte(l&127)|128)
	case l < 2097151:
		return append(b, byte(l>>14), byte((l>>7)&127)|128, byte(l&127)|128)
	case l < 268435455:
		return append(b, byte(l>>21), byte((l>>14)&127)|128, byte((l>>7)&127)|128, byte(l&127)|128)
	}
	return append(b, byte(l>>28), byte((l>>21)&127)|128, byte((l>>14)&127)|128, byte((l>>7)&127)|128, byte(l&127)|128)
}

func makeZiplist(its []item) []byte {
	b := make([]byte, 10)
	prev := 0
	tail := 10
	for _, it := range its {
		start := len(b)
		tail = start
		if prev < 254 {
			b = append(b, byte(prev))
		} else {
			b = binary.LittleEndian.AppendUint32(append(b, 0xfe), uint32(prev))
		}
		if it.isInt {
			v := it.v
			switch {
			case v >= 0 && v <= 12:
				b = append(b, 0xf1+byte(v))
			case v >= math.MinInt8 && v <= math.MaxInt8:
				b = append(b, 0xfe, byte(v))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				b = binary.LittleEndian.AppendUint16(append(b, 0xc0), uint16(v))
			case v >= -1<<23 && v < 1<<23:
				u := uint32(v)
				b = append(b, 0xf0, byte(u), byte(u>>8), byte(u>>16))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				b = binary.LittleEndian.AppendUint32(append(b, 0xd0), uint32(v))
			default:
				b = binary.LittleEndian.AppendUint64(append(b, 0xe0), uint64(v))
			}
		} else {
			n := len(it.s)
			switch {
			case n < 64:
				b = append(b, byte(n))
			case n < 16384:
				b = append(b, 0x40|byte(n>>8), byte(n))
			default:
				b = binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
			}
			b = append(b, it.s...)
		}
		prev = len(b) - start
	}
	b = append(b, 0xff)
	binary.LittleEndian.PutUint32(b, uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(tail))
	binary.LittleEndian.PutUint16(b[8:], uint16(min(len(its), 65535)))
	return b
}

func makeIntset(width int, vs ...int64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(width))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vs)))
	for _, v := range vs {
		switch width {
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		default:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

func makeZipmap(kv ...string) []byte {
	b := []byte{byte(len(kv) / 2)}
	zlen := func(n int) {
		if n < 254 {
			b = append(b, byte(n))
		} else {
			b = binary.LittleEndian.AppendUint32(append(b, 254), uint32(n))
		}
	}
	for i := 0; i < len(kv); i += 2 {
		zlen(len(kv[i]))
		b = append(b, kv[i]...)
		zlen(len(kv[i+1]))
		b = append(b, 1) // one free byte
		b = append(b, kv[i+1]...)
		b = append(b, 0)
	}
	return append(b, 0xff)
}

// streamNode builds a stream listpack: entries (ms delta, seq delta,
// fields and values) against master fields mf; deleted marks entries
// deleted.
type synthEntry struct {
	msd, seqd int64
	fv        []string
	deleted   bool
}

func makeStreamListpack(mf []string, entries []synthEntry) []byte {
	live, dead := 0, 0
	for _, e := range entries {
		if e.deleted {
			dead++
		} else {
			live++
		}
	}
	its := []item{iItem(int64(live)), iItem(int64(dead)), iItem(int64(len(mf)))}
	its = append(its, items(mf...)...)
	its = append(its, iItem(0))
	for _, e := range entries {
		flags := int64(0)
		if e.deleted {
			flags |= streamItemDeleted
		}
		same := len(e.fv) == 2*len(mf)
		for i := 0; same && i < len(mf); i++ {
			same = e.fv[2*i] == mf[i]
		}
		if same {
			flags |= streamItemSameFields
		}
		its = append(its, iItem(flags), iItem(e.msd), iItem(e.seqd))
		n := 3
		if same {
			for i := 1; i < len(e.fv); i += 2 {
				its = append(its, items(e.fv[i])...)
			}
			n += len(mf)
		} else {
			its = append(its, iItem(int64(len(e.fv)/2)))
			its = append(its, items(e.fv...)...)
			n += 1 + len(e.fv)
		}
		its = append(its, iItem(int64(n)))
	}
	return makeListpack(its)
}

func streamKey(ms, seq uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, ms)
	return binary.BigEndian.AppendUint64(b, seq)
}

func hexdump(b []byte) string { return fmt.Sprintf("%x", b) }
