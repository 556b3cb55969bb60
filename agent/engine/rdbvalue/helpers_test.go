package rdbvalue

import (
	"context"
	"encoding/binary"
	"math"
	"sort"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

var ctx = context.Background()

// server starts a throw-away redis-server that deep-checks every RESTORE
// payload (so hand-built and encoded payloads are validated by Redis).
func server(t testing.TB, extra ...string) *redis.Client {
	t.Helper()
	s := redistest.Start(t, append([]string{"--sanitize-dump-payload", "yes"}, extra...)...)
	return s.Client(t, 0)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dump(t testing.TB, c *redis.Client, key string) []byte {
	t.Helper()
	s, err := c.Dump(ctx, key).Result()
	must(t, err)
	return []byte(s)
}

// wrapPayload makes a DUMP payload from an RDB type and its serialised value.
func wrapPayload(typ byte, body []byte, rdbVersion int) []byte {
	p := append([]byte{typ}, body...)
	p = binary.LittleEndian.AppendUint16(p, uint16(rdbVersion))
	return binary.LittleEndian.AppendUint64(p, CRC64(0, p))
}

// fixCRC recomputes the CRC of a payload in place.
func fixCRC(p []byte) []byte {
	if len(p) >= 8 {
		binary.LittleEndian.PutUint64(p[len(p)-8:], CRC64(0, p[:len(p)-8]))
	}
	return p
}

// ---- reference builders (as Redis writes them), for hand-made payloads ----

// elem is a string element, or an integer when isInt.
type elem struct {
	s     string
	i     int64
	isInt bool
}

func str(s string) elem { return elem{s: s} }
func num(i int64) elem  { return elem{i: i, isInt: true} }
func (e elem) text() string {
	if e.isInt {
		return strconv.FormatInt(e.i, 10)
	}
	return e.s
}

func texts(es []elem) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.text()
	}
	return out
}

func buildZiplist(es []elem) []byte {
	zl := make([]byte, 10)
	prev, tail := 0, 10
	for _, e := range es {
		start := len(zl)
		tail = start
		if prev < 254 {
			zl = append(zl, byte(prev))
		} else {
			zl = binary.LittleEndian.AppendUint32(append(zl, 254), uint32(prev))
		}
		if e.isInt {
			v := e.i
			switch {
			case v >= 0 && v <= 12:
				zl = append(zl, 0xf1+byte(v))
			case v >= math.MinInt8 && v <= math.MaxInt8:
				zl = append(zl, 0xfe, byte(v))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				zl = binary.LittleEndian.AppendUint16(append(zl, 0xc0), uint16(v))
			case v >= -1<<23 && v < 1<<23:
				zl = append(zl, 0xf0, byte(v), byte(v>>8), byte(v>>16))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				zl = binary.LittleEndian.AppendUint32(append(zl, 0xd0), uint32(v))
			default:
				zl = binary.LittleEndian.AppendUint64(append(zl, 0xe0), uint64(v))
			}
		} else {
			n := len(e.s)
			switch {
			case n <= 63:
				zl = append(zl, byte(n))
			case n <= 16383:
				zl = append(zl, 0x40|byte(n>>8), byte(n))
			default:
				zl = binary.BigEndian.AppendUint32(append(zl, 0x80), uint32(n))
			}
			zl = append(zl, e.s...)
		}
		prev = len(zl) - start
	}
	zl = append(zl, 0xff)
	binary.LittleEndian.PutUint32(zl, uint32(len(zl)))
	binary.LittleEndian.PutUint32(zl[4:], uint32(tail))
	binary.LittleEndian.PutUint16(zl[8:], uint16(min(len(es), 0xffff)))
	return zl
}

func buildListpack(es []elem) []byte {
	lp := make([]byte, 6)
	for _, e := range es {
		start := len(lp)
		if e.isInt {
			v := e.i
			switch {
			case v >= 0 && v <= 127:
				lp = append(lp, byte(v))
			case v >= -4096 && v <= 4095:
				u := uint16(v) & 0x1fff
				lp = append(lp, 0xc0|byte(u>>8), byte(u))
			case v >= math.MinInt16 && v <= math.MaxInt16:
				lp = binary.LittleEndian.AppendUint16(append(lp, 0xf1), uint16(v))
			case v >= -1<<23 && v < 1<<23:
				lp = append(lp, 0xf2, byte(v), byte(v>>8), byte(v>>16))
			case v >= math.MinInt32 && v <= math.MaxInt32:
				lp = binary.LittleEndian.AppendUint32(append(lp, 0xf3), uint32(v))
			default:
				lp = binary.LittleEndian.AppendUint64(append(lp, 0xf4), uint64(v))
			}
		} else {
			n := len(e.s)
			switch {
			case n < 64:
				lp = append(lp, 0x80|byte(n))
			case n < 4096:
				lp = append(lp, 0xe0|byte(n>>8), byte(n))
			default:
				lp = binary.LittleEndian.AppendUint32(append(lp, 0xf0), uint32(n))
			}
			lp = append(lp, e.s...)
		}
		l := uint64(len(lp) - start)
		switch {
		case l <= 127:
			lp = append(lp, byte(l))
		case l < 16383:
			lp = append(lp, byte(l>>7), byte(l&127)|128)
		case l < 2097151:
			lp = append(lp, byte(l>>14), byte((l>>7)&127)|128, byte(l&127)|128)
		case l < 268435455:
			lp = append(lp, byte(l>>21), byte((l>>14)&127)|128, byte((l>>7)&127)|128, byte(l&127)|128)
		default:
			lp = append(lp, byte(l>>28), byte((l>>21)&127)|128, byte((l>>14)&127)|128, byte((l>>7)&127)|128, byte(l&127)|128)
		}
	}
	lp = append(lp, 0xff)
	binary.LittleEndian.PutUint32(lp, uint32(len(lp)))
	binary.LittleEndian.PutUint16(lp[4:], uint16(min(len(es), 0xffff)))
	return lp
}

func buildIntset(vs []int64) []byte {
	vs = append([]int64(nil), vs...)
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	w := 2
	for _, v := range vs {
		if v < math.MinInt32 || v > math.MaxInt32 {
			w = 8
		} else if (v < math.MinInt16 || v > math.MaxInt16) && w < 4 {
			w = 4
		}
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(w))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vs)))
	for _, v := range vs {
		switch w {
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

// rdbString serialises s as a raw RDB string.
func rdbString(s []byte) []byte { return appendString(nil, s) }

// ---- reading the server's view of a key ----

type view struct {
	kind  Kind
	str   string
	list  []string           // list items in order
	set   []string           // set members, sorted
	hash  map[string]string  // hash
	zset  map[string]float64 // zset
	count int
}

func serverView(t testing.TB, c *redis.Client, key string) view {
	t.Helper()
	typ, err := c.Type(ctx, key).Result()
	must(t, err)
	switch typ {
	case "string":
		s, err := c.Get(ctx, key).Result()
		must(t, err)
		return view{kind: KindString, str: s, count: 1}
	case "list":
		l, err := c.LRange(ctx, key, 0, -1).Result()
		must(t, err)
		return view{kind: KindList, list: l, count: len(l)}
	case "set":
		m, err := c.SMembers(ctx, key).Result()
		must(t, err)
		sort.Strings(m)
		return view{kind: KindSet, set: m, count: len(m)}
	case "hash":
		m, err := c.HGetAll(ctx, key).Result()
		must(t, err)
		return view{kind: KindHash, hash: m, count: 2 * len(m)}
	case "zset":
		r, err := c.Do(ctx, "ZRANGE", key, 0, -1, "WITHSCORES").StringSlice()
		must(t, err)
		m := map[string]float64{}
		for i := 0; i < len(r); i += 2 {
			f, err := strconv.ParseFloat(r[i+1], 64)
			must(t, err)
			m[r[i]] = f
		}
		return view{kind: KindZSet, zset: m, count: len(r)}
	}
	t.Fatalf("key %q has type %q", key, typ)
	return view{}
}

func decodedView(t testing.TB, k Kind, es [][]byte) view {
	t.Helper()
	v := view{kind: k, count: len(es)}
	switch k {
	case KindString:
		if len(es) != 1 {
			t.Fatalf("string with %d elements", len(es))
		}
		v.str = string(es[0])
	case KindList:
		v.list = []string{}
		for _, e := range es {
			v.list = append(v.list, string(e))
		}
	case KindSet:
		v.set = []string{}
		for _, e := range es {
			v.set = append(v.set, string(e))
		}
		sort.Strings(v.set)
	case KindHash:
		v.hash = map[string]string{}
		for i := 0; i+1 < len(es); i += 2 {
			if _, dup := v.hash[string(es[i])]; dup {
				t.Fatalf("duplicate field %q", es[i])
			}
			v.hash[string(es[i])] = string(es[i+1])
		}
	case KindZSet:
		v.zset = map[string]float64{}
		for i := 0; i+1 < len(es); i += 2 {
			f, err := ParseScore(es[i+1])
			if err != nil {
				t.Fatalf("member %q: %v", es[i], err)
			}
			if _, dup := v.zset[string(es[i])]; dup {
				t.Fatalf("duplicate member %q", es[i])
			}
			v.zset[string(es[i])] = f
		}
	default:
		t.Fatalf("bad kind %v", k)
	}
	return v
}

func sameView(t testing.TB, what string, got, want view) {
	t.Helper()
	if got.kind != want.kind || got.count != want.count {
		t.Fatalf("%s: kind/count %v/%d, want %v/%d", what, got.kind, got.count, want.kind, want.count)
	}
	switch want.kind {
	case KindString:
		if got.str != want.str {
			t.Fatalf("%s: string %q, want %q", what, trunc(got.str), trunc(want.str))
		}
	case KindList, KindSet:
		a, b := got.list, want.list
		if want.kind == KindSet {
			a, b = got.set, want.set
		}
		for i := range b {
			if a[i] != b[i] {
				t.Fatalf("%s: element %d %q, want %q", what, i, trunc(a[i]), trunc(b[i]))
			}
		}
	case KindHash:
		for f, v := range want.hash {
			if g, ok := got.hash[f]; !ok || g != v {
				t.Fatalf("%s: field %q = %q (%v), want %q", what, f, trunc(g), ok, trunc(v))
			}
		}
	case KindZSet:
		for m, s := range want.zset {
			g, ok := got.zset[m]
			if !ok || math.Float64bits(g) != math.Float64bits(s) {
				t.Fatalf("%s: member %q score %v (%v), want %v", what, m, g, ok, s)
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..." + strconv.Itoa(len(s))
	}
	return s
}
