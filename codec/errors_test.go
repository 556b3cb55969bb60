package codec

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"filippo.io/age"
	kgzip "github.com/klauspost/compress/gzip"
)

// drain reads a whole document and returns the first error (nil at EOF).
func drain(data []byte, o ReaderOptions) error {
	return drainReader(NewReaderOptions(bytes.NewReader(data), o))
}

// drainSmall is drain with the smallest read buffer (8 KiB): cheap to
// create, and the buffer is refilled often.
func drainSmall(data []byte, o ReaderOptions) error {
	return drainReader(newReaderSize(bytes.NewReader(data), o, 8<<10))
}

func drainReader(r *Reader) error {
	if _, err := r.Header(); err != nil {
		return err
	}
	for {
		c, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		r.Release(c)
	}
}

func TestTruncatedEveryOffset(t *testing.T) {
	for _, name := range []string{"v1.json", "v2.json", "seed_ascii.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		// The document ends at its closing brace; only trailing white space
		// may be cut.
		end := bytes.LastIndexByte(data, '}') + 1
		// Cuts inside the long base64 payload of v2.json all take the same
		// path: keep its ends only.
		skipFrom, skipTo := -1, -1
		if i := bytes.Index(data, []byte(`"vs:1"`)); name == "v2.json" && i >= 0 {
			skipFrom = i + 300
			skipTo = i + bytes.Index(data[i:], []byte(`"},`)) - 100
		}
		for n := 0; n < end; n++ {
			if n == skipFrom {
				n = skipTo
			}
			for _, o := range []ReaderOptions{{}, {MaxChunkItems: 1, MaxChunkBytes: 64}} {
				err := drainSmall(data[:n], o)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s cut at %d: %v", name, n, err)
				}
			}
		}
	}
}

func TestTruncatedGzip(t *testing.T) {
	for _, name := range []string{"v1.json.gz", "v2.json.gz"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			jr, _, err := NewDecoder(bytes.NewReader(data[:n]), DecodeOptions{})
			if err == nil {
				err = drainReader(NewReader(jr))
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s cut at %d: %v", name, n, err)
			}
		}
	}
}

func TestBadGzipCRC(t *testing.T) {
	data, _ := os.ReadFile("testdata/v1.json.gz")
	bad := bytes.Clone(data)
	bad[len(bad)-6] ^= 0xff // CRC32 in the trailer
	jr, l, err := NewDecoder(bytes.NewReader(bad), DecodeOptions{})
	if err != nil || !l.Gzip {
		t.Fatal(err, l)
	}
	if err := drainReader(NewReader(jr)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad CRC: %v", err)
	}
	// A flipped byte inside the deflate data.
	bad = bytes.Clone(data)
	bad[len(bad)/2] ^= 0x55
	jr, _, err = NewDecoder(bytes.NewReader(bad), DecodeOptions{})
	if err == nil {
		err = drainReader(NewReader(jr))
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad deflate: %v", err)
	}
}

// TestSourceErrorPassesThrough: an error of the storage below is not a
// corrupt archive.
func TestSourceErrorPassesThrough(t *testing.T) {
	data, _ := os.ReadFile("testdata/v1.json.gz")
	boom := errors.New("connection reset")
	src := io.MultiReader(bytes.NewReader(data[:200]), errReader{boom})
	jr, _, err := NewDecoder(src, DecodeOptions{})
	if err == nil {
		err = drainReader(NewReader(jr))
	}
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestAge(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	plain, _ := os.ReadFile("testdata/v1.json")
	for _, gz := range []bool{false, true} {
		var buf bytes.Buffer
		enc, err := NewEncoder(&buf, EncodeOptions{Gzip: gz, Recipients: []age.Recipient{id.Recipient()}})
		if err != nil {
			t.Fatal(err)
		}
		enc.Write(plain)
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		arch := buf.Bytes()

		if _, l, err := NewDecoder(bytes.NewReader(arch), DecodeOptions{}); !errors.Is(err, ErrEncrypted) || !l.Age {
			t.Fatalf("no identity: %v", err)
		}
		// A wrong key is found from the header: the payload is never read.
		hdrEnd := bytes.Index(arch, []byte("\n---")) + 49 // "\n--- " + 43 bytes of MAC + "\n"
		src := &countingReader{r: bytes.NewReader(arch)}
		_, _, err = NewDecoder(io.MultiReader(bytes.NewReader(arch[:hdrEnd]), errReader{errors.New("payload read")}), DecodeOptions{Identities: []age.Identity{other}})
		if !errors.Is(err, ErrWrongKey) {
			t.Fatalf("wrong key: %v", err)
		}
		var nm *age.NoIdentityMatchError
		if !errors.As(err, &nm) {
			t.Fatalf("wrong key does not wrap NoIdentityMatchError: %v", err)
		}
		jr, l, err := NewDecoder(src, DecodeOptions{Identities: []age.Identity{other, id}})
		if err != nil || !l.Age || l.Gzip != gz {
			t.Fatal(err, l)
		}
		got, err := io.ReadAll(jr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("decrypt: %v", err)
		}
		// Truncated and tampered payloads are corrupt.
		for _, bad := range [][]byte{arch[:len(arch)-10], flip(arch, len(arch)-20)} {
			jr, _, err := NewDecoder(bytes.NewReader(bad), DecodeOptions{Identities: []age.Identity{id}})
			if err == nil {
				_, err = io.ReadAll(jr)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bad age payload: %v", err)
			}
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestLayersFromName(t *testing.T) {
	for name, want := range map[string]Layers{
		"redis_backup_20231205_143022.json":        {},
		"redis_backup_20231205_143022.json.gz":     {Gzip: true},
		"redis_backup_20231205_143022.json.age":    {Age: true},
		"redis_backup_20231205_143022.json.gz.age": {Gzip: true, Age: true},
	} {
		if got := LayersFromName(name); got != want {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

func TestEncoderLevels(t *testing.T) {
	plain, _ := os.ReadFile("testdata/v1.json")
	for _, level := range []int{0, kgzip.StatelessCompression, 1, 5, 9} {
		var buf bytes.Buffer
		enc, err := NewEncoder(&buf, EncodeOptions{Gzip: true, GzipLevel: level})
		if err != nil {
			t.Fatal(err)
		}
		enc.Write(plain)
		enc.Close()
		jr, l, err := NewDecoder(&buf, DecodeOptions{})
		if err != nil || !l.Gzip {
			t.Fatal(err)
		}
		got, err := io.ReadAll(jr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("level %d: %v", level, err)
		}
	}
	if _, err := NewEncoder(io.Discard, EncodeOptions{Gzip: true, GzipLevel: 42}); err == nil {
		t.Fatal("level 42 accepted")
	}
}

const hdr = `{"format":"redback","format_version":1,"timestamp":"t","created_at":"c","data":{`

func TestReaderErrors(t *testing.T) {
	cases := []struct{ name, doc, msg string }{
		{"duplicate type", hdr + `"k":{"type":"string","type":"string","value":"x"}},"keys_count":1}`, "duplicate member"},
		{"duplicate value", hdr + `"k":{"type":"string","value":"x","value":"y"}},"keys_count":1}`, "duplicate member"},
		{"value before type", hdr + `"k":{"value":"x","type":"string"}},"keys_count":1}`, "before \"type\""},
		{"no value", hdr + `"k":{"type":"string"}},"keys_count":1}`, "without \"value\""},
		{"keys_count mismatch", hdr + `"k":{"type":"string","value":"x"}},"keys_count":2}`, "keys_count is 2"},
		{"keys_count missing", hdr + `"k":{"type":"string","value":"x"}}}`, "no keys_count"},
		{"keys_per_db mismatch", hdr + `"k":{"type":"string","value":"x"}},"keys_count":1,"keys_per_db":{"0":2}}`, "keys_per_db"},
		{"keys_per_type unknown type", hdr + `"k":{"type":"string","value":"x"}},"keys_count":1,"keys_per_type":{"blob":1}}`, "invalid type \"blob\" in keys_per_type"},
		{"keys_per_type duplicate", hdr + `"k":{"type":"string","value":"x"}},"keys_count":1,"keys_per_type":{"string":1,"string":1}}`, "duplicate type"},
		{"keys_per_type negative", hdr + `"k":{"type":"string","value":"x"}},"keys_count":1,"keys_per_type":{"string":-1}}`, "negative key count in keys_per_type"},
		{"keys_per_type not an object", hdr + `"k":{"type":"string","value":"x"}},"keys_count":1,"keys_per_type":[1]}`, "keys_per_type"},
		{"trailing garbage", hdr + `},"keys_count":0}x`, "trailing data"},
		{"second document", hdr + `},"keys_count":0}{}`, "trailing data"},
		{"unknown type", hdr + `"k":{"type":"blob","value":"x"}},"keys_count":1}`, "unknown type"},
		{"wrong value type", hdr + `"k":{"type":"list","value":"x"}},"keys_count":1}`, "expected an array"},
		{"string as number", hdr + `"k":{"type":"string","value":5}},"keys_count":1}`, "expected a string"},
		{"ttl float", hdr + `"k":{"type":"string","ttl":1.5,"value":"x"}},"keys_count":1}`, "not an integer"},
		{"ttl exponent", hdr + `"k":{"type":"string","ttl":1e3,"value":"x"}},"keys_count":1}`, "not an integer"},
		{"pttl overflow", hdr + `"k":{"type":"string","pttl":9223372036854775808,"value":"x"}},"keys_count":1}`, "out of range"},
		{"keys_count string", hdr + `},"keys_count":"0"}`, "expected an integer"},
		{"format after data", `{"data":{},"format":"redback","format_version":1}`, "after the keys"},
		{"unknown format", `{"format":"other","format_version":1,"data":{}}`, "unknown format"},
		{"format without version", `{"format":"redback","data":{},"keys_count":0}`, "without"},
		{"version zero", `{"format":"redback","format_version":0,"data":{},"keys_count":0}`, "invalid format_version"},
		{"no data", `{"timestamp":"x"}`, "no \"data\""},
		{"not an object", `[1,2]`, "expected '{'"},
		{"empty", ``, "empty archive"},
		{"bad b64 prefix", hdr + `"\u0000abc":{"type":"string","value":"x"}},"keys_count":1}`, "begins with U+0000"},
		{"bad base64", hdr + `"k":{"type":"string","value":"\u0000b64:!!!!"}},"keys_count":1}`, "invalid base64"},
		{"base64 newline", hdr + `"k":{"type":"string","value":"\u0000b64:aGk\n"}},"keys_count":1}`, "invalid base64"},
		{"base64 not canonical", hdr + `"k":{"type":"string","value":"\u0000b64:aGl="}},"keys_count":1}`, "invalid base64"},
		{"base64 short", hdr + `"k":{"type":"string","value":"\u0000b64:aGk"}},"keys_count":1}`, "multiple of 4"},
		{"base64 after padding", hdr + `"k":{"type":"list","value":["\u0000b64:aA==aGk="]}},"keys_count":1}`, "base64"},
		{"lone surrogate", hdr + `"k":{"type":"string","value":"\udc80"}},"keys_count":1}`, "lone surrogate"},
		{"lone high surrogate", hdr + `"k":{"type":"string","value":"\ud800x"}},"keys_count":1}`, "lone surrogate"},
		{"invalid utf8", hdr + "\"k\":{\"type\":\"string\",\"value\":\"\xff\"}},\"keys_count\":1}", "invalid UTF-8"},
		{"raw control char", hdr + "\"k\":{\"type\":\"string\",\"value\":\"a\nb\"}},\"keys_count\":1}", "control character"},
		{"bad escape", hdr + `"k":{"type":"string","value":"\x41"}},"keys_count":1}`, "invalid escape"},
		{"bad score", hdr + `"k":{"type":"zset","value":[["m","nan"]]}},"keys_count":1}`, "invalid score"},
		{"score Infinity in redback archive", hdr + `"k":{"type":"zset","value":[["m",Infinity]]}},"keys_count":1}`, "unexpected"},
		{"odd stream fields", hdr + `"k":{"type":"stream","value":{"entries":[["1-0",["f"]]]}}},"keys_count":1}`, "odd number"},
		{"trailing comma", hdr + `"k":{"type":"list","value":["a",]}},"keys_count":1}`, "after ','"},
		{"missing comma", hdr + `"k":{"type":"list","value":["a" "b"]}},"keys_count":1}`, "expected ','"},
		{"database 0 in databases", hdr + `},"databases":{"0":{}},"keys_count":0}`, "invalid database"},
		{"duplicate database", hdr + `},"databases":{"2":{},"2":{}},"keys_count":0}`, "duplicate database"},
		{"database not canonical", hdr + `},"databases":{"02":{}},"keys_count":0}`, "invalid database"},
		{"duplicate data", hdr + `},"data":{},"keys_count":0}`, "duplicate member"},
		{"deep nesting", hdr + `},"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"keys_count":0}`, "nesting deeper"},
		{"bad literal", hdr + `},"x":nul,"keys_count":0}`, "invalid literal"},
		{"bad number", hdr + `},"x":01,"keys_count":0}`, "invalid number"},
		{"negative pttl", hdr + `"k":{"type":"string","pttl":-5,"value":"x"}},"keys_count":1}`, "negative pttl"},
		{"null value", hdr + `"k":{"type":"hash","value":null}},"keys_count":1}`, "expected an object or array"},
	}
	for _, c := range cases {
		err := drain([]byte(c.doc), ReaderOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%s: got %v, want ErrCorrupt with %q", c.name, err, c.msg)
		}
	}
}

func TestNewerFormat(t *testing.T) {
	err := drain([]byte(`{"format":"redback","format_version":3,"data":{}}`), ReaderOptions{})
	if !errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 3 is newer") || !strings.Contains(err.Error(), "(2)") {
		t.Fatalf("got %v", err)
	}
	// Versions 1 and 2 are read.
	for _, v := range []string{"1", "2"} {
		if err := drain(seal([]byte(`{"format":"redback","format_version":`+v+`,"data":{},"keys_count":0}`)), ReaderOptions{}); err != nil {
			t.Fatalf("version %s: %v", v, err)
		}
	}
	// Reported by Header, before any key.
	r := NewReader(strings.NewReader(`{"format_version":7,"format":"redback","data":{"k":`))
	if _, err := r.Header(); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("Header: %v", err)
	}
}

// TestReaderAccepts: forms a reader must take though redback writes others.
func TestReaderAccepts(t *testing.T) {
	doc := ` { "unknown": {"a": [1, 2.5e3, true, false, null, {"b": "\u00e9"}]},
	"format" : "redback" , "keys_count": 4, "format_version": 1,
	"data": {
	  "h": {"ttl": 5, "type": "hash", "value": {"f": "v"}, "extra": [[]], "expire_at": 99},
	  "z": {"type": "zset", "value": {"a": 1, "b": "-inf"}},
	  "s": {"type": "string", "value": "\u0000b64:aGk=", "ttl": -1},
	  "l": {"type": "list", "value": ["\/\"\b\f\n\r\t\u0041\ud83d\ude42"]}
	}, "timestamp": "late" } `
	_, keys, tr, err := readAll(t, []byte(doc), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := describeKeys(keys)
	want := `0 "h" hash ttl=true/5000: "f" "v"
0 "z" zset ttl=false/0: "a" "1" "b" "-inf"
0 "s" string ttl=false/0: "hi"
0 "l" list ttl=false/0: "/\"\b\f\n\r\tA🙂"
`
	if got != want || tr.KeysCount != 4 || keys[0].expireAt != 99 {
		t.Fatalf("got\n%s", got)
	}
}

// TestNoPanicOnGarbage feeds mutated archives; any error must wrap
// ErrCorrupt.
func TestMutations(t *testing.T) {
	// Mutations inside a long run of alike bytes all take the same path:
	// each file skips the inside of such runs (between the markers).
	for _, f := range []struct {
		name  string
		skips [][2]string
	}{
		{"v1.json", [][2]string{{`"big"`, `"}`}}},
		{"v2.json", [][2]string{{`"fields"`, `]]},`}, {`"vs:1"`, `"},`}}},
	} {
		data, _ := os.ReadFile("testdata/" + f.name)
		skip := map[int]int{}
		for _, m := range f.skips {
			from := bytes.Index(data, []byte(m[0])) + 200
			skip[from] = from + bytes.Index(data[from:], []byte(m[1])) - 10
		}
		for i := 0; i < len(data); i++ {
			if to, ok := skip[i]; ok {
				i = to
			}
			for _, b := range []byte{'"', '\\', '}', ']', ',', '0', 0, 0xff} {
				m := bytes.Clone(data)
				m[i] = b
				err := drainSmall(m, ReaderOptions{MaxChunkItems: 2, MaxChunkBytes: 64})
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: mutation at %d: %v", f.name, i, err)
				}
			}
		}
	}
}
