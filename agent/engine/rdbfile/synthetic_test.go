package rdbfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// moduleID builds a module type id from its 9-character name and encoding
// version.
func moduleID(name string, encver uint64) uint64 {
	var id uint64
	for i := range 9 {
		id = id<<6 | uint64(strings.IndexByte(moduleCharset, name[i]))
	}
	return id<<10 | encver
}

func binDouble(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }

// oldFile is an RDB 9 file with the encodings of Redis 2.x to 6.x and the
// opcodes only some setups write.
func oldFile() ([]byte, map[string]func(t *testing.T, kv *keyVal)) {
	checks := map[string]func(t *testing.T, kv *keyVal){}
	w := newBuilder("REDIS0009").aux("redis-ver", "5.0.14").aux("redis-bits", "")
	w.b = appendIntStr(append(appendStr(append(w.b, opAux), []byte("ctime")), nil...), 1700000000)
	// module aux data
	w.byte(opModuleAux).length(moduleID("ReJSON-RL", 3)).length(modOpUInt).length(2)
	w.length(modOpUInt).length(5).length(modOpString).str("abc").length(modOpEOF)
	w.selectDB(0).byte(opResizeDB).length(20).length(1)
	// expiry in seconds, LRU idle, LFU freq
	w.byte(opExpireTime).raw(binary.LittleEndian.AppendUint32(nil, 1900000000))
	w.key(tString, "exp-seconds", appendStr(nil, []byte("v")))
	checks["exp-seconds"] = func(t *testing.T, kv *keyVal) {
		if !kv.Start.HasExpire || kv.Start.ExpireAtMs != 1900000000000 || string(kv.Str) != "v" {
			t.Errorf("%+v %q", kv.Start, kv.Str)
		}
	}
	w.byte(opIdle).length(12345).key(tString, "idle", appendIntStr(nil, -300))
	checks["idle"] = func(t *testing.T, kv *keyVal) {
		if !kv.Start.HasIdle || kv.Start.Idle != 12345 || kv.Start.HasFreq || string(kv.Str) != "-300" {
			t.Errorf("%+v %q", kv.Start, kv.Str)
		}
	}
	w.byte(opExpireTimeMs).raw(binary.LittleEndian.AppendUint64(nil, 1900000000123)).byte(opFreq).byte(200)
	w.key(tString, "freq", appendIntStr(nil, 70000))
	checks["freq"] = func(t *testing.T, kv *keyVal) {
		if !kv.Start.HasFreq || kv.Start.Freq != 200 || kv.Start.ExpireAtMs != 1900000000123 || string(kv.Str) != "70000" {
			t.Errorf("%+v %q", kv.Start, kv.Str)
		}
	}
	// strings: LZF (literal runs), big plain
	long := strings.Repeat("0123456789abcdef", 1000)
	w.key(tString, "lzf", appendLZFStr(nil, []byte(long)))
	checks["lzf"] = func(t *testing.T, kv *keyVal) {
		if string(kv.Str) != long {
			t.Errorf("lzf string of %d bytes", len(kv.Str))
		}
	}
	big := bytes.Repeat([]byte("big-"), 75000)
	w.key(tString, "big", appendStr(nil, big))
	checks["big"] = func(t *testing.T, kv *keyVal) {
		if !bytes.Equal(kv.Str, big) {
			t.Errorf("big string of %d bytes in %d chunks", len(kv.Str), kv.Chunks)
		}
	}
	// zipmap
	w.key(tHashZipmap, "zipmap", appendStr(nil, makeZipmap("a", "1", "bb", "hello", "long", strings.Repeat("z", 300))))
	checks["zipmap"] = func(t *testing.T, kv *keyVal) {
		want := map[string]string{"a": "1", "bb": "hello", "long": strings.Repeat("z", 300)}
		if !maps.Equal(kv.Hash, want) || kv.HExp != nil {
			t.Errorf("%v", kv.Hash)
		}
	}
	// ziplist list with every entry encoding
	zlItems := []item{iItem(0), iItem(12), iItem(13), iItem(-100), iItem(1000), iItem(100000), iItem(-1 << 30),
		iItem(1 << 40), sItem("s"), sItem(strings.Repeat("m", 70)), sItem(strings.Repeat("L", 16400))}
	zlWant := []string{"0", "12", "13", "-100", "1000", "100000", "-1073741824", "1099511627776", "s",
		strings.Repeat("m", 70), strings.Repeat("L", 16400)}
	w.key(tListZiplist, "ziplist", appendStr(nil, makeZiplist(zlItems)))
	checks["ziplist"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, zlWant) {
			t.Errorf("%.80q", kv.List)
		}
	}
	// intsets of every width
	w.key(tSetIntset, "intset16", appendStr(nil, makeIntset(2, -5, 7, 300)))
	w.key(tSetIntset, "intset32", appendStr(nil, makeIntset(4, -70000, 1)))
	w.key(tSetIntset, "intset64", appendStr(nil, makeIntset(8, math.MinInt64, math.MaxInt64)))
	checks["intset16"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, []string{"-5", "7", "300"}) {
			t.Errorf("%q", kv.List)
		}
	}
	checks["intset64"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, []string{"-9223372036854775808", "9223372036854775807"}) {
			t.Errorf("%q", kv.List)
		}
	}
	// ziplist sorted set and hash
	w.key(tZSetZiplist, "zset-ziplist", appendStr(nil, makeZiplist(items("a", "1", "b", "2.5", "c", "inf", "d", "-3"))))
	checks["zset-ziplist"] = func(t *testing.T, kv *keyVal) {
		want := map[string]float64{"a": 1, "b": 2.5, "c": math.Inf(1), "d": -3}
		if !maps.Equal(kv.ZSet, want) {
			t.Errorf("%v", kv.ZSet)
		}
	}
	w.key(tHashZiplist, "hash-ziplist", appendStr(nil, makeZiplist(items("f1", "v1", "f2", "22"))))
	checks["hash-ziplist"] = func(t *testing.T, kv *keyVal) {
		if !maps.Equal(kv.Hash, map[string]string{"f1": "v1", "f2": "22"}) {
			t.Errorf("%v", kv.Hash)
		}
	}
	// quicklist (1): ziplist nodes, the second LZF-compressed
	qv := appendLen(nil, 2)
	qv = appendStr(qv, makeZiplist(items("a", "b")))
	qv = appendLZFStr(qv, makeZiplist(items("c", "4", strings.Repeat("d", 100))))
	w.key(tListQuicklist, "quicklist", qv)
	checks["quicklist"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, []string{"a", "b", "c", "4", strings.Repeat("d", 100)}) {
			t.Errorf("%q", kv.List)
		}
	}
	// plain list, set, hash; zset with text scores; zset2
	pl := appendLen(nil, 3)
	pl = appendStr(pl, []byte("x"))
	pl = appendIntStr(pl, 42)
	pl = appendLZFStr(pl, []byte(strings.Repeat("y", 50)))
	w.key(tList, "list", pl)
	checks["list"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, []string{"x", "42", strings.Repeat("y", 50)}) {
			t.Errorf("%q", kv.List)
		}
	}
	w.key(tSet, "set", appendStr(appendStr(appendLen(nil, 2), []byte("m1")), []byte("m2")))
	w.key(tHash, "hash", appendStr(appendStr(appendLen(nil, 1), []byte("f")), []byte("v")))
	zt := appendLen(nil, 4)
	zt = append(appendStr(zt, []byte("a")), 3, '1', '.', '5')
	zt = append(appendStr(zt, []byte("b")), 254)
	zt = append(appendStr(zt, []byte("c")), 255)
	zt = append(appendStr(zt, []byte("d")), 5, '-', '1', 'e', '1', '0')
	w.key(tZSet, "zset-text", zt)
	checks["zset-text"] = func(t *testing.T, kv *keyVal) {
		want := map[string]float64{"a": 1.5, "b": math.Inf(1), "c": math.Inf(-1), "d": -1e10}
		if !maps.Equal(kv.ZSet, want) {
			t.Errorf("%v", kv.ZSet)
		}
	}
	z2 := appendLen(nil, 2)
	z2 = append(appendStr(z2, []byte("p")), binDouble(math.Pi)...)
	z2 = append(appendStr(z2, []byte("n")), binDouble(math.Inf(-1))...)
	w.key(tZSet2, "zset2", z2)
	checks["zset2"] = func(t *testing.T, kv *keyVal) {
		if !maps.Equal(kv.ZSet, map[string]float64{"p": math.Pi, "n": math.Inf(-1)}) {
			t.Errorf("%v", kv.ZSet)
		}
	}
	// a set listpack with every listpack entry encoding
	lpItems := []item{iItem(5), iItem(-5), iItem(4000), iItem(-30000), iItem(8000000), iItem(-2000000000),
		iItem(1 << 50), sItem("short"), sItem(strings.Repeat("t", 100)), sItem(strings.Repeat("u", 5000))}
	lpWant := []string{"5", "-5", "4000", "-30000", "8000000", "-2000000000", "1125899906842624", "short",
		strings.Repeat("t", 100), strings.Repeat("u", 5000)}
	w.key(tSetListpack, "set-listpack", appendStr(nil, makeListpack(lpItems)))
	checks["set-listpack"] = func(t *testing.T, kv *keyVal) {
		if !slices.Equal(kv.List, lpWant) {
			t.Errorf("%.80q", kv.List)
		}
	}
	// a module value with every opcode
	mv := appendLen(nil, moduleID("testmodul", 1))
	mv = appendLen(appendLen(mv, modOpSInt), 7)
	mv = appendLen(appendLen(mv, modOpUInt), 1<<40)
	mv = append(appendLen(mv, modOpFloat), 1, 2, 3, 4)
	mv = append(appendLen(mv, modOpDouble), binDouble(2.5)...)
	mv = appendStr(appendLen(mv, modOpString), []byte("plain"))
	mv = appendLZFStr(appendLen(mv, modOpString), []byte(strings.Repeat("w", 80)))
	mv = appendLen(mv, modOpEOF)
	w.key(tModule2, "module", mv)
	checks["module"] = func(t *testing.T, kv *keyVal) {
		if kv.Start.Module != "testmodul" || kv.Start.ModuleID != moduleID("testmodul", 1) || !kv.IsRaw ||
			!bytes.Equal(kv.Raw, append([]byte{tModule2}, mv...)) {
			t.Errorf("%+v raw %x", kv.Start, kv.Raw)
		}
	}
	// a stream of type 15: two nodes, same-fields, other-fields and
	// deleted entries; a group with a PEL and a consumer
	sv := appendLen(nil, 2)
	sv = appendStr(sv, streamKey(1000, 0))
	sv = appendStr(sv, makeStreamListpack([]string{"a", "b"}, []synthEntry{
		{0, 1, []string{"a", "1", "b", "2"}, false},
		{1, 0, []string{"a", "x", "b", "y"}, true},
		{2, 5, []string{"c", "3"}, false},
	}))
	sv = appendStr(sv, streamKey(2000, 7))
	sv = appendStr(sv, makeStreamListpack([]string{"9"}, []synthEntry{{0, 0, []string{"9", "10"}, false}}))
	sv = appendLen(appendLen(appendLen(sv, 3), 2000), 7)
	sv = appendLen(sv, 1) // groups
	sv = appendStr(sv, []byte("grp"))
	sv = appendLen(appendLen(sv, 1002), 5)
	sv = appendLen(sv, 2) // PEL
	sv = appendLen(append(append(sv, streamKey(1000, 1)...), binary.LittleEndian.AppendUint64(nil, 1700000000001)...), 3)
	sv = appendLen(append(append(sv, streamKey(1002, 5)...), binary.LittleEndian.AppendUint64(nil, 1700000000002)...), 1)
	sv = appendLen(sv, 1) // consumers
	sv = append(appendStr(sv, []byte("alice")), binary.LittleEndian.AppendUint64(nil, 1700000000003)...)
	sv = appendLen(sv, 2)
	sv = append(append(sv, streamKey(1000, 1)...), streamKey(1002, 5)...)
	w.key(tStreamListpacks, "stream", sv)
	checks["stream"] = func(t *testing.T, kv *keyVal) {
		s := kv.Stream
		want := []entryVal{{StreamID{1000, 1}, []string{"a", "1", "b", "2"}}, {StreamID{1002, 5}, []string{"c", "3"}},
			{StreamID{2000, 7}, []string{"9", "10"}}}
		if !slices.EqualFunc(s.Entries, want, func(a, b entryVal) bool { return a.ID == b.ID && slices.Equal(a.FV, b.FV) }) {
			t.Errorf("entries %v", s.Entries)
		}
		if s.Meta.Length != 3 || s.Meta.LastID != (StreamID{2000, 7}) || s.Meta.HasV2Meta || s.Meta.Groups != 1 {
			t.Errorf("meta %+v", s.Meta)
		}
		if len(s.Groups) != 1 {
			t.Fatalf("groups %+v", s.Groups)
		}
		g := s.Groups[0]
		if g.Name != "grp" || g.LastID != (StreamID{1002, 5}) || g.EntriesRead != -1 || len(g.Pending) != 2 ||
			g.Pending[0] != (PendingEntry{StreamID{1000, 1}, 1700000000001, 3}) || len(g.Consumers) != 1 {
			t.Errorf("group %+v", g)
		}
		if c := g.Consumers[0]; c.Name != "alice" || c.Seen != 1700000000003 || c.Active != -1 || len(c.IDs) != 2 {
			t.Errorf("consumer %+v", c)
		}
	}
	// another database
	w.selectDB(7).key(tString, "db7", appendStr(nil, []byte("seven")))
	return w.eof(true), checks
}

func TestOldEncodings(t *testing.T) {
	data, checks := oldFile()
	for i, o := range optionSets {
		m, err := collect(bytes.NewReader(data), collectOpts{Options: o})
		if err != nil {
			t.Fatalf("options %d: %v", i, err)
		}
		if m.Header != (Header{DialectRedis, 9}) || m.Aux["ctime"] != "1700000000" || m.Aux["redis-bits"] != "" {
			t.Errorf("header %+v aux %v", m.Header, m.Aux)
		}
		if len(m.ModAux) != 1 || m.ModAux[0].Module != "ReJSON-RL" || m.ModAux[0].When != 2 ||
			m.ModAux[0].ModuleID&1023 != 3 || m.ModAux[0].Raw[0] != 0x81 {
			t.Errorf("module aux %+v", m.ModAux)
		}
		if m.Resize[0] != (ResizeDB{20, 1}) || m.Keys[keyID{7, "db7"}] == nil {
			t.Errorf("resize %v, keys %v", m.Resize, m.Order)
		}
		for name, check := range checks {
			kv := m.Keys[keyID{0, name}]
			if kv == nil {
				t.Errorf("no key %s", name)
				continue
			}
			t.Run(name, func(t *testing.T) { check(t, kv) })
		}
		raw, err := collect(bytes.NewReader(data), collectOpts{Options: o, mode: modeRaw, walk: true})
		must(t, err)
		if err := checkRawRoundTrip(m.Header, m, raw, o); err != nil {
			t.Errorf("options %d: %v", i, err)
		}
	}
}

// newerRedisFile holds Redis 7.4's hashes with field TTLs (and their
// pre-GA forms), SLOT_INFO and FUNCTION2.
func newerRedisFile() []byte {
	w := newBuilder("REDIS0012").byte(opFunction2).str("#!lua name=x\n").selectDB(0)
	w.byte(opSlotInfo).length(1234).length(2).length(1)
	// 22 (pre-GA metadata): absolute TTLs
	v := appendLen(nil, 2)
	v = appendStr(appendStr(appendLen(v, 1800000000000), []byte("f1")), []byte("v1"))
	v = appendStr(appendStr(appendLen(v, 0), []byte("f2")), []byte("v2"))
	w.key(tRedisHashMetadataPreGA, "h22", v)
	// 23 (pre-GA listpack ex)
	w.key(tRedisHashListpackExPreGA, "h23", appendStr(nil, makeListpack([]item{sItem("a"), sItem("1"), iItem(1800000000001),
		sItem("b"), sItem("2"), iItem(0)})))
	// 24: min TTL, relative TTLs
	v = binary.LittleEndian.AppendUint64(nil, 1800000000000)
	v = appendLen(v, 2)
	v = appendStr(appendStr(appendLen(v, 1), []byte("x")), []byte("1"))
	v = appendStr(appendStr(appendLen(v, 500), []byte("y")), []byte("2"))
	w.key(tRedisHashMetadata, "h24", v)
	// 25: min TTL, listpack ex
	v = binary.LittleEndian.AppendUint64(nil, 1800000000000)
	w.key(tRedisHashListpackEx, "h25", appendStr(v, makeListpack([]item{sItem("p"), iItem(9), iItem(1800000000000),
		sItem("q"), sItem("z"), iItem(0)})))
	return w.eof(true)
}

// newerValkeyFile holds Valkey 9's SLOT_IMPORT and hashes with field TTLs.
func newerValkeyFile() []byte {
	w := newBuilder("VALKEY080").byte(opSlotImport).str(strings.Repeat("j", 40)).length(2).
		length(0).length(100).length(200).length(16383).selectDB(0)
	v := appendLen(nil, 3)
	v = append(appendStr(appendStr(v, []byte("a")), []byte("1")), binary.LittleEndian.AppendUint64(nil, 1800000000000)...)
	v = append(appendStr(appendStr(v, []byte("b")), []byte("2")), binary.LittleEndian.AppendUint64(nil, math.MaxUint64)...)
	v = append(appendStr(appendStr(v, []byte("c")), []byte("3")), make([]byte, 8)...) // 0: expired, not "none"
	w.key(tValkeyHash2, "h", v)
	return w.eof(true)
}

func TestNewerEncodings(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		data := newerRedisFile()
		m, err := collect(bytes.NewReader(data), collectOpts{Options: Options{MaxChunkElems: 1}})
		must(t, err)
		want := map[string]map[string]int64{
			"h22": {"f1": 1800000000000, "f2": NoExpire},
			"h23": {"a": 1800000000001, "b": NoExpire},
			"h24": {"x": 1800000000000, "y": 1800000000499},
			"h25": {"p": 1800000000000, "q": NoExpire},
		}
		for k, exp := range want {
			kv := m.Keys[keyID{0, k}]
			if kv == nil || !maps.Equal(kv.HExp, exp) || len(kv.Hash) != 2 {
				t.Errorf("%s: %+v", k, kv)
			}
		}
		if len(m.Slots) != 1 || m.Slots[0] != (SlotInfo{1234, 2, 1}) || len(m.Funcs) != 1 {
			t.Errorf("slots %v funcs %q", m.Slots, m.Funcs)
		}
		raw, err := collect(bytes.NewReader(data), collectOpts{mode: modeRaw})
		must(t, err)
		must(t, checkRawRoundTrip(m.Header, m, raw, Options{}))
	})
	t.Run("valkey", func(t *testing.T) {
		data := newerValkeyFile()
		m, err := collect(bytes.NewReader(data), collectOpts{})
		must(t, err)
		kv := m.Keys[keyID{0, "h"}]
		if kv == nil || !maps.Equal(kv.HExp, map[string]int64{"a": 1800000000000, "b": NoExpire, "c": 0}) {
			t.Errorf("%+v", kv)
		}
		if len(m.SlotImports) != 1 || len(m.SlotImports[0].JobName) != 40 ||
			!slices.Equal(m.SlotImports[0].Ranges, []SlotRange{{0, 100}, {200, 16383}}) {
			t.Errorf("slot imports %+v", m.SlotImports)
		}
		// the same bytes in the redis dialect are another thing
		redis := append([]byte("REDIS0011"), data[9:]...)
		if _, err := collect(bytes.NewReader(redis), collectOpts{}); !errors.Is(err, ErrUnsupported) ||
			!strings.Contains(err.Error(), "unknown opcode 0xF3 at offset 9") {
			t.Errorf("slot import in the redis dialect: %v", err)
		}
	})
	t.Run("rdb4", func(t *testing.T) { // before RDB 5: no checksum
		data := newBuilder("REDIS0004").selectDB(0).key(tString, "k", appendStr(nil, []byte("v"))).byte(opEOF).b
		m, err := collect(bytes.NewReader(data), collectOpts{})
		if err != nil || m.EOF.Verified || len(m.Keys) != 1 {
			t.Errorf("%+v %v", m, err)
		}
	})
}

// TestErrors: bad files give clear errors of the right kind.
func TestErrors(t *testing.T) {
	body := func(magic string, parts ...[]byte) []byte {
		w := newBuilder(magic).selectDB(0)
		for _, p := range parts {
			w.raw(p)
		}
		return w.eof(true)
	}
	key := func(t byte, name string, v []byte) []byte { return append(appendStr([]byte{t}, []byte(name)), v...) }
	lp := makeListpack(items("a", "b", "c"))
	bigElem := appendStr(appendLen(nil, 1), bytes.Repeat([]byte("e"), 1000))
	cases := []struct {
		name string
		data []byte
		opts Options
		err  error
		msg  string
	}{
		// (the cases whose names end in "*" are bad content that raw mode,
		// which checks only the framing, accepts)
		{"newer redis", []byte("REDIS0013"), Options{}, ErrUnsupported, "rdb: RDB version 13 (redis dialect) is newer than this reader knows (1-12) at offset 0"},
		{"newer valkey", []byte("VALKEY081"), Options{}, ErrUnsupported, "RDB version 81 (valkey dialect) is newer than this reader knows (80-80)"},
		{"valkey 11", []byte("VALKEY011"), Options{}, ErrUnsupported, "RDB version 11 is not a version of the valkey dialect"},
		{"bad digits", []byte("REDIS00x1"), Options{}, ErrCorrupt, "bad RDB version"},
		{"not rdb", []byte("GARBAGE01"), Options{}, ErrCorrupt, "not an RDB file"},
		{"short", []byte("REDIS"), Options{}, ErrTruncated, "unexpected end of input at offset 5"},
		{"opcode F3", []byte("REDIS0011\xf3"), Options{}, ErrUnsupported, "rdb: unknown opcode 0xF3 at offset 9"},
		{"opcode F0", body("REDIS0011", []byte{0xf0}), Options{}, ErrUnsupported, "unknown opcode 0xF0 at offset 11"},
		{"type 26", body("REDIS0012", key(26, "k", nil)), Options{}, ErrUnsupported, "unknown value type 26 (0x1A) for RDB version 12 (redis dialect) at offset 11"},
		{"valkey type 23", body("VALKEY080", key(23, "k", nil)), Options{}, ErrUnsupported, "unknown value type 23"},
		{"type 8", body("REDIS0011", key(8, "k", nil)), Options{}, ErrUnsupported, "unknown value type 8"},
		{"function pre-GA", body("REDIS0010", []byte{opFunctionPreGA}), Options{}, ErrUnsupported, "0xF6"},
		{"module pre-GA", body("REDIS0011", key(tModulePreGA, "m", appendLen(nil, 5))), Options{}, ErrUnsupported, "pre-release format (type 6)"},
		{"module opcode", body("REDIS0011", key(tModule2, "m", appendLen(appendLen(nil, 5), 9))), Options{}, ErrCorrupt, "unknown module value opcode 9"},
		{"length prefix", body("REDIS0011", key(tList, "l", []byte{0x82})), Options{}, ErrCorrupt, "bad length prefix 0x82"},
		{"encoded count", body("REDIS0011", key(tList, "l", []byte{0xc0})), Options{}, ErrCorrupt, "encoded value where a length"},
		{"blob cap*", body("REDIS0011", key(tSetListpack, "s", appendStr(nil, lp))), Options{MaxBlobBytes: 10}, ErrTooLarge, "over the limit of 10"},
		{"element cap*", body("REDIS0011", key(tList, "l", bigElem)), Options{MaxElemBytes: 999}, ErrTooLarge, "element of 1000 bytes over the limit of 999"},
		{"key cap", body("REDIS0011", key(tString, strings.Repeat("k", 100), appendStr(nil, nil))), Options{MaxBlobBytes: 99}, ErrTooLarge, "key name of 100 bytes"},
		{"listpack header*", body("REDIS0011", key(tSetListpack, "s", appendStr(nil, lp[:len(lp)-1]))), Options{}, ErrCorrupt, "listpack: bad listpack header"},
		{"listpack count*", body("REDIS0011", key(tSetListpack, "s", appendStr(nil, append(append([]byte{}, lp[:4]...), append([]byte{9, 0}, lp[6:]...)...)))), Options{}, ErrCorrupt, "count does not match"},
		{"ziplist header*", body("REDIS0011", key(tListZiplist, "z", appendStr(nil, []byte("0123456789ab")))), Options{}, ErrCorrupt, "bad ziplist header"},
		{"intset*", body("REDIS0011", key(tSetIntset, "i", appendStr(nil, makeIntset(3, 1)))), Options{}, ErrCorrupt, "bad intset header"},
		{"int blob*", body("REDIS0011", key(tSetListpack, "s", appendIntStr(nil, 5))), Options{}, ErrCorrupt, "integer-encoded listpack"},
		{"lzf ratio", body("REDIS0011", key(tString, "s", []byte{0xc3, 0x01, 0x80, 0x10, 0, 0, 0, 0})), Options{}, ErrCorrupt, "bad LZF lengths 1 -> 268435456"},
		{"lzf data*", body("REDIS0011", key(tString, "s", []byte{0xc3, 0x02, 0x05, 0x20, 0x00})), Options{}, ErrCorrupt, "bad LZF data in string value"},
		{"lzf blob*", body("REDIS0011", key(tSetListpack, "s", []byte{0xc3, 0x02, 0x05, 0x20, 0x00})), Options{}, ErrCorrupt, "bad LZF data in listpack"},
		{"quicklist container", body("REDIS0011", key(tListQuicklist2, "q", appendLen(appendLen(nil, 1), 3))), Options{}, ErrCorrupt, "container 3"},
		{"stream counts", body("REDIS0011", key(tStreamListpacks3, "x", appendStr(appendStr(appendLen(nil, 1), streamKey(1, 1)),
			makeListpack([]item{iItem(2), iItem(0), iItem(1), sItem("f"), iItem(0), iItem(2), iItem(0), iItem(0), sItem("v"), iItem(4)})))),
			Options{}, ErrCorrupt, "1 live and 0 deleted entries, the header says 2 and 0"},
		{"stream field count", body("REDIS0011", key(tStreamListpacks3, "x", appendStr(appendStr(appendLen(nil, 1), streamKey(1, 1)),
			makeListpack([]item{iItem(1), iItem(0), iItem(1), sItem("f"), iItem(0), iItem(0), iItem(0), iItem(0), iItem(1 << 62), sItem("v"), iItem(4)})))),
			Options{}, ErrCorrupt, "bad field count 4611686018427387904"},
		{"stream key", body("REDIS0011", key(tStreamListpacks3, "x", appendStr(appendLen(nil, 1), []byte("short")))), Options{}, ErrCorrupt, "stream node key of 5 bytes"},
		{"NaN*", body("REDIS0011", key(tZSet2, "z", append(appendStr(appendLen(nil, 1), []byte("m")), binDouble(math.NaN())...))), Options{}, ErrCorrupt, "NaN score"},
		{"text NaN*", body("REDIS0011", key(tZSet, "z", append(appendStr(appendLen(nil, 1), []byte("m")), 253))), Options{}, ErrCorrupt, "NaN score"},
		{"module aux when", body("REDIS0011", []byte{opModuleAux, 5, modOpSInt}), Options{}, ErrCorrupt, "module aux when opcode 1"},
		{"module aux cap", body("REDIS0011", append(appendStr([]byte{opModuleAux, 5, modOpUInt, 1, modOpString}, bytes.Repeat([]byte("a"), 200)), modOpEOF)),
			Options{MaxBlobBytes: 100}, ErrTooLarge, "module aux data larger than 100 bytes"},
		{"slot ranges", []byte("VALKEY080\xf3\x01j\x80\x00\x01\x00\x00"), Options{}, ErrCorrupt, "65536 slot ranges"},
		{"truncated key", []byte("REDIS0011\xfe\x00\x00\x05ab"), Options{}, ErrTruncated, "unexpected end of input at offset 15"},
		{"truncated value", []byte("REDIS0011\xfe\x00\x00\x02ab\x05xy"), Options{}, ErrTruncated, "unexpected end of input at offset 18 (key \"ab\")"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := collect(bytes.NewReader(c.data), collectOpts{Options: c.opts})
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want %v containing %q", err, c.err, c.msg)
			}
			var ie *invariantError
			if errors.As(err, &ie) {
				t.Error(err)
			}
			// the structural walker must agree, on the framing
			_, err2 := collect(bytes.NewReader(c.data), collectOpts{Options: c.opts, mode: modeRaw})
			if (err2 == nil) != strings.HasSuffix(c.name, "*") {
				t.Errorf("raw mode: %v", err2)
			}
		})
	}
}

// TestHostileLengths: lengths claiming far more than the file holds cost
// no memory.
func TestHostileLengths(t *testing.T) {
	huge := func(n uint64) []byte { return appendLen(nil, n) }
	files := map[string][]byte{
		"string 1 TiB":    append(append([]byte("REDIS0011\xfe\x00\x00\x01k"), huge(1<<40)...), "abc"...),
		"element 500 MiB": append(append([]byte("REDIS0011\xfe\x00\x01\x01k\x01"), huge(500<<20)...), "abc"...),
		"key 60 MiB":      append(append([]byte("REDIS0011\xfe\x00\x00"), huge(60<<20)...), "abc"...),
		"blob 60 MiB":     append(append([]byte("REDIS0011\xfe\x00\x14\x01k"), huge(60<<20)...), "abc"...),
		"list 2^62":       append(append([]byte("REDIS0011\xfe\x00\x01\x01k"), huge(1<<62)...), "\x01a\x01b"...),
		"lzf 40 MiB":      append(append(append([]byte("REDIS0011\xfe\x00\x00\x01k\xc3"), huge(1<<20)...), huge(40<<20)...), "\x05ab"...),
		"lzf blob":        append(append(append([]byte("REDIS0011\xfe\x00\x14\x01k\xc3"), huge(1<<20)...), huge(40<<20)...), "abc"...),
		"stream PEL":      append([]byte("REDIS0011\xfe\x00\x15\x01k\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01g\x00\x00\x00"), huge(1<<60)...),
		"module string":   append(append([]byte("REDIS0011\xfe\x00\x07\x01k\x05\x05"), huge(1<<50)...), "abc"...),
	}
	for name, data := range files {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := collect(bytes.NewReader(data), collectOpts{})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: %v", name, err)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20 {
			t.Errorf("%s: %d bytes allocated", name, a)
		}
	}
}
