package rdbvalue

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// MinRDBVersion is the lowest RDB version Encode accepts (Redis 2.6, the
// first with DUMP/RESTORE). Sorted sets are written as RDB_TYPE_ZSET_2
// (binary doubles) from version 8 (Redis 4.0) on, as RDB_TYPE_ZSET (text
// scores) below.
const MinRDBVersion = 6

// MaxKnownRDBVersion is the highest RDB version RDBVersionFor returns
// (Redis 7.4 and 8.x).
const MaxKnownRDBVersion = 12

// Encode appends to dst a RESTORE payload for a value of kind k whose
// elements are given as Decode returns them (hash: field, value pairs;
// zset: member, score pairs with scores as text, "inf"/"+inf"/"-inf"
// accepted, NaN refused). rdbVersion goes into the payload footer; the
// server accepts the payload when it is at most its own RDB version (see
// RDBVersionFor). Collections must not be empty (Redis refuses empty keys)
// and must not hold duplicate fields or members (Redis refuses those too).
//
// Only the plain RDB types are written: string 0 (raw), list 1, set 2,
// hash 4, and zset 5 (rdbVersion >= 8) or 3 (below); the server converts
// them to its configured encodings while loading. On error dst is returned
// unchanged (by length) with an error wrapping ErrInvalid.
func Encode(dst []byte, k Kind, elems [][]byte, rdbVersion int) ([]byte, error) {
	if rdbVersion < MinRDBVersion || rdbVersion > math.MaxUint16 {
		return dst, fmt.Errorf("%w: RDB version %d", ErrInvalid, rdbVersion)
	}
	start := len(dst)
	size := 1 + footerLen + 9
	for _, e := range elems {
		size += len(e) + 9
	}
	if cap(dst)-len(dst) < size {
		n := make([]byte, len(dst), len(dst)+size)
		copy(n, dst)
		dst = n
	}
	switch k {
	case KindString:
		if len(elems) != 1 {
			return dst[:start], fmt.Errorf("%w: string with %d elements", ErrInvalid, len(elems))
		}
		dst = append(dst, rdbTypeString)
		dst = appendString(dst, elems[0])
	case KindList, KindSet:
		if len(elems) == 0 {
			return dst[:start], fmt.Errorf("%w: empty %s", ErrInvalid, k)
		}
		t := byte(rdbTypeList)
		if k == KindSet {
			t = rdbTypeSet
		}
		dst = append(dst, t)
		dst = appendLen(dst, uint64(len(elems)))
		for _, e := range elems {
			dst = appendString(dst, e)
		}
	case KindHash:
		if len(elems) == 0 || len(elems)%2 != 0 {
			return dst[:start], fmt.Errorf("%w: hash with %d elements", ErrInvalid, len(elems))
		}
		dst = append(dst, rdbTypeHash)
		dst = appendLen(dst, uint64(len(elems)/2))
		for _, e := range elems {
			dst = appendString(dst, e)
		}
	case KindZSet:
		if len(elems) == 0 || len(elems)%2 != 0 {
			return dst[:start], fmt.Errorf("%w: zset with %d elements", ErrInvalid, len(elems))
		}
		binaryScores := rdbVersion >= 8
		t := byte(rdbTypeZSet)
		if binaryScores {
			t = rdbTypeZSet2
		}
		dst = append(dst, t)
		dst = appendLen(dst, uint64(len(elems)/2))
		// Greatest first, as Redis writes them (Decode reverses them).
		for i := len(elems) - 2; i >= 0; i -= 2 {
			f, err := ParseScore(elems[i+1])
			if err != nil {
				return dst[:start], err
			}
			dst = appendString(dst, elems[i])
			if binaryScores {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
				continue
			}
			switch {
			case math.IsInf(f, 1):
				dst = append(dst, 254)
			case math.IsInf(f, -1):
				dst = append(dst, 255)
			default:
				l := len(dst)
				dst = append(dst, 0)
				dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
				dst[l] = byte(len(dst) - l - 1)
			}
		}
	default:
		return dst[:start], fmt.Errorf("%w: kind %v", ErrInvalid, k)
	}
	return appendFooter(dst, start, rdbVersion), nil
}

// ParseScore parses a sorted-set score as ZADD does: a float64 in any
// strconv.ParseFloat syntax, including "inf", "+inf" and "-inf"; NaN and
// out-of-range values are refused with ErrInvalid.
func ParseScore(b []byte) (float64, error) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) {
		return 0, fmt.Errorf("%w: score %q", ErrInvalid, b)
	}
	return f, nil
}

func appendLen(dst []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(dst, byte(n))
	case n < 1<<14:
		return append(dst, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0x81), n)
}

func appendString(dst, s []byte) []byte {
	return append(appendLen(dst, uint64(len(s))), s...)
}

// RDBVersionFor returns the RDB version to put in payloads for a server
// reporting redis_version v (INFO server): 2.6-3.0 -> 6, 3.2 -> 7,
// 4.0 -> 8, 5.0-6.2 -> 9, 7.0 -> 10, 7.2 -> 11 (also Valkey, which reports
// 7.2.4), 7.4 and later -> 12. A version that does not parse gets 6, which
// every server with RESTORE accepts (sorted sets then carry text scores).
func RDBVersionFor(v string) int {
	major, rest, ok := leadingInt(v)
	if !ok {
		return MinRDBVersion
	}
	minor := 0
	if len(rest) > 0 && rest[0] == '.' {
		minor, _, _ = leadingInt(rest[1:])
	}
	switch {
	case major >= 8 || major == 7 && minor >= 4:
		return 12
	case major == 7 && minor >= 2:
		return 11
	case major == 7:
		return 10
	case major >= 5:
		return 9
	case major == 4:
		return 8
	case major == 3 && minor >= 2:
		return 7
	}
	return 6
}

func leadingInt(s string) (int, string, bool) {
	n, i := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1e6 {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n, s[i:], i > 0
}
