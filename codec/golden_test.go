package codec

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The golden archives in testdata/ are never regenerated (see
// testdata/README): these tests pin what every later redback must read
// from them.

// goldenV1Keys is the content of testdata/v1.json and v1.json.gz.
func goldenV1Keys() []genKey {
	big := bytes.Repeat([]byte("0123456789abcdef"), 200)
	return []genKey{
		{h: KeyHeader{Key: []byte("user:123456"), Type: TypeHash}, items: [][]byte{[]byte("name"), []byte("John"), []byte("age"), []byte("25")}},
		{h: KeyHeader{Key: []byte("session:9"), Type: TypeString, PTTL: 59412, ExpireAt: 1701786681535}, str: []byte("x")},
		{h: KeyHeader{Key: []byte("\xff\x00bin"), Type: TypeString}, str: []byte("\x00\x01\x02")},
		{h: KeyHeader{Key: []byte("\x00b64:aGk="), Type: TypeString}, str: []byte("looks like base64 form but is text")},
		{h: KeyHeader{Key: []byte("lb"), Type: TypeZSet, PTTL: 1500}, items: [][]byte{[]byte("a"), []byte("1.5"), []byte("b"), []byte("inf"), []byte("c"), []byte("-inf"), []byte("d"), []byte("3.0000000000000004")}},
		{h: KeyHeader{Key: []byte("events"), Type: TypeStream, Stream: &StreamMeta{
			LastID: []byte("1701786681535-3"), EntriesAdded: 12, MaxDeletedID: []byte("1701786681535-1"),
			Groups: []StreamGroup{{Name: []byte("workers"), LastDeliveredID: []byte("1701786681535-2"), EntriesRead: 2}, {Name: []byte("old"), LastDeliveredID: []byte("0-0"), EntriesRead: -1}},
		}}, entries: []StreamEntry{
			{ID: []byte("1701786681535-0"), Fields: [][]byte{[]byte("field"), []byte("value"), []byte("f2"), []byte("v2")}},
			{ID: []byte("1701786681535-2"), Fields: [][]byte{[]byte("f"), []byte("\x00\xff")}},
		}},
		{h: KeyHeader{Key: []byte("h2"), Type: TypeHash, HashAsPairs: true}, items: [][]byte{[]byte("f"), []byte("1"), []byte("g"), []byte("2"), []byte("f"), []byte("3")}},
		{h: KeyHeader{Key: []byte("empty"), Type: TypeString}, str: []byte{}},
		{h: KeyHeader{DB: 3, Key: []byte("queue:users"), Type: TypeList}, items: [][]byte{[]byte("123456"), []byte("789012")}},
		{h: KeyHeader{DB: 3, Key: []byte("tags"), Type: TypeSet, PTTL: 86400000, ExpireAt: 1701873081535}, items: [][]byte{[]byte("a"), []byte("é \"q\" \t"), []byte("\xc3")}},
		{h: KeyHeader{DB: 5, Key: []byte("big"), Type: TypeString}, str: big},
	}
}

var goldenV1Header = Header{
	Timestamp: "20231205_143022",
	CreatedAt: time.Date(2023, 12, 5, 14, 30, 22, 123456000, time.UTC),
	Source:    Source{RedisVersion: "7.0.15", Role: "master", Mode: "standalone", Databases: []int{0, 3, 5}},
}

func writeGoldenV1(tb testing.TB) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf, goldenV1Header)
	writeKeys(tb, w, goldenV1Keys())
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenV1(t *testing.T) {
	plain, err := os.ReadFile("testdata/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v1.json", "v1.json.gz"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		jr, layers, err := NewDecoder(f, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if layers != LayersFromName(name) {
			t.Fatalf("%s: layers %+v", name, layers)
		}
		data, err := io.ReadAll(jr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, plain) {
			t.Fatalf("%s: content differs from v1.json", name)
		}
		for _, o := range []ReaderOptions{{}, {MaxChunkItems: 1, MaxChunkBytes: 100}} {
			h, keys, tr, err := readAll(t, data, o)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := goldenV1Header
			if h.FormatVersion != 1 || h.Timestamp != want.Timestamp || !h.CreatedAt.Equal(want.CreatedAt) ||
				h.CreatedAtRaw != "2023-12-05T14:30:22.123456Z" || fmt.Sprint(h.Source) != fmt.Sprint(want.Source) {
				t.Fatalf("%s: header %+v", name, h)
			}
			compareKeys(t, goldenV1Keys(), keys)
			if tr.KeysCount != 11 || fmt.Sprint(tr.KeysPerDB) != "map[0:8 3:2 5:1]" || tr.CompletedAt.IsZero() || tr.Verified || tr.Checksum != "" {
				t.Fatalf("%s: trailer %+v", name, tr)
			}
			if o.MaxChunkBytes == 100 && keys[len(keys)-1].chunks != 32 {
				t.Fatalf("big string in %d chunks, want 32", keys[len(keys)-1].chunks)
			}
		}
	}
	// The writer still produces the golden bytes (up to completed_at) but
	// for the format_version: version 2 changed nothing of what version 1
	// had, so a change here is a format change.
	want := bytes.Replace(stripCompleted(plain), []byte(`"format_version":1,`), []byte(`"format_version":2,`), 1)
	// keys_per_type came later (within version 2): the v1 file has none.
	const perType = `"keys_per_type":{"string":5,"hash":2,"list":1,"set":1,"zset":1,"stream":1},`
	got := writeGoldenV1(t)
	if !bytes.Contains(got, []byte(perType)) {
		t.Fatalf("writer output has no %s:\n%s", perType, got)
	}
	if got = bytes.Replace(got, []byte(perType), nil, 1); !bytes.Equal(stripCompleted(got), want) {
		t.Fatalf("writer output changed:\n%s", got)
	}
	checkStandardJSON(t, plain)
}

// goldenV2Keys is the content of testdata/v2.json and v2.json.gz: what
// version 2 added (field expiries, raw values, consumers and pending
// entries), beside a little of version 1.
func goldenV2Keys() []genKey {
	payload := make([]byte, 2500) // a made-up DUMP payload: type, body, RDB version, CRC
	x := uint32(12345)
	for i := range payload {
		x = x*1664525 + 1013904223
		payload[i] = byte(x >> 24)
	}
	payload[0] = 7
	payload[len(payload)-10], payload[len(payload)-9] = 12, 0
	var fields [][]byte
	var fexp []int64
	for i := 0; i < 40; i++ {
		fields = append(fields, []byte(fmt.Sprintf("f%02d", i)), []byte(fmt.Sprintf("value %d", i)))
		var e int64
		if i%3 == 1 || (i >= 30 && i < 34) {
			e = 1701786741535 + int64(i)
		}
		fexp = append(fexp, e)
	}
	var consumers []StreamConsumer
	var pending []StreamPending
	for i := 0; i < 10; i++ {
		consumers = append(consumers, StreamConsumer{Name: []byte(fmt.Sprintf("worker-%d", i)), SeenTime: 1701786690000 + int64(i), ActiveTime: 1701786680000 + int64(i)})
	}
	consumers[3].ActiveTime = -1
	consumers[4].Name = []byte("\xffbin")
	for i := 0; i < 12; i++ {
		pending = append(pending, StreamPending{ID: []byte(fmt.Sprintf("1701786681535-%d", i)), Consumer: consumers[i%10].Name, DeliveryTime: 1701786690100 + int64(i), DeliveryCount: int64(1 + i%4)})
	}
	pending[11].Consumer = []byte("gone") // not among the consumers
	return []genKey{
		{h: KeyHeader{Key: []byte("user:7"), Type: TypeHash, FieldTTLs: true}, items: [][]byte{[]byte("name"), []byte("Ann"), []byte("otp"), []byte("381920")}, fexp: []int64{0, 1701786741535}},
		{h: KeyHeader{Key: []byte("fields"), Type: TypeHash, FieldTTLs: true, PTTL: 3600000, ExpireAt: 1701790281535}, items: fields, fexp: fexp},
		{h: KeyHeader{Key: []byte("no field ttl"), Type: TypeHash, FieldTTLs: true}, items: [][]byte{[]byte("a"), []byte("1"), []byte("a"), []byte("2")}, fexp: []int64{0, 0}},
		{h: KeyHeader{Key: []byte("plain"), Type: TypeHash}, items: [][]byte{[]byte("k"), []byte("v")}},
		{h: KeyHeader{Key: []byte("vs:1"), Type: TypeRaw, PTTL: 59412, ExpireAt: 1701786681535, StringBase64: true,
			Raw: &RawInfo{RedisType: "vectorset", Module: "vectorset", RDBVersion: 12}}, str: payload, parts: 1000},
		{h: KeyHeader{Key: []byte("raw:hash"), Type: TypeRaw, Raw: &RawInfo{RedisType: "hash", RDBVersion: 12}}, str: []byte("\x15\x01\x00\x0c\x00\x01\x02\x03\x04\x05\x06\x07\x08")},
		{h: KeyHeader{Key: []byte("events"), Type: TypeStream, Stream: &StreamMeta{
			LastID: []byte("1701786681535-12"), EntriesAdded: 13, MaxDeletedID: []byte("0-0"),
			Groups: []StreamGroup{
				{Name: []byte("workers"), LastDeliveredID: []byte("1701786681535-11"), EntriesRead: 12, Consumers: consumers, Pending: pending},
				{Name: []byte("idle"), LastDeliveredID: []byte("1701786681535-0"), EntriesRead: 1, Consumers: []StreamConsumer{{Name: []byte("solo"), SeenTime: 1701786681600, ActiveTime: 1701786681600}}, Pending: []StreamPending{{ID: []byte("1701786681535-0"), Consumer: []byte("solo"), DeliveryTime: 1701786681600, DeliveryCount: 1}}},
				{Name: []byte("new"), LastDeliveredID: []byte("0-0"), EntriesRead: -1, Consumers: []StreamConsumer{}, Pending: []StreamPending{}},
				{Name: []byte("unknown"), LastDeliveredID: []byte("0-0"), EntriesRead: -1},
			},
		}}, entries: []StreamEntry{
			{ID: []byte("1701786681535-0"), Fields: [][]byte{[]byte("f"), []byte("v")}},
			{ID: []byte("1701786681535-12"), Fields: [][]byte{[]byte("f"), []byte("\x00\xff")}},
		}},
		{h: KeyHeader{DB: 2, Key: []byte("s"), Type: TypeString}, str: []byte("x")},
		{h: KeyHeader{DB: 2, Key: []byte("vs:2"), Type: TypeRaw, Raw: &RawInfo{RedisType: "ReJSON-RL", Module: "ReJSON-RL", RDBVersion: 11}}, str: []byte("\x07\x81\x00\x02\x0b\x00json")},
	}
}

var goldenV2Header = Header{
	Timestamp: "20250611_090000",
	CreatedAt: time.Date(2025, 6, 11, 9, 0, 0, 654321000, time.UTC),
	Source: Source{RedisVersion: "8.0.2", Role: "master", Mode: "standalone", Databases: []int{0, 2},
		Server: "redis", ServerVersion: "8.0.2", RDBVersion: 12},
}

func writeGoldenV2(tb testing.TB) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf, goldenV2Header)
	writeKeys(tb, w, goldenV2Keys())
	if _, err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestGoldenV2(t *testing.T) {
	plain, err := os.ReadFile("testdata/v2.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"v2.json", "v2.json.gz"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		jr, layers, err := NewDecoder(f, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if layers != LayersFromName(name) {
			t.Fatalf("%s: layers %+v", name, layers)
		}
		data, err := io.ReadAll(jr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, plain) {
			t.Fatalf("%s: content differs from v2.json", name)
		}
		for _, o := range []ReaderOptions{{}, {MaxChunkItems: 1, MaxChunkBytes: 100}, {MaxChunkItems: 7}} {
			h, keys, tr, err := readAll(t, data, o)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := goldenV2Header
			if h.FormatVersion != 2 || h.Timestamp != want.Timestamp || !h.CreatedAt.Equal(want.CreatedAt) ||
				h.CreatedAtRaw != "2025-06-11T09:00:00.654321Z" || fmt.Sprint(h.Source) != fmt.Sprint(want.Source) {
				t.Fatalf("%s: header %+v", name, h)
			}
			compareKeys(t, goldenV2Keys(), keys)
			if tr.KeysCount != 9 || fmt.Sprint(tr.KeysPerDB) != "map[0:7 2:2]" || tr.CompletedAt.IsZero() || tr.KeysPerType != nil ||
				!tr.Verified || tr.Checksum != "87066c7e3aafcd51693c83352706ae01c80239d25e685eb276e2282cbf1fe86d" {
				t.Fatalf("%s: trailer %+v", name, tr)
			}
			if o.MaxChunkBytes == 100 && keys[4].chunks != 26 { // base64: parts of 99 bytes
				t.Fatalf("raw payload in %d chunks, want 26", keys[4].chunks)
			}
			if o.MaxChunkItems == 7 && keys[1].chunks != 6 {
				t.Fatalf("hash of 40 fields in %d chunks, want 6", keys[1].chunks)
			}
		}
	}
	// The writer still produces the golden bytes (up to completed_at; the
	// digest that ends the document covers completed_at, so it differs
	// too), plus keys_per_type, added later within version 2 (optional:
	// the golden file, written before, has none).
	got := writeGoldenV2(t)
	const perType = `"keys_per_type":{"string":1,"hash":4,"stream":1,"raw":3},`
	if !bytes.Contains(got, []byte(perType)) {
		t.Fatalf("writer output has no %s:\n%s", perType, got)
	}
	if got = bytes.Replace(got, []byte(perType), nil, 1); !bytes.Equal(stripCompleted(got), stripCompleted(plain)) {
		t.Fatalf("writer output changed:\n%s", got)
	}
	checkStandardJSON(t, plain)
}

// TestMakeGolden writes the golden v2 archives when REDBACK_MAKE_GOLDEN is
// "v2". It was run once, and once more before version 2 was released, when
// the checksum member was added to it (testdata/README); never run it again
// for version 2 (the v1 files were written by an earlier version of this
// test, also once).
func TestMakeGolden(t *testing.T) {
	if os.Getenv("REDBACK_MAKE_GOLDEN") != "v2" {
		return
	}
	data := writeGoldenV2(t)
	if err := os.WriteFile("testdata/v2.json", data, 0o644); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	enc, _ := NewEncoder(&z, EncodeOptions{Gzip: true})
	enc.Write(data)
	enc.Close()
	if err := os.WriteFile("testdata/v2.json.gz", z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSeed(t *testing.T, name string) (Header, []readKey) {
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jr, _, err := NewDecoder(f, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(jr)
	if err != nil {
		t.Fatal(err)
	}
	h, keys, tr, err := readAll(t, data, ReaderOptions{MaxChunkItems: 2, MaxChunkBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	if h.FormatVersion != 0 || tr.KeysCount != int64(len(keys)) || tr.KeysPerDB[0] != int64(len(keys)) {
		t.Fatalf("%s: header %+v trailer %+v", name, h, tr)
	}
	return h, keys
}

// describeKeys renders keys for comparison with an expected text.
func describeKeys(keys []readKey) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d %q %v ttl=%v/%d:", k.db, k.key, k.typ, k.hasTTL, k.pttl)
		if k.typ == TypeString {
			fmt.Fprintf(&b, " %q", k.str)
		}
		for _, it := range k.items {
			fmt.Fprintf(&b, " %q", it)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestGoldenSeedASCII(t *testing.T) {
	h, keys := readSeed(t, "seed_ascii.json")
	if h.Timestamp != "20231205_143022" || h.CreatedAtRaw != "2023-12-05T14:30:22.123456" ||
		h.CreatedAt.Year() != 2023 || h.CreatedAt.Nanosecond() != 123456000 {
		t.Fatalf("header %+v", h)
	}
	want := `0 "user:123456" hash ttl=false/0: "name" "John" "age" "25" "city" "Zürich"
0 "queue:users" list ttl=false/0: "123456" "789012" "123456"
0 "session:9" string ttl=true/3600000: "token-abc"
0 "banned" set ttl=false/0: "42" "7"
0 "leaderboard" zset ttl=true/120000: "alice" "1.5" "bob" "2.0" "carol" "1e+16" "dave" "3.0000000000000004"
0 "greeting:ru" string ttl=false/0: "Привет, мир 🙂"
0 "bin:\xff\xfe" string ttl=false/0: "\x00\x01\x80\xff raw"
0 "quote\"back\\slash\nnl" string ttl=false/0: "\x00b64:not base64 in a seed"
`
	if got := describeKeys(keys); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestGoldenSeedIndent(t *testing.T) {
	h, keys := readSeed(t, "seed_indent.json.gz")
	if h.Timestamp != "20240101_030000" {
		t.Fatalf("header %+v", h)
	}
	want := `0 "chat:1" list ttl=false/0: "hi" "héllo" "😀"
0 "scores" zset ttl=false/0: "low" "-inf" "mid" "0.0" "high" "inf"
0 "profile:1" hash ttl=true/86400000: "lang" "日本語"
`
	if got := describeKeys(keys); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

var _ = gzip.NewReader
