package rdbvalue

import (
	"bytes"
	"errors"
	"fmt"
	gocrc "hash/crc64"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestCRC64(t *testing.T) {
	if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("check value %#x", got)
	}
	// hash/crc64 with the reflected Jones polynomial, init/xorout undone.
	tab := gocrc.MakeTable(0x95AC9329AC4BC9B5)
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 5000)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n < len(buf); n += 1 + n/7 {
		want := ^gocrc.Update(^uint64(0), tab, buf[:n])
		if got := CRC64(0, buf[:n]); got != want {
			t.Fatalf("len %d: %#x, hash/crc64 %#x", n, got, want)
		}
		// Incremental use.
		if got := CRC64(CRC64(0, buf[:n/3]), buf[n/3:n]); got != want {
			t.Fatalf("len %d incremental: %#x, want %#x", n, got, want)
		}
	}
}

func TestLZFOverlap(t *testing.T) {
	// "abc" literal, then a back reference of 8 bytes at distance 3.
	in := []byte{2, 'a', 'b', 'c', (8 - 2) << 5, 2}
	out := make([]byte, 11)
	if !LZFDecompress(in, out) || string(out) != "abcabcabcab" {
		t.Fatalf("%q", out)
	}
	// Long form: 7<<5 plus an extra length byte (7+20+2 = 29 bytes).
	long := []byte{0, 'z', 7 << 5, 20, 0}
	out = make([]byte, 30)
	if !LZFDecompress(long, out) || string(out) != strings.Repeat("z", 30) {
		t.Fatalf("%q", out)
	}
	if LZFDecompress(in, make([]byte, 10)) || LZFDecompress(in, make([]byte, 12)) {
		t.Fatal("wrong output size accepted")
	}
	if LZFDecompress([]byte{0x20, 5}, make([]byte, 3)) {
		t.Fatal("reference before start accepted")
	}
}

type liveCase struct {
	key   string
	setup func(c *redis.Client) error
	typ   byte   // RDB type DUMP must produce (coverage check)
	enc   string // OBJECT ENCODING (coverage check), "" to skip
}

var binStrings = []string{"", "\x00", "\xff\xfe\x00\x80", "caf\xc3", "\xed\xa0\x80", "-", "0", "-0", "007", " 1", "1 ", "+1", "1e3", "0x10",
	"-1", "12", "13", "127", "128", "-128", "-129", "4095", "-4096", "4096", "32767", "-32768", "32768",
	"8388607", "-8388608", "8388608", "2147483647", "-2147483648", "2147483648", "-2147483649",
	"9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809"}

func liveCases() []liveCase {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	var cs []liveCase
	add := func(key string, typ byte, enc string, setup func(c *redis.Client) error) {
		cs = append(cs, liveCase{key, setup, typ, enc})
	}
	set := func(v string) func(c *redis.Client) error {
		return func(c *redis.Client) error { return c.Set(ctx, "", v, 0).Err() }
	}
	// Strings (the key name is filled in by the runner via setupKey).
	for i, v := range binStrings {
		add(fmt.Sprintf("str:%d", i), rdbTypeString, "", set(v))
	}
	add("str:rand100", rdbTypeString, "raw", set(rnd(100)))
	add("str:a10k", rdbTypeString, "raw", set(strings.Repeat("a", 10000)))
	add("str:a21", rdbTypeString, "", set(strings.Repeat("a", 21)))
	add("str:pattern1m", rdbTypeString, "raw", set(strings.Repeat("redback \x00\xff ", 80000)))
	add("str:text", rdbTypeString, "", set(strings.Repeat("the quick brown fox jumps over the lazy dog ", 30)))

	// Hashes.
	add("hash:small", rdbTypeHashListpack, "listpack", func(c *redis.Client) error {
		var args []any
		for i, v := range binStrings {
			args = append(args, v, binStrings[len(binStrings)-1-i]+"v")
		}
		return c.HSet(ctx, "", args...).Err()
	})
	add("hash:ints", rdbTypeHashListpack, "listpack", func(c *redis.Client) error {
		var args []any
		for i := range 100 {
			args = append(args, strconv.Itoa(i*997-5000), strconv.Itoa(i*i*i*i*i-1<<40))
		}
		return c.HSet(ctx, "", args...).Err()
	})
	add("hash:one", rdbTypeHashListpack, "listpack", func(c *redis.Client) error { return c.HSet(ctx, "", "", "").Err() })
	add("hash:1000", rdbTypeHash, "hashtable", func(c *redis.Client) error {
		var args []any
		for i := range 1000 {
			args = append(args, fmt.Sprintf("f%d\x00", i), rnd(i%20))
		}
		return c.HSet(ctx, "", args...).Err()
	})
	add("hash:bigval", rdbTypeHash, "hashtable", func(c *redis.Client) error {
		return c.HSet(ctx, "", "a", "1", "b", strings.Repeat("x", 100), "c", rnd(100), "-5", "-5").Err()
	})

	// Lists.
	add("list:small", rdbTypeListQuicklist2, "quicklist", func(c *redis.Client) error {
		var args []any
		for _, v := range binStrings {
			args = append(args, v)
		}
		return c.RPush(ctx, "", args...).Err()
	})
	add("list:10k", rdbTypeListQuicklist2, "quicklist", func(c *redis.Client) error {
		var args []any
		for i := range 10000 {
			if i%3 == 0 {
				args = append(args, strconv.Itoa(i*31-100000))
			} else {
				args = append(args, fmt.Sprintf("item-%d-%s", i, rnd(i%7)))
			}
		}
		return c.RPush(ctx, "", args...).Err()
	})
	add("list:compressed", rdbTypeListQuicklist2, "quicklist", func(c *redis.Client) error {
		if err := c.ConfigSet(ctx, "list-compress-depth", "1").Err(); err != nil {
			return err
		}
		defer c.ConfigSet(ctx, "list-compress-depth", "0")
		var args []any
		for i := range 10000 {
			args = append(args, fmt.Sprintf("compressible item number %d", i))
		}
		return c.RPush(ctx, "", args...).Err()
	})
	add("list:plain", rdbTypeListQuicklist2, "quicklist", func(c *redis.Client) error {
		if err := c.Do(ctx, "DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100").Err(); err != nil {
			return err
		}
		defer c.Do(ctx, "DEBUG", "QUICKLIST-PACKED-THRESHOLD", strconv.Itoa(1<<30))
		return c.RPush(ctx, "", "a", strings.Repeat("P", 200), "b", rnd(300), "7", strings.Repeat("z", 5000)).Err()
	})

	// Sets.
	add("set:int16", rdbTypeSetIntset, "intset", func(c *redis.Client) error { return c.SAdd(ctx, "", 1, -1, 0, 32767, -32768).Err() })
	add("set:int32", rdbTypeSetIntset, "intset", func(c *redis.Client) error {
		return c.SAdd(ctx, "", 1, 2147483647, -2147483648, 40000).Err()
	})
	add("set:int64", rdbTypeSetIntset, "intset", func(c *redis.Client) error {
		return c.SAdd(ctx, "", "9223372036854775807", "-9223372036854775808", "5", "-1").Err()
	})
	add("set:strings", rdbTypeSet, "", func(c *redis.Client) error {
		var args []any
		for _, v := range binStrings {
			args = append(args, v)
		}
		return c.SAdd(ctx, "", args...).Err()
	})
	add("set:600", rdbTypeSet, "hashtable", func(c *redis.Client) error {
		var args []any
		for i := range 600 {
			args = append(args, fmt.Sprintf("m%d%s", i, rnd(i%5)))
		}
		return c.SAdd(ctx, "", args...).Err()
	})
	add("set:ints1000", rdbTypeSet, "hashtable", func(c *redis.Client) error {
		var args []any
		for i := range 1000 {
			args = append(args, i*1000)
		}
		return c.SAdd(ctx, "", args...).Err()
	})

	// Sorted sets.
	scores := []float64{0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, 1e21, 1e-7, 5e-324, -5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.Inf(1), math.Inf(-1), 2.2250738585072014e-308, 123456789012345680, 9007199254740993, -4096, 4095, 1 << 40, 3.141592653589793}
	zadd := func(n int) func(c *redis.Client) error {
		return func(c *redis.Client) error {
			var zs []redis.Z
			for i := range n {
				m := binStrings[i%len(binStrings)] + strconv.Itoa(i/len(binStrings))
				if i < len(binStrings) {
					m = binStrings[i]
				}
				zs = append(zs, redis.Z{Score: scores[i%len(scores)] * float64(1+i/len(scores)), Member: m})
			}
			return c.ZAdd(ctx, "", zs...).Err()
		}
	}
	add("zset:small", rdbTypeZSetListpack, "listpack", zadd(len(binStrings)))
	add("zset:1000", rdbTypeZSet2, "skiplist", zadd(1000))
	add("zset:bigmember", rdbTypeZSet2, "skiplist", func(c *redis.Client) error {
		return c.ZAdd(ctx, "", redis.Z{Score: -0.0, Member: strings.Repeat("m", 100)}, redis.Z{Score: math.Inf(-1), Member: ""}).Err()
	})
	add("zset:negzero", rdbTypeZSetListpack, "listpack", func(c *redis.Client) error {
		return c.ZAdd(ctx, "", redis.Z{Score: math.Copysign(0, -1), Member: "nz"}, redis.Z{Score: 5e-324, Member: "tiny"}).Err()
	})
	return cs
}

// runSetup runs a case's setup against key (the setup functions use "" as
// the key; a wrapping client is not worth it, so rename afterwards).
func runSetup(t testing.TB, c *redis.Client, lc liveCase) {
	t.Helper()
	must(t, c.Del(ctx, "").Err())
	must(t, lc.setup(c))
	must(t, c.Rename(ctx, "", lc.key).Err())
}

func TestDecodeLive(t *testing.T) {
	c := server(t)
	var dec Decoder
	for _, lc := range liveCases() {
		runSetup(t, c, lc)
		if lc.enc != "" {
			enc, err := c.ObjectEncoding(ctx, lc.key).Result()
			must(t, err)
			if enc != lc.enc {
				t.Fatalf("%s: encoding %s, want %s", lc.key, enc, lc.enc)
			}
		}
		p := dump(t, c, lc.key)
		if p[0] != lc.typ {
			t.Fatalf("%s: DUMP type %d, want %d", lc.key, p[0], lc.typ)
		}
		if v := PayloadRDBVersion(p); v != 10 {
			t.Fatalf("%s: RDB version %d", lc.key, v)
		}
		if p[0] == rdbTypeListQuicklist2 {
			plain, lzf := quicklistShape(t, p)
			if (lc.key == "list:plain") != (plain > 0) || (lc.key == "list:compressed" && lzf < 2) {
				t.Fatalf("%s: %d plain nodes, %d LZF nodes", lc.key, plain, lzf)
			}
		}
		want := serverView(t, c, lc.key)
		// Package function, no buffers.
		k, es, err := Decode(p, nil, nil)
		must(t, err)
		sameView(t, lc.key, decodedView(t, k, es), want)
		// Tiny scratch: forces chunk switches mid-decode.
		k, es, err = Decode(p, make([][]byte, 0, 1), make([]byte, 0, 3))
		must(t, err)
		sameView(t, lc.key+" (small scratch)", decodedView(t, k, es), want)
		// Reused decoder.
		k, es, err = dec.Decode(p)
		must(t, err)
		sameView(t, lc.key+" (decoder)", decodedView(t, k, es), want)
		for _, e := range es {
			if cap(e) != len(e) {
				t.Fatalf("%s: element capacity %d > length %d", lc.key, cap(e), len(e))
			}
		}
	}
}

// quicklistShape counts the PLAIN and the LZF-compressed nodes of a
// quicklist 2 payload.
func quicklistShape(t *testing.T, p []byte) (plain, lzf int) {
	d := decoder{p: p[:len(p)-footerLen], pos: 1}
	n, _, err := d.length()
	must(t, err)
	for range n {
		container, _, err := d.length()
		must(t, err)
		if container == quicklistNodePlain {
			plain++
		}
		if d.p[d.pos] == 0xc3 {
			lzf++
		}
		_, err = d.str()
		must(t, err)
	}
	return plain, lzf
}

// TestDecodeAliasing checks decoded strings are sub-slices of the payload
// when stored raw (no copying).
func TestDecodeAliasing(t *testing.T) {
	p := wrapPayload(rdbTypeHashListpack, rdbString(buildListpack([]elem{str("field"), str("value")})), 10)
	_, es, err := Decode(p, nil, nil)
	must(t, err)
	if &es[0][0] != &p[bytes.Index(p, []byte("field"))] {
		t.Fatal("listpack string was copied")
	}
	allocs := testing.AllocsPerRun(100, func() {
		var dec Decoder
		_, _, _ = dec.Decode(p)
	})
	if allocs > 2 {
		t.Fatalf("allocs %v", allocs)
	}
	var dec Decoder
	_, _, _ = dec.Decode(p)
	if a := testing.AllocsPerRun(100, func() { _, _, _ = dec.Decode(p) }); a != 0 {
		t.Fatalf("steady-state allocs %v", a)
	}
}

// constructed builds payloads of the encodings a Redis 7.0 server does not
// DUMP (older ziplist-based and plain forms), checks Redis accepts them
// (deep sanitisation on), and compares Decode with what the server reads.
func TestDecodeConstructed(t *testing.T) {
	c := server(t)
	var mixed []elem
	for _, v := range []int64{0, 1, 12, 13, -1, 127, -128, 128, 4095, -4096, 4096, 32767, -32768, 32768, -32769, 8388607, -8388608, 8388608,
		-8388609, 2147483647, -2147483648, 2147483648, -2147483649, math.MaxInt64, math.MinInt64} {
		mixed = append(mixed, num(v))
	}
	for _, n := range []int{0, 1, 63, 64, 253, 254, 255, 300, 4095, 4096, 16383, 16384, 20000} {
		s := strings.Repeat(string(rune('a'+n%26)), n)
		if n > 0 {
			s = s[:n-1] + "\xff"
		}
		mixed = append(mixed, str(s))
	}
	mixed = append(mixed, str("\x00bin\xff"), str("1x"))
	pairsOf := func(es []elem) []elem { // make unique fields: prefix field index
		var out []elem
		for i, e := range es {
			out = append(out, str(fmt.Sprintf("f%d", i)), e)
		}
		return out
	}
	zsetOf := func(scores []elem) []elem {
		var out []elem
		for i, s := range scores {
			out = append(out, str(fmt.Sprintf("m%d", i)), s)
		}
		return out
	}
	zscores := []elem{num(0), num(-5), num(1 << 40), num(math.MinInt64 + 1), str("1.5"), str("inf"), str("-inf"), str("-0"), str("5e-324"),
		str("1.7976931348623157e+308"), str("0.1")}

	type cc struct {
		name    string
		typ     byte
		body    []byte
		version int
		want    []string // nil: compare with the server only
		loads   bool     // Redis 7.0 can RESTORE it
	}
	var cases []cc
	var body []byte

	cases = append(cases, cc{"list-ziplist", rdbTypeListZiplist, rdbString(buildZiplist(mixed)), 9, texts(mixed), true})
	body = appendLen(nil, 3)
	body = append(body, rdbString(buildZiplist(mixed[:5]))...)
	body = append(body, rdbString(buildZiplist(mixed[5:]))...)
	body = append(body, rdbString(buildZiplist([]elem{str("last")}))...)
	cases = append(cases, cc{"list-quicklist", rdbTypeListQuicklist, body, 9, append(texts(mixed), "last"), true})
	body = appendLen(nil, 3)
	body = append(body, 2)
	body = append(body, rdbString(buildListpack(mixed[:7]))...)
	body = append(body, 1)
	body = append(body, rdbString([]byte(strings.Repeat("plain", 40)))...)
	body = append(body, 2)
	body = append(body, rdbString(buildListpack(mixed[7:]))...)
	cases = append(cases, cc{"list-quicklist2", rdbTypeListQuicklist2, body, 10,
		append(append(texts(mixed[:7]), strings.Repeat("plain", 40)), texts(mixed[7:])...), true})
	body = appendLen(nil, uint64(len(mixed)))
	for _, e := range mixed {
		body = append(body, rdbString([]byte(e.text()))...)
	}
	cases = append(cases, cc{"list-plain", rdbTypeList, body, 6, texts(mixed), true})
	cases = append(cases, cc{"hash-ziplist", rdbTypeHashZiplist, rdbString(buildZiplist(pairsOf(mixed))), 9, texts(pairsOf(mixed)), true})
	cases = append(cases, cc{"hash-listpack", rdbTypeHashListpack, rdbString(buildListpack(pairsOf(mixed))), 10, texts(pairsOf(mixed)), true})
	cases = append(cases, cc{"zset-ziplist", rdbTypeZSetZiplist, rdbString(buildZiplist(zsetOf(zscores))), 9, texts(zsetOf(zscores)), true})
	cases = append(cases, cc{"zset-listpack", rdbTypeZSetListpack, rdbString(buildListpack(zsetOf(zscores))), 10, texts(zsetOf(zscores)), true})
	var ints []int64
	for _, e := range mixed {
		if e.isInt {
			ints = append(ints, e.i)
		}
	}
	cases = append(cases, cc{"set-intset64", rdbTypeSetIntset, rdbString(buildIntset(ints)), 9, nil, true})
	cases = append(cases, cc{"set-intset16", rdbTypeSetIntset, rdbString(buildIntset([]int64{-32768, 0, 32767})), 9, []string{"-32768", "0", "32767"}, true})
	cases = append(cases, cc{"set-intset32", rdbTypeSetIntset, rdbString(buildIntset([]int64{-32769, 0, 2147483647})), 9, []string{"-32769", "0", "2147483647"}, true})
	// Sets are listpack-encoded from Redis 7.2 on; 7.0 cannot load type 20.
	var members []elem
	for i, e := range mixed {
		if !e.isInt {
			e.s = fmt.Sprint(i) + e.s
		}
		members = append(members, e)
	}
	cases = append(cases, cc{"set-listpack", rdbTypeSetListpack, rdbString(buildListpack(members)), 11, texts(members), false})
	// Old text-score zset (RDB_TYPE_ZSET).
	body = appendLen(nil, 4)
	body = append(body, rdbString([]byte("a"))...)
	body = append(body, 3, '1', '.', '5')
	body = append(body, rdbString([]byte("b"))...)
	body = append(body, 254)
	body = append(body, rdbString([]byte("c"))...)
	body = append(body, 255)
	body = append(body, rdbString([]byte("d"))...)
	body = append(body, 23)
	body = append(body, "2.2250738585072014e-308"...)
	// Skiplists are written greatest first; Decode hands them out reversed.
	cases = append(cases, cc{"zset-text", rdbTypeZSet, body, 6, []string{"d", "2.2250738585072014e-308", "c", "-inf", "b", "inf", "a", "1.5"}, true})
	// Integer-encoded and LZF strings in a plain hash.
	body = appendLen(nil, 3)
	body = append(body, 0xc0, 0x80)                                 // int8 -128
	body = append(body, 0xc1, 0x00, 0x80)                           // int16 -32768
	body = append(body, 0xc2, 0xff, 0xff, 0xff, 0x7f)               // int32 max
	body = append(body, 0xc0, 5)                                    // "5"
	body = append(body, 0xc3, 6, 11, 2, 'a', 'b', 'c', (8-2)<<5, 2) // "abcabcabcab"
	body = append(body, rdbString([]byte("x"))...)
	cases = append(cases, cc{"hash-encoded-strings", rdbTypeHash, body, 9, []string{"-128", "-32768", "2147483647", "5", "abcabcabcab", "x"}, true})

	for i, tc := range cases {
		p := wrapPayload(tc.typ, tc.body, tc.version)
		k, es, err := Decode(p, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.want != nil {
			got := make([]string, len(es))
			for j, e := range es {
				got[j] = string(e)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("%s: got %q\nwant %q", tc.name, got, tc.want)
			}
		}
		if !tc.loads {
			continue
		}
		key := fmt.Sprintf("c%d", i)
		if err := c.RestoreReplace(ctx, key, 0, string(p)).Err(); err != nil {
			t.Fatalf("%s: server refused the hand-made payload: %v", tc.name, err)
		}
		sameView(t, tc.name, decodedView(t, k, es), serverView(t, c, key))
	}
}

func TestUnsupported(t *testing.T) {
	c := server(t)
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []any{"a", "b"}}).Err())
	if _, _, err := Decode(dump(t, c, "s"), nil, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("stream: %v", err)
	}
	for _, typ := range []byte{6, 7, 9, 15, 19, 21, 22, 23, 24, 25, 26, 200} {
		if _, _, err := Decode(wrapPayload(typ, []byte{1, 2, 3}, 12), nil, nil); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("type %d: %v", typ, err)
		}
	}
}

func TestCorrupt(t *testing.T) {
	c := server(t)
	var ps [][]byte
	for _, lc := range liveCases() {
		runSetup(t, c, lc)
		if p := dump(t, c, lc.key); len(p) <= 2048 { // quadratic below
			ps = append(ps, p)
		}
	}
	if len(ps) < 40 {
		t.Fatalf("only %d small payloads", len(ps))
	}
	for _, p := range ps {
		// Every flipped bit of the first bytes, and every byte: CRC mismatch.
		for i := range p {
			q := bytes.Clone(p)
			q[i] ^= 1 << (i % 8)
			if _, _, err := Decode(q, nil, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flipped byte %d of %x: %v", i, p[:min(len(p), 40)], err)
			}
		}
		// Truncated at every offset, with the original tail or a fixed CRC.
		for n := range len(p) {
			if _, _, err := Decode(p[:n], nil, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
			if n >= footerLen+1 {
				body := append(bytes.Clone(p[:n-footerLen]), p[len(p)-footerLen:]...)
				if _, _, err := Decode(fixCRC(body), nil, nil); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("body truncated to %d (CRC fixed): %v", n-footerLen, err)
				}
			}
		}
	}
}

func TestHugeLengths(t *testing.T) {
	huge := []struct {
		name string
		typ  byte
		body []byte
	}{
		{"string 64-bit length", rdbTypeString, []byte{0x81, 0x40, 0, 0, 0, 0, 0, 0, 0, 'x'}},
		{"string 32-bit length", rdbTypeString, []byte{0x80, 0x7f, 0xff, 0xff, 0xff, 'x'}},
		{"lzf 1 TiB", rdbTypeString, []byte{0xc3, 2, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 'x'}},
		{"lzf 500 MiB from 200 bytes", rdbTypeString, append([]byte{0xc3, 0x40 | 0, 200, 0x80, 0x1f, 0x40, 0, 0}, make([]byte, 200)...)},
		{"hash 2^60 fields", rdbTypeHash, []byte{0x81, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 1, 'b'}},
		{"list 2^32-1 items", rdbTypeList, []byte{0x80, 0xff, 0xff, 0xff, 0xff, 1, 'a'}},
		{"zset 2^40", rdbTypeZSet2, []byte{0x81, 0, 0, 1, 0, 0, 0, 0, 0, 1, 'a'}},
		{"quicklist 2^40 nodes", rdbTypeListQuicklist2, []byte{0x81, 0, 0, 1, 0, 0, 0, 0, 0, 2, 1, 'a'}},
		{"intset 2^31 items", rdbTypeSetIntset, append([]byte{12}, 2, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 2, 0)},
		{"ziplist 32-bit string", rdbTypeListZiplist, rdbString([]byte{16, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0x80, 0x7f, 0xff, 0xff, 0xff, 0xff}[:16])},
		{"listpack 32-bit string", rdbTypeHashListpack, rdbString([]byte{14, 0, 0, 0, 1, 0, 0xf0, 0xff, 0xff, 0xff, 0x7f, 'a', 0xff, 0xff}[:13])},
	}
	for _, h := range huge {
		p := wrapPayload(h.typ, h.body, 10)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := Decode(p, nil, nil)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v", h.name, err)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<16 {
			t.Fatalf("%s: allocated %d bytes", h.name, d)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c := server(f)
	for _, lc := range liveCases() {
		if strings.HasPrefix(lc.key, "str:") && lc.key != "str:a21" && lc.key != "str:3" {
			continue
		}
		if lc.key == "list:10k" || lc.key == "list:compressed" || lc.key == "hash:ints" {
			continue
		}
		runSetup(f, c, lc)
		f.Add(dump(f, c, lc.key))
	}
	f.Add(wrapPayload(rdbTypeListZiplist, rdbString(buildZiplist([]elem{num(5), num(-300), num(1 << 20), num(1 << 40), str("x"), num(10), num(1 << 30)})), 9))
	f.Add(wrapPayload(rdbTypeSetIntset, rdbString(buildIntset([]int64{1, 2, 3})), 9))
	f.Add(wrapPayload(rdbTypeListQuicklist, append([]byte{1}, rdbString(buildZiplist([]elem{str("a"), num(-2)}))...), 9))
	f.Add(wrapPayload(rdbTypeZSet, []byte{1, 1, 'a', 254}, 9))
	f.Fuzz(func(t *testing.T, data []byte) {
		// As is (mostly a CRC mismatch), and with the CRC fixed so that the
		// parser itself is exercised.
		check := func(p []byte) {
			k, es, err := Decode(p, nil, nil)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			total := 0
			for _, e := range es {
				total += len(e)
			}
			if total > 100*len(p)+64 {
				t.Fatalf("%d bytes of elements from a %d-byte payload", total, len(p))
			}
			if k == KindHash || k == KindZSet {
				if len(es)%2 != 0 {
					t.Fatal("odd pairs")
				}
			}
			// Whatever decodes must encode (when representable).
			if _, err := Encode(nil, k, es, 10); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
		}
		check(data)
		check(fixCRC(bytes.Clone(data)))
	})
}
