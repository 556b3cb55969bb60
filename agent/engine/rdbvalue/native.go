package rdbvalue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Limits are a server's thresholds for its compact encodings (the
// *-max-listpack-* and set-max-intset-entries settings). A value within
// them is written by EncodeNative in the encoding the server itself would
// hold it in, so that RESTORE only copies bytes instead of building the
// value element by element.
type Limits struct {
	HashEntries, HashValue int // hash-max-listpack-entries, -value
	ZSetEntries, ZSetValue int // zset-max-listpack-entries, -value
	SetEntries, SetValue   int // set-max-listpack-entries, -value (Redis 7.2+)
	IntsetEntries          int // set-max-intset-entries
	// ListFill is list-max-listpack-size: negative, a node's size class
	// (-1: 4 KiB ... -5: 64 KiB); positive, its element count.
	ListFill int
}

// DefaultLimits are the thresholds of a server with default settings.
func DefaultLimits() Limits {
	return Limits{
		HashEntries: 128, HashValue: 64,
		ZSetEntries: 128, ZSetValue: 64,
		SetEntries: 128, SetValue: 64,
		IntsetEntries: 512,
		ListFill:      -2,
	}
}

// nodeBytes returns the listpack size limit of one list node.
func (l Limits) nodeBytes() int {
	if l.ListFill < 0 {
		return 4096 << min(-l.ListFill-1, 4)
	}
	return 8192 // the server's safety limit for count-based fills
}

// Encoder writes RESTORE payloads in the server's compact encodings where
// the value fits them (EncodeNative). Its scratch space is reused between
// calls: an Encoder is not safe for concurrent use.
type Encoder struct {
	Limits Limits
	idx    []int
	ints   []int64
	scores []float64
}

// EncodeNative appends to dst a RESTORE payload for the value, as Encode
// does, but in the encoding the server would keep it in when rdbVersion
// has that encoding and the value is within e.Limits: a listpack for
// small hashes and sorted sets (RDB 10+, Redis 7.0), an intset for small
// sets of integers (every version), a listpack for other small sets
// (RDB 11+, Redis 7.2), a quicklist of listpacks for lists (RDB 10+).
// Other values get Encode's plain types. native reports which was written.
//
// Unlike Encode it refuses, with ErrInvalid, a hash or set that repeats a
// field or member, and a sorted set that repeats a member: a server
// loading a compact encoding trusts it (unless sanitize-dump-payload is
// on), so the check is made here.
func (e *Encoder) EncodeNative(dst []byte, k Kind, elems [][]byte, rdbVersion int) (out []byte, native bool, err error) {
	if rdbVersion < MinRDBVersion || rdbVersion > math.MaxUint16 {
		return dst, false, fmt.Errorf("%w: RDB version %d", ErrInvalid, rdbVersion)
	}
	start := len(dst)
	switch {
	case k == KindHash && rdbVersion >= 10 && len(elems) > 0 && len(elems)%2 == 0 &&
		len(elems)/2 <= e.Limits.HashEntries && maxLen(elems) <= e.Limits.HashValue:
		if e.repeats(elems, 2) {
			return dst, false, fmt.Errorf("%w: hash with a repeated field", ErrInvalid)
		}
		dst = append(dst, rdbTypeHashListpack)
		dst = appendListpackString(dst, elems)
	case k == KindZSet && rdbVersion >= 10 && len(elems) > 0 && len(elems)%2 == 0 &&
		len(elems)/2 <= e.Limits.ZSetEntries && maxLen(elems) <= e.Limits.ZSetValue:
		var err error
		if dst, err = e.zsetListpack(dst, elems); err != nil {
			return dst[:start], false, err
		}
	case k == KindSet && len(elems) > 0 && len(elems) <= e.Limits.IntsetEntries && e.allInts(elems):
		if dst, err = e.intset(dst); err != nil {
			return dst[:start], false, err
		}
	case k == KindSet && rdbVersion >= 11 && len(elems) > 0 &&
		len(elems) <= e.Limits.SetEntries && maxLen(elems) <= e.Limits.SetValue:
		if e.repeats(elems, 1) {
			return dst, false, fmt.Errorf("%w: set with a repeated member", ErrInvalid)
		}
		dst = append(dst, rdbTypeSetListpack)
		dst = appendListpackString(dst, elems)
	case k == KindList && rdbVersion >= 10 && len(elems) > 0:
		dst = e.quicklist(dst, elems)
	default:
		out, err := Encode(dst, k, elems, rdbVersion)
		return out, false, err
	}
	return appendFooter(dst, start, rdbVersion), true, nil
}

func maxLen(elems [][]byte) int {
	m := 0
	for _, e := range elems {
		m = max(m, len(e))
	}
	return m
}

// repeats reports whether the elements at 0, step, 2*step... repeat one.
func (e *Encoder) repeats(elems [][]byte, step int) bool {
	e.idx = e.idx[:0]
	for i := 0; i < len(elems); i += step {
		e.idx = append(e.idx, i)
	}
	slices.SortFunc(e.idx, func(a, b int) int { return bytes.Compare(elems[a], elems[b]) })
	for i := 1; i < len(e.idx); i++ {
		if bytes.Equal(elems[e.idx[i-1]], elems[e.idx[i]]) {
			return true
		}
	}
	return false
}

// zsetListpack appends type 17: member, score pairs ordered by score, then
// member (bytewise), as the server keeps them.
func (e *Encoder) zsetListpack(dst []byte, elems [][]byte) ([]byte, error) {
	if e.repeats(elems, 2) {
		return dst, fmt.Errorf("%w: sorted set with a repeated member", ErrInvalid)
	}
	n := len(elems) / 2
	scores := e.scores[:0]
	for i := range n {
		f, err := ParseScore(elems[2*i+1])
		if err != nil {
			return dst, err
		}
		scores = append(scores, f)
	}
	e.scores = scores
	e.idx = e.idx[:0]
	for i := range n {
		e.idx = append(e.idx, i)
	}
	slices.SortFunc(e.idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return bytes.Compare(elems[2*a], elems[2*b])
	})
	dst = append(dst, rdbTypeZSetListpack)
	lenAt := len(dst)
	dst = append(dst, make([]byte, 5)...) // the length, written below
	lp := len(dst)
	dst = lpHeader(dst)
	var num [32]byte
	for _, i := range e.idx {
		dst = lpAppendString(dst, elems[2*i])
		dst = lpAppendString(dst, scoreText(num[:0], scores[i]))
	}
	return finishListpack(dst, lenAt, lp, 2*n), nil
}

// scoreText formats a score so that the server's strtod reads back the
// same double: an integer where it is one (stored then as a listpack
// integer), "-0" for negative zero, "inf"/"-inf", else the shortest text.
func scoreText(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case f == 0 && math.Signbit(f):
		return append(dst, "-0"...)
	case f == math.Trunc(f) && math.Abs(f) < 1<<52:
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// allInts reports whether every element is an integer in the server's
// strict sense (what it stores in an intset), and leaves them in e.ints.
func (e *Encoder) allInts(elems [][]byte) bool {
	e.ints = e.ints[:0]
	for _, s := range elems {
		v, ok := strictInt(s)
		if !ok {
			return false
		}
		e.ints = append(e.ints, v)
	}
	return true
}

// intset appends type 11 from e.ints: sorted, unique, in the smallest
// width that holds them all.
func (e *Encoder) intset(dst []byte) ([]byte, error) {
	slices.Sort(e.ints)
	width := 2
	for i, v := range e.ints {
		if i > 0 && e.ints[i-1] == v {
			return dst, fmt.Errorf("%w: set with a repeated member", ErrInvalid)
		}
		switch {
		case v < math.MinInt32 || v > math.MaxInt32:
			width = 8
		case (v < math.MinInt16 || v > math.MaxInt16) && width < 4:
			width = 4
		}
	}
	size := 8 + width*len(e.ints)
	dst = append(dst, rdbTypeSetIntset)
	dst = appendLen(dst, uint64(size))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(width))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e.ints)))
	for _, v := range e.ints {
		switch width {
		case 2:
			dst = binary.LittleEndian.AppendUint16(dst, uint16(int16(v)))
		case 4:
			dst = binary.LittleEndian.AppendUint32(dst, uint32(int32(v)))
		default:
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
		}
	}
	return dst, nil
}

// quicklist appends type 18: nodes of packed listpacks, each within the
// fill limits (an element too big for a node gets a node of its own).
func (e *Encoder) quicklist(dst []byte, elems [][]byte) []byte {
	limit := e.Limits.nodeBytes()
	count := math.MaxInt
	if e.Limits.ListFill > 0 {
		count = e.Limits.ListFill
	}
	// Cut the elements into nodes first: the node count comes first.
	e.idx = e.idx[:0] // the first element of each node
	size, n := 0, 0
	for i, el := range elems {
		sz := lpEntrySize(el)
		if n > 0 && (size+sz > limit || n >= count) {
			e.idx = append(e.idx, i-n)
			size, n = 0, 0
		}
		size += sz
		n++
	}
	e.idx = append(e.idx, len(elems)-n)
	dst = append(dst, rdbTypeListQuicklist2)
	dst = appendLen(dst, uint64(len(e.idx)))
	for j, first := range e.idx {
		end := len(elems)
		if j+1 < len(e.idx) {
			end = e.idx[j+1]
		}
		dst = appendLen(dst, 2) // QUICKLIST_NODE_CONTAINER_PACKED
		dst = appendListpackString(dst, elems[first:end])
	}
	return dst
}

// appendListpackString appends elems as one listpack, as an RDB string
// (its length first).
func appendListpackString(dst []byte, elems [][]byte) []byte {
	lenAt := len(dst)
	dst = append(dst, make([]byte, 5)...)
	lp := len(dst)
	dst = lpHeader(dst)
	for _, el := range elems {
		dst = lpAppendString(dst, el)
	}
	return finishListpack(dst, lenAt, lp, len(elems))
}

// finishListpack ends the listpack begun at dst[lp:] with n entries, fills
// in its header, and writes its RDB string length into the 5 bytes at
// lenAt (closing the gap when the length needs fewer).
func finishListpack(dst []byte, lenAt, lp, n int) []byte {
	dst = append(dst, 0xff)
	total := len(dst) - lp
	binary.LittleEndian.PutUint32(dst[lp:], uint32(total))
	if n > 65535 {
		n = 65535 // the count is then unknown
	}
	binary.LittleEndian.PutUint16(dst[lp+4:], uint16(n))
	var l [9]byte
	enc := appendLen(l[:0], uint64(total))
	gap := 5 - len(enc)
	copy(dst[lenAt:], enc)
	if gap > 0 {
		copy(dst[lenAt+len(enc):], dst[lp:])
		dst = dst[:len(dst)-gap]
	}
	return dst
}

func lpHeader(dst []byte) []byte { return append(dst, 0, 0, 0, 0, 0, 0) }

// strictInt parses s as the server does when it decides to store a string
// as an integer: an optional '-', no leading zeros, no '+', within int64.
func strictInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	if i >= len(s) || s[i] < '1' || s[i] > '9' {
		return 0, false
	}
	for _, c := range s[i:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	return v, err == nil
}

// lpEntrySize returns the bytes el takes in a listpack (with its backlen).
func lpEntrySize(el []byte) int {
	var l int
	if v, ok := strictInt(el); ok {
		l = lpIntSize(v)
	} else {
		switch n := len(el); {
		case n < 64:
			l = 1 + n
		case n < 4096:
			l = 2 + n
		default:
			l = 5 + n
		}
	}
	return l + backlenSize(l)
}

func lpIntSize(v int64) int {
	switch {
	case v >= 0 && v <= 127:
		return 1
	case v >= -4096 && v <= 4095:
		return 2
	case v >= -32768 && v <= 32767:
		return 3
	case v >= -8388608 && v <= 8388607:
		return 4
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return 5
	}
	return 9
}

// lpAppendString appends one listpack entry holding el: as an integer
// when the server would store it as one, else as a string.
func lpAppendString(dst, el []byte) []byte {
	start := len(dst)
	if v, ok := strictInt(el); ok {
		u := uint64(v)
		switch lpIntSize(v) {
		case 1:
			dst = append(dst, byte(v))
		case 2:
			u &= 1<<13 - 1
			dst = append(dst, 0xc0|byte(u>>8), byte(u))
		case 3:
			dst = append(dst, 0xf1, byte(u), byte(u>>8))
		case 4:
			dst = append(dst, 0xf2, byte(u), byte(u>>8), byte(u>>16))
		case 5:
			dst = append(dst, 0xf3)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(u))
		default:
			dst = append(dst, 0xf4)
			dst = binary.LittleEndian.AppendUint64(dst, u)
		}
	} else {
		switch n := len(el); {
		case n < 64:
			dst = append(dst, 0x80|byte(n))
		case n < 4096:
			dst = append(dst, 0xe0|byte(n>>8), byte(n))
		default:
			dst = append(dst, 0xf0)
			dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
		}
		dst = append(dst, el...)
	}
	return lpAppendBacklen(dst, uint64(len(dst)-start))
}

// lpAppendBacklen appends the length of the entry before it, read from
// its last byte backwards: 7 bits a byte, the high bit set on all but the
// most significant.
func lpAppendBacklen(dst []byte, l uint64) []byte {
	switch backlenSize(int(l)) {
	case 1:
		return append(dst, byte(l))
	case 2:
		return append(dst, byte(l>>7), byte(l&127)|128)
	case 3:
		return append(dst, byte(l>>14), byte(l>>7&127)|128, byte(l&127)|128)
	case 4:
		return append(dst, byte(l>>21), byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
	}
	return append(dst, byte(l>>28), byte(l>>21&127)|128, byte(l>>14&127)|128, byte(l>>7&127)|128, byte(l&127)|128)
}
