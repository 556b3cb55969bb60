package fidelity

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options tune Fill. Zero values take the defaults.
type Options struct {
	// DBs are the databases to fill: the first gets every shape, the second
	// a smaller set of one key per type (with a field-TTL hash and a vector
	// set where the server has them), the others a few strings. Default 0,
	// 3 and the server's last database.
	DBs []int
	// Big is the element count of the big collections: over every listpack
	// and intset limit of the default configuration (512). Default 600.
	Big int
	// BigString is the size of the big strings. Default 1 MiB + 4 KiB.
	BigString int
	// ListCompressDepth is set on the server (CONFIG SET
	// list-compress-depth) before the lists are written, so that the inner
	// nodes of quicklists are LZF-compressed. Default 1; negative leaves
	// the server's setting.
	ListCompressDepth int
}

// Shape is one key Fill wrote.
type Shape struct {
	KeyRef
	Type string // TYPE's answer
	// Encoding is the OBJECT ENCODING Fill checked ("" when not checked).
	Encoding string
	// FieldTTLs: a hash some of whose fields have an expiry time.
	FieldTTLs bool
	// Raw: a type redback keeps as its DUMP payload (a module type).
	Raw  bool
	Note string // what the shape covers
}

// Manifest lists what Fill wrote.
type Manifest struct {
	Caps   Caps
	Shapes []Shape
}

// Len is the number of keys.
func (m *Manifest) Len() int { return len(m.Shapes) }

// Where returns the keys of the shapes fn selects, in the order written.
func (m *Manifest) Where(fn func(Shape) bool) []KeyRef {
	var out []KeyRef
	for _, s := range m.Shapes {
		if fn(s) {
			out = append(out, s.KeyRef)
		}
	}
	return out
}

// FieldTTLKeys are the hashes with field TTLs.
func (m *Manifest) FieldTTLKeys() []KeyRef { return m.Where(func(s Shape) bool { return s.FieldTTLs }) }

// RawKeys counts the keys of module types by TYPE name.
func (m *Manifest) RawKeys() map[string]int64 {
	out := map[string]int64{}
	for _, s := range m.Shapes {
		if s.Raw {
			out[s.Type]++
		}
	}
	return out
}

// KeysPerDB counts the keys of each database.
func (m *Manifest) KeysPerDB() map[int]int64 {
	out := map[int]int64{}
	for _, s := range m.Shapes {
		out[s.DB]++
	}
	return out
}

// DBs lists the databases written, ascending.
func (m *Manifest) DBs() []int {
	var dbs []int
	for db := range m.KeysPerDB() {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	return dbs
}

// Encodings lists the distinct type/encoding pairs checked ("hash/listpackex").
func (m *Manifest) Encodings() []string {
	seen := map[string]bool{}
	for _, s := range m.Shapes {
		if s.Encoding != "" {
			seen[s.Type+"/"+s.Encoding] = true
		}
	}
	var out []string
	for e := range seen {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// Fill writes the shapes into the server c points at (any database of it):
// every type in every internal encoding the server has, binary bytes in
// keys, fields, members and values, key TTLs, hash field TTLs (where the
// server has them), streams with deletions, trims and consumer groups, and
// vector sets (where the server has them). It checks with OBJECT ENCODING
// that each shape got the encoding it is meant to cover, and fails when
// one did not. The databases must be empty. The data depends only on rnd
// (and, for TTLs, on the clock).
func Fill(ctx context.Context, c *redis.Client, caps Caps, rnd *rand.Rand, opt Options) (*Manifest, error) {
	if opt.Big <= 0 {
		opt.Big = 600
	}
	if opt.Big <= 512 {
		return nil, fmt.Errorf("Options.Big %d: the big collections must exceed the listpack and intset limits (512)", opt.Big)
	}
	if opt.BigString <= 0 {
		opt.BigString = 1<<20 + 4096
	}
	if opt.ListCompressDepth == 0 {
		opt.ListCompressDepth = 1
	}
	if len(opt.DBs) == 0 {
		opt.DBs = []int{0, 3}
		if caps.Databases > 4 {
			opt.DBs = append(opt.DBs, caps.Databases-1)
		}
	}
	if opt.ListCompressDepth > 0 {
		if err := c.ConfigSet(ctx, "list-compress-depth", strconv.Itoa(opt.ListCompressDepth)).Err(); err != nil {
			return nil, fmt.Errorf("CONFIG SET list-compress-depth: %w", err)
		}
	}
	m := &Manifest{Caps: caps}
	for i, db := range opt.DBs {
		dc := dbClient(c, db)
		f := &filler{ctx: ctx, c: dc, db: db, caps: caps, rnd: rnd, opt: opt, m: m, pipe: dc.Pipeline()}
		var err error
		switch i {
		case 0:
			err = f.full()
		case 1:
			err = f.light()
		default:
			err = f.tiny()
		}
		if err == nil {
			err = f.flush()
		}
		if err == nil {
			err = f.verify()
		}
		dc.Close()
		if err != nil {
			return nil, fmt.Errorf("fill database %d: %w", db, err)
		}
	}
	return m, nil
}

type filler struct {
	ctx  context.Context
	c    *redis.Client
	db   int
	caps Caps
	rnd  *rand.Rand
	opt  Options
	m    *Manifest
	pipe redis.Pipeliner
	from int // the first shape of this database in m.Shapes
	set  bool
}

// cmd queues a command.
func (f *filler) cmd(args ...any) {
	f.pipe.Do(f.ctx, args...)
}

// flush sends the queued commands; any command's error fails the fill.
func (f *filler) flush() error {
	if f.pipe.Len() == 0 {
		return nil
	}
	cmds, err := f.pipe.Exec(f.ctx)
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil && c.Err() != redis.Nil {
				return fmt.Errorf("%s: %w", trimArgs(c.Args()), c.Err())
			}
		}
		return err
	}
	return nil
}

// do runs one command now and returns its reply.
func (f *filler) do(args ...any) (any, error) {
	if err := f.flush(); err != nil {
		return nil, err
	}
	v, err := f.c.Do(f.ctx, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", trimArgs(args), err)
	}
	return v, nil
}

func trimArgs(args []any) string {
	var parts []string
	for i, a := range args {
		if i == 6 {
			parts = append(parts, fmt.Sprintf("...(%d arguments)", len(args)))
			break
		}
		s := fmt.Sprint(a)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		parts = append(parts, strconv.Quote(s))
	}
	return strings.Join(parts, " ")
}

// shape records a key written.
func (f *filler) shape(key, typ, enc, note string) *Shape {
	if !f.set {
		f.from, f.set = len(f.m.Shapes), true
	}
	f.m.Shapes = append(f.m.Shapes, Shape{KeyRef: KeyRef{f.db, key}, Type: typ, Encoding: enc, Note: note})
	return &f.m.Shapes[len(f.m.Shapes)-1]
}

// verify checks every shape of this database: its TYPE and, where set,
// its OBJECT ENCODING.
func (f *filler) verify() error {
	if !f.set {
		return nil
	}
	shapes := f.m.Shapes[f.from:]
	pipe := f.c.Pipeline()
	types := make([]*redis.StatusCmd, len(shapes))
	encs := make([]*redis.StringCmd, len(shapes))
	for i, s := range shapes {
		types[i] = pipe.Type(f.ctx, s.Key)
		encs[i] = pipe.ObjectEncoding(f.ctx, s.Key)
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		return fmt.Errorf("TYPE/OBJECT ENCODING: %w", err)
	}
	var bad []string
	for i, s := range shapes {
		if got := types[i].Val(); got != s.Type {
			bad = append(bad, fmt.Sprintf("%s (%s): type %q, want %q", quote(s.Key), s.Note, got, s.Type))
			continue
		}
		if got := encs[i].Val(); s.Encoding != "" && got != s.Encoding {
			bad = append(bad, fmt.Sprintf("%s (%s): encoding %q, want %q", quote(s.Key), s.Note, got, s.Encoding))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("on %s the shapes did not get their types and encodings:\n  %s", f.caps, strings.Join(bad, "\n  "))
	}
	return nil
}

// Random content.

// bin returns n random bytes that hold a NUL and an invalid UTF-8
// sequence when n >= 4.
func (f *filler) bin(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.rnd.UintN(256))
	}
	if n >= 4 {
		p := f.rnd.IntN(n - 3)
		b[p], b[p+1], b[p+2] = 0, 0xc3, 0x28 // NUL, then a bad continuation
	}
	return string(b)
}

// txt returns n random lowercase letters and digits.
func (f *filler) txt(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[f.rnd.IntN(len(chars))]
	}
	return string(b)
}

// ttlMS is a TTL of 1 to 48 hours with a random millisecond part.
func (f *filler) ttlMS() int64 {
	return int64(time.Hour/time.Millisecond) + f.rnd.Int64N(47*int64(time.Hour/time.Millisecond))
}

func (f *filler) expire(key string) { f.cmd("PEXPIRE", key, f.ttlMS()) }

// Interesting values.

// numbers are strings that look like integers (listpack and intset integer
// encodings of every width) and strings that only nearly do.
var numbers = []string{"0", "1", "-1", "12", "127", "128", "-128", "-129", "4095", "-4096", "4096",
	"32767", "-32768", "32768", "8388607", "-8388608", "8388608", "2147483647", "-2147483648",
	"2147483648", "9223372036854775807", "-9223372036854775808",
	// not integers to Redis: they must come back as these very bytes
	"9223372036854775808", "-9223372036854775809", "007", "+1", "-0", " 1", "1 ", "1.0", "1e3", "0x10", ""}

// oddBytes are short values with bytes that break naive copies.
var oddBytes = []string{"", "\x00", "\x00\x00\x01", "\xff", "\xff\xfe\xfd", "\xc3\x28", "\xe2\x82", "a\r\nb",
	"\"quoted\"", "back\\slash", "tab\there", "ünïcödé", "日本語", "\U0001F600", "{tag}", "}{", "%s%d", "\x7f"}

// specialScores are the sorted-set scores at the edges of float64.
var specialScores = []float64{math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 5e-324, -5e-324,
	math.MaxFloat64, -math.MaxFloat64, 2.2250738585072014e-308, 0.1, 1e21, 1e-7, 9007199254740993,
	123456789012345680, 3.141592653589793, 1, -1, 4096, -4096, 1 << 40}

func score(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// full writes every shape.
func (f *filler) full() error {
	for _, step := range []func() error{f.strings, f.lists, f.sets, f.zsets, f.hashes, f.fieldTTLHashes, f.streams, f.vectorSets} {
		if err := step(); err != nil {
			return err
		}
		if err := f.flush(); err != nil {
			return err
		}
	}
	return nil
}

func (f *filler) strings() error {
	str := func(key, val, enc, note string) {
		f.cmd("SET", key, val)
		f.shape(key, "string", enc, note)
	}
	str("str:int", "12345", "int", "integer")
	str("str:int-shared", "7", "int", "shared integer")
	str("str:int-min", "-9223372036854775808", "int", "smallest integer")
	str("str:int-max", "9223372036854775807", "int", "largest integer")
	for i, n := range []string{"9223372036854775808", "007", "+1", "-0", " 1", "1.0", "0x10"} {
		str(fmt.Sprintf("str:almost-int:%d", i), n, "embstr", "integer-like text "+strconv.Quote(n))
	}
	str("str:embstr", f.txt(20), "embstr", "short string")
	str("str:emb-limit", f.txt(44), "", "44 bytes, the embstr limit")
	str("str:raw", f.txt(300), "raw", "raw string") // Valkey 9 embeds up to about 100 bytes
	str("str:binary", "\x00\xff\xfe\x80\xc3\x28 bytes", "embstr", "binary bytes")
	str("str:binary-raw", f.bin(300), "raw", "binary raw string")
	str("str:empty", "", "embstr", "empty string")
	str("", "the empty key name", "embstr", "empty key name")
	for i, k := range []string{"\x00", "\xff\xfe\x00key", "key\r\nwith crlf", "}{", "a}b{", "{tag}x", "ünïcödé", "\xc3\x28"} {
		str(k, fmt.Sprintf("odd key %d", i), "", "odd key name")
	}
	str(strings.Repeat("long-key-", 50), "v", "", "450-byte key name")
	str("str:ttl", f.txt(30), "", "string with a TTL") // raw on Valkey 8.1, which embeds the expiry
	f.expire("str:ttl")
	str("str:int-ttl", "424242", "int", "integer with a TTL")
	f.expire("str:int-ttl")
	str("str:far-ttl", "2100", "int", "expiry in the year 2100")
	f.cmd("PEXPIREAT", "str:far-ttl", int64(4102444800123))
	// Big strings: over 1 MiB, read in windows.
	var big strings.Builder
	for big.Len() < f.opt.BigString {
		big.WriteString("redback \x00\xff ")
		big.WriteString(f.txt(30))
	}
	str("str:big-binary", big.String(), "raw", "big binary string")
	f.expire("str:big-binary")
	// Valid UTF-8 whose multi-byte characters straddle every window edge.
	var u strings.Builder
	for u.Len() < f.opt.BigString/3 {
		u.WriteString("ü€\U0001D11E ")
	}
	str("str:big-utf8", u.String(), "raw", "big UTF-8 string with multi-byte characters")
	return nil
}

func (f *filler) lists() error {
	small := "quicklist"
	if f.caps.ListpackLists {
		small = "listpack"
	}
	list := func(key string, items []string, enc, note string) {
		for start := 0; start < len(items); start += 1000 {
			args := []any{"RPUSH", key}
			for _, it := range items[start:min(start+1000, len(items))] {
				args = append(args, it)
			}
			f.cmd(args...)
		}
		f.shape(key, "list", enc, note)
	}
	list("list:small", oddBytes, small, "small list of odd bytes")
	list("list:ints", numbers, small, "small list of integer-like items")
	list("list:one", []string{""}, small, "one empty item")
	var mid []string
	for i := range 190 {
		mid = append(mid, fmt.Sprintf("%04d:%s", i, f.txt(150)))
	}
	list("list:multi-node", mid, "quicklist", "quicklist of several compressed nodes, under 200 items")
	var big []string
	for i := range 5 * f.opt.Big {
		switch i % 4 {
		case 0:
			big = append(big, strconv.Itoa(i*31-10000))
		case 1:
			big = append(big, f.bin(1+i%40))
		default:
			big = append(big, fmt.Sprintf("compressible item number %d", i))
		}
	}
	list("list:big", big, "quicklist", "big compressed quicklist")
	list("a}b{\xff", big[:f.opt.Big], "quicklist", "big list under a key with } and no hash tag")
	list("list:big-item", []string{"a", strings.Repeat("x", 70<<10), "b"}, "quicklist", "one item over 64 KiB")
	list("list:ttl", []string{"a", "b", "c"}, small, "list with a TTL")
	f.expire("list:ttl")
	// Plain quicklist nodes: items over the packed threshold.
	if err := f.flush(); err != nil {
		return err
	}
	if _, err := f.do("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 100); err != nil {
		return err
	}
	list("list:plain", []string{strings.Repeat("Q", 9000), "a", strings.Repeat("P", 200), "7", f.bin(300), "b", strings.Repeat("z", 5000)}, "quicklist", "quicklist with plain nodes")
	if err := f.flush(); err != nil {
		return err
	}
	_, err := f.do("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 1<<30)
	return err
}

func (f *filler) sets() error {
	set := func(key string, members []string, enc, note string) {
		for start := 0; start < len(members); start += 1000 {
			args := []any{"SADD", key}
			for _, m := range members[start:min(start+1000, len(members))] {
				args = append(args, m)
			}
			f.cmd(args...)
		}
		f.shape(key, "set", enc, note)
	}
	small := "hashtable"
	if f.caps.ListpackSets {
		small = "listpack"
	}
	set("set:int16", []string{"1", "-1", "0", "32767", "-32768"}, "intset", "16-bit intset")
	set("set:int32", []string{"1", "2147483647", "-2147483648", "40000"}, "intset", "32-bit intset")
	set("set:int64", []string{"9223372036854775807", "-9223372036854775808", "5", "-1"}, "intset", "64-bit intset")
	var ints []string
	for i := range 500 {
		ints = append(ints, strconv.FormatInt(int64(i)*18446744073709-4611686018427387904, 10))
	}
	set("set:int64-many", ints, "intset", "64-bit intset of 500 (over 200 members)")
	set("set:strings", oddBytes, small, "small set of odd bytes")
	set("set:mixed", append([]string{"a", "b"}, numbers[:10]...), small, "small set of strings and integers")
	set("set:long-member", []string{"a", strings.Repeat("m", 100), "c"}, "hashtable", "small set with a member over 64 bytes")
	var big []string
	for i := range f.opt.Big {
		big = append(big, fmt.Sprintf("m%d:%s", i, f.bin(i%13)))
	}
	set("set:big", big, "hashtable", "big set")
	var bigInts []string
	for i := range f.opt.Big {
		bigInts = append(bigInts, strconv.Itoa(i*1000))
	}
	set("set:big-ints", bigInts, "hashtable", "integers over the intset limit")
	set("set:ttl", []string{"1", "2", "3"}, "intset", "intset with a TTL")
	f.expire("set:ttl")
	return nil
}

func (f *filler) zsets() error {
	zset := func(key string, members []string, scores []float64, enc, note string) {
		for start := 0; start < len(members); start += 500 {
			args := []any{"ZADD", key}
			for i := start; i < min(start+500, len(members)); i++ {
				args = append(args, score(scores[i]), members[i])
			}
			f.cmd(args...)
		}
		f.shape(key, "zset", enc, note)
	}
	var ms []string
	var ss []float64
	for i, s := range specialScores {
		ms = append(ms, fmt.Sprintf("s%02d", i))
		ss = append(ss, s)
	}
	// Ties: the same score, ordered by member bytes.
	for _, m := range []string{"tie-b", "tie-a", "tie-\x00", "tie-\xff", "tie-", "Tie"} {
		ms = append(ms, m)
		ss = append(ss, 1)
	}
	zset("zset:special", ms, ss, "listpack", "listpack with special scores and ties")
	long := append(slices.Clone(ms), strings.Repeat("l", 100))
	zset("zset:special-skiplist", long, append(slices.Clone(ss), -0.5), "skiplist", "small skiplist (a member over 64 bytes) with special scores")
	var bm []string
	var bs []float64
	for i := range f.opt.Big {
		bm = append(bm, fmt.Sprintf("m%d%s", i, f.bin(i%7)))
		switch {
		case i%10 == 0:
			bs = append(bs, 7) // many ties
		case i < len(specialScores):
			bs = append(bs, specialScores[i])
		default:
			bs = append(bs, float64(i)*f.rnd.NormFloat64())
		}
	}
	zset("zset:big", bm, bs, "skiplist", "big skiplist with ties and special scores")
	var tm []string
	var ts []float64
	for range 100 {
		tm = append(tm, f.bin(1+f.rnd.IntN(10)))
		ts = append(ts, 0)
	}
	zset("zset:ties", tm, ts, "listpack", "100 binary members of one score")
	zset("zset:odd", oddBytes, slices.Repeat([]float64{2.5}, len(oddBytes)), "listpack", "odd-byte members")
	zset("zset:ttl", []string{"a", "b"}, []float64{1, 2}, "listpack", "zset with a TTL")
	f.expire("zset:ttl")
	return nil
}

func (f *filler) hashes() error {
	hash := func(key string, kv []string, enc, note string) {
		for start := 0; start < len(kv); start += 1000 {
			args := []any{"HSET", key}
			for _, s := range kv[start:min(start+1000, len(kv))] {
				args = append(args, s)
			}
			f.cmd(args...)
		}
		f.shape(key, "hash", enc, note)
	}
	var kv []string
	for i, b := range oddBytes {
		kv = append(kv, b, oddBytes[len(oddBytes)-1-i]+"v")
	}
	hash("hash:small", kv, "listpack", "listpack of odd bytes")
	kv = kv[:0]
	for i, n := range numbers {
		kv = append(kv, n, numbers[len(numbers)-1-i])
	}
	hash("hash:ints", kv, "listpack", "listpack of integer-like fields and values")
	hash("hash:empty-field", []string{"", ""}, "listpack", "empty field and value")
	hash("hash:long-value", []string{"a", "1", "b", strings.Repeat("x", 100), "c", f.bin(80)}, "hashtable", "small hash table (a value over 64 bytes)")
	kv = kv[:0]
	for i := range f.opt.Big {
		kv = append(kv, fmt.Sprintf("f%d\x00%s", i, f.bin(i%5)), f.bin(i%30))
	}
	hash("hash:big", kv, "hashtable", "big hash table")
	kv = kv[:0]
	for i := range 40 {
		kv = append(kv, fmt.Sprintf("f%d", i), f.txt(2000))
	}
	hash("hash:big-bytes", kv, "hashtable", "40 fields of 2 kB (over 64 KiB)")
	hash("\xff\xfe\x00hash", []string{"\x00", "\xff", "\xc3\x28", ""}, "listpack", "binary key, fields and values")
	hash("hash:ttl", []string{"a", "b"}, "listpack", "hash with a TTL")
	f.expire("hash:ttl")
	return nil
}

// fieldTTLs gives an expiry to every step-th field of kv (pairs).
func (f *filler) fieldTTLs(key string, kv []string, step int) {
	if step <= 0 {
		return
	}
	for i := 0; i < len(kv)/2; i += step {
		f.cmd("HPEXPIRE", key, f.ttlMS(), "FIELDS", 1, kv[2*i])
	}
}

func (f *filler) fieldTTLHashes() error {
	if !f.caps.FieldTTLs {
		return nil
	}
	small := "listpackex"
	if f.caps.Kind == "valkey" {
		small = "hashtable" // Valkey keeps hashes with field TTLs in hash tables
	}
	hash := func(key string, kv []string, step int, enc, note string) {
		for start := 0; start < len(kv); start += 1000 {
			args := []any{"HSET", key}
			for _, s := range kv[start:min(start+1000, len(kv))] {
				args = append(args, s)
			}
			f.cmd(args...)
		}
		f.fieldTTLs(key, kv, step)
		f.shape(key, "hash", enc, note).FieldTTLs = step > 0
	}
	var kv []string
	for i := range 8 {
		kv = append(kv, fmt.Sprintf("f%d", i), numbers[i])
	}
	hash("hash:fttl-small", kv, 2, small, "small hash, half its fields with a TTL")
	kv = nil
	for i := range 2 * f.opt.Big {
		kv = append(kv, fmt.Sprintf("f%d:%s", i, f.txt(i%9)), f.bin(i%20))
	}
	hash("hash:fttl-big", kv, 3, "hashtable", "big hash table (over 1024 fields, the reader's default chunk), a third of its fields with a TTL")
	hash("hash:fttl-table", []string{"a", strings.Repeat("v", 100), "b", "2", "c", "3"}, 2, "hashtable", "small hash table with field TTLs")
	hash("\x00hash:fttl\xff", []string{"\xff", "\x00", "f", "v"}, 1, small, "binary key, every field with a TTL, and a key TTL")
	f.expire("\x00hash:fttl\xff")
	// Field TTLs set and removed again: nothing to keep, restorable anywhere.
	hash("hash:fttl-persisted", []string{"a", "1", "b", "2"}, 0, small, "fields whose TTLs were removed (HPERSIST)")
	f.cmd("HPEXPIRE", "hash:fttl-persisted", 100000, "FIELDS", 2, "a", "b")
	f.cmd("HPERSIST", "hash:fttl-persisted", "FIELDS", 2, "a", "b")
	return nil
}

// stream writes entries with the given IDs; fields per entry from fn.
func (f *filler) streamEntries(key string, ids []string, fn func(i int) []string) {
	for i, id := range ids {
		args := []any{"XADD", key, id}
		for _, s := range fn(i) {
			args = append(args, s)
		}
		f.cmd(args...)
	}
}

func streamIDs(base int64, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d-%d", base+int64(i/3), i%3)
	}
	return ids
}

func (f *filler) streams() error {
	// Several listpack nodes (100 entries each), varying field sets, XDEL.
	ids := streamIDs(1700000000000, 250)
	f.streamEntries("stream:basic", ids, func(i int) []string {
		switch {
		case i%50 == 7:
			return []string{"other", f.txt(5), "x", "y"}
		case i%40 == 3:
			return []string{"dup", "1", "dup", "2"} // a field twice
		case i%25 == 0:
			return []string{f.bin(6), f.bin(10)}
		}
		return []string{"name", f.txt(8), "n", strconv.Itoa(i)}
	})
	for i := 5; i < len(ids); i += 10 {
		f.cmd("XDEL", "stream:basic", ids[i])
	}
	f.cmd("XDEL", "stream:basic", ids[len(ids)-1]) // the last ID is now past the last entry
	f.shape("stream:basic", "stream", "stream", "250 entries in 3 nodes, deletions, a deleted last entry")

	ids = streamIDs(1700000100000, 300)
	f.streamEntries("stream:trimmed", ids, func(i int) []string { return []string{"i", strconv.Itoa(i)} })
	f.cmd("XTRIM", "stream:trimmed", "MAXLEN", "=", 120)
	f.cmd("XTRIM", "stream:trimmed", "MINID", ids[200])
	f.cmd("XGROUP", "CREATE", "stream:trimmed", "g", "0")
	f.shape("stream:trimmed", "stream", "stream", "trimmed with XTRIM MAXLEN and MINID")

	f.cmd("XGROUP", "CREATE", "stream:groups-only", "g1", "$", "MKSTREAM")
	f.cmd("XGROUP", "CREATE", "stream:groups-only", "g2", "0")
	f.cmd("XGROUP", "CREATECONSUMER", "stream:groups-only", "g1", "alice")
	f.cmd("XGROUP", "CREATECONSUMER", "stream:groups-only", "g1", "\xffbob\x00")
	f.shape("stream:groups-only", "stream", "stream", "empty stream with groups and consumers")

	ids = streamIDs(1700000200000, 5)
	f.streamEntries("stream:emptied", ids, func(i int) []string { return []string{"f", "v"} })
	for _, id := range ids {
		f.cmd("XDEL", "stream:emptied", id)
	}
	f.cmd("XGROUP", "CREATE", "stream:emptied", "g", "$")
	f.shape("stream:emptied", "stream", "stream", "every entry deleted: empty, with a last ID and a group")

	if err := f.pelStream("stream:pel", 1700000300000, 120); err != nil {
		return err
	}
	f.shape("stream:pel", "stream", "stream", "groups with pending entries, delivery counts over 1, idle and binary consumers")

	ids = streamIDs(1700000400000, 700)
	f.streamEntries("stream:big", ids, func(i int) []string { return []string{"payload", f.bin(20), "i", strconv.Itoa(i)} })
	f.cmd("XGROUP", "CREATE", "stream:big", "g", "0")
	if err := f.read("stream:big", "g", "a", 300); err != nil {
		return err
	}
	if err := f.read("stream:big", "g", "b", 200); err != nil {
		return err
	}
	f.shape("stream:big", "stream", "stream", "700 entries, 500 pending")

	f.streamEntries("stream:ttl", streamIDs(1700000500000, 3), func(i int) []string { return []string{"a", "b"} })
	f.expire("stream:ttl")
	f.shape("stream:ttl", "stream", "stream", "stream with a TTL")
	return nil
}

// read delivers n entries of key to consumer of group (XREADGROUP).
func (f *filler) read(key, group, consumer string, n int) error {
	_, err := f.do("XREADGROUP", "GROUP", group, consumer, "COUNT", n, "STREAMS", key, ">")
	return err
}

// pelStream writes a stream of n entries whose groups have pending
// entries: delivered, acknowledged in part, claimed again (delivery counts
// 2, 3 and 7, one with a delivery time in the past), a rewound group, a
// group created mid-stream, a binary group name and consumer.
func (f *filler) pelStream(key string, base int64, n int) error {
	ids := streamIDs(base, n)
	f.streamEntries(key, ids, func(i int) []string { return []string{"job", strconv.Itoa(i)} })
	f.cmd("XGROUP", "CREATE", key, "workers", "0")
	f.cmd("XGROUP", "CREATE", key, "rewound", "0")
	f.cmd("XGROUP", "CREATE", key, "tail", "$")
	f.cmd("XGROUP", "CREATE", key, "mid", ids[n/2])
	f.cmd("XGROUP", "CREATE", key, "\xff\x00grp", "0")
	steps := []struct {
		group, consumer string
		n               int
	}{{"workers", "c1", n / 4}, {"workers", "c2", n / 4}, {"rewound", "c1", n / 6}, {"mid", "m", 10}, {"\xff\x00grp", "\x00cons\xff", 5}}
	for _, s := range steps {
		if err := f.read(key, s.group, s.consumer, s.n); err != nil {
			return err
		}
	}
	// c1 acknowledges every other of its entries.
	for i := 0; i < n/4; i += 2 {
		f.cmd("XACK", key, "workers", ids[i])
	}
	// c2's first 10 entries are claimed twice by c3 (delivery count 3).
	c2 := ids[n/4 : n/2]
	for range 2 {
		args := []any{"XCLAIM", key, "workers", "c3", 0}
		for _, id := range c2[:10] {
			args = append(args, id)
		}
		f.cmd(append(args, "JUSTID")...)
	}
	// The next 5: delivered an hour ago, 7 times.
	ago := time.Now().Add(-time.Hour).UnixMilli()
	for _, id := range c2[10:15] {
		f.cmd("XCLAIM", key, "workers", "c4", 0, id, "TIME", ago, "RETRYCOUNT", 7, "JUSTID")
	}
	f.cmd("XGROUP", "CREATECONSUMER", key, "workers", "idle")
	// The rewound group goes back to the start: its pending entries are past
	// its last-delivered ID.
	f.cmd("XGROUP", "SETID", key, "rewound", "0")
	return f.flush()
}

func (f *filler) vector(dim int) []any {
	args := []any{"VALUES", dim}
	for range dim {
		args = append(args, strconv.FormatFloat(f.rnd.Float64()*2-1, 'g', 8, 32))
	}
	return args
}

func (f *filler) vadd(key string, pre []any, dim int, elem string, post ...any) {
	args := append([]any{"VADD", key}, pre...)
	args = append(args, f.vector(dim)...)
	args = append(args, elem)
	f.cmd(append(args, post...)...)
}

func (f *filler) vectorSets() error {
	if !f.caps.VectorSets {
		return nil
	}
	for i := range 20 {
		var post []any
		if i%2 == 0 {
			attr, _ := json.Marshal(map[string]any{"i": i, "name": f.txt(5)})
			post = []any{"SETATTR", string(attr)}
		}
		elem := fmt.Sprintf("e%d", i)
		if i == 3 {
			elem = "\xffe\x00binary"
		}
		f.vadd("vset:q8", nil, 4, elem, post...)
	}
	f.expire("vset:q8")
	f.shape("vset:q8", "vectorset", "", "Q8 vector set with attributes, a binary element and a key TTL").Raw = true
	for i := range 1200 {
		f.vadd("vset:noquant", nil, 16, fmt.Sprintf("n%d", i), "NOQUANT")
	}
	f.shape("vset:noquant", "vectorset", "", "1200 unquantized vectors (over 64 KiB)").Raw = true
	for i := range 30 {
		f.vadd("vset:bin-reduced", []any{"REDUCE", 4}, 8, fmt.Sprintf("b%d", i), "BIN", "M", 8)
	}
	f.shape("vset:bin-reduced", "vectorset", "", "binary-quantized, projected from 8 to 4 dimensions, M 8").Raw = true
	return nil
}

// light writes one key of each type, reusing names of the first database
// with other types and values.
func (f *filler) light() error {
	small := "quicklist"
	if f.caps.ListpackLists {
		small = "listpack"
	}
	f.cmd("HSET", "str:int", "a", "1") // a string in the first database
	f.shape("str:int", "hash", "listpack", "a key name of the first database, another type")
	f.cmd("RPUSH", "hash:small", "x", "\x00", "y")
	f.shape("hash:small", "list", small, "a key name of the first database, another type")
	f.cmd("SET", "", fmt.Sprint("db ", f.db))
	f.shape("", "string", "embstr", "empty key name")
	f.cmd("SADD", "set", "1", "2", "-300")
	f.shape("set", "set", "intset", "intset")
	f.cmd("ZADD", "zset", "-inf", "a", "-0", "b", "+inf", "c", "5e-324", "d")
	f.shape("zset", "zset", "listpack", "special scores")
	f.cmd("SET", "\xff\xfettl", f.bin(50), "PX", f.ttlMS())
	f.shape("\xff\xfettl", "string", "", "binary key and value with a TTL")
	if err := f.flush(); err != nil {
		return err
	}
	if err := f.pelStream("stream", 1700000600000, 24); err != nil {
		return err
	}
	f.shape("stream", "stream", "stream", "groups with pending entries")
	if f.caps.FieldTTLs {
		enc := "listpackex"
		if f.caps.Kind == "valkey" {
			enc = "hashtable"
		}
		kv := []string{"a", "1", "b", "2", "c", "3"}
		f.cmd("HSET", "hash:fttl", kv[0], kv[1], kv[2], kv[3], kv[4], kv[5])
		f.fieldTTLs("hash:fttl", kv, 2)
		f.shape("hash:fttl", "hash", enc, "field TTLs").FieldTTLs = true
	}
	if f.caps.VectorSets {
		for i := range 5 {
			f.vadd("vset", nil, 3, fmt.Sprintf("v%d", i))
		}
		f.shape("vset", "vectorset", "", "small vector set").Raw = true
	}
	return nil
}

// tiny writes a few strings.
func (f *filler) tiny() error {
	f.cmd("SET", "last-db", strconv.Itoa(f.db))
	f.shape("last-db", "string", "int", "a key in the last database")
	f.cmd("SET", "\x00", "nul")
	f.shape("\x00", "string", "embstr", "NUL key")
	return nil
}
