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
			if tr.KeysCount != 11 || fmt.Sprint(tr.KeysPerDB) != "map[0:8 3:2 5:1]" || tr.CompletedAt.IsZero() {
				t.Fatalf("%s: trailer %+v", name, tr)
			}
			if o.MaxChunkBytes == 100 && keys[len(keys)-1].chunks != 32 {
				t.Fatalf("big string in %d chunks, want 32", keys[len(keys)-1].chunks)
			}
		}
	}
	// The writer still produces the golden bytes (up to completed_at): a
	// change here is a format change.
	if got := writeGoldenV1(t); !bytes.Equal(stripCompleted(got), stripCompleted(plain)) {
		t.Fatalf("writer output changed:\n%s", got)
	}
	checkStandardJSON(t, plain)
}

// TestMakeGolden writes the golden v1 archives when REDBACK_MAKE_GOLDEN is
// set. It was run once; never run it again for version 1.
func TestMakeGolden(t *testing.T) {
	if os.Getenv("REDBACK_MAKE_GOLDEN") == "" {
		return
	}
	data := writeGoldenV1(t)
	if err := os.WriteFile("testdata/v1.json", data, 0o644); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	enc, _ := NewEncoder(&z, EncodeOptions{Gzip: true})
	enc.Write(data)
	enc.Close()
	if err := os.WriteFile("testdata/v1.json.gz", z.Bytes(), 0o644); err != nil {
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
