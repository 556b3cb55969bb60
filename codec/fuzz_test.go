package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"
)

func FuzzReader(f *testing.F) {
	for _, name := range []string{"v1.json", "v2.json", "seed_ascii.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for seed := uint64(0); seed < 4; seed++ {
		f.Add(writeArchive(f, genData(rand.New(rand.NewPCG(seed, 3)), 3, false)))
	}
	f.Add([]byte(`{"data":{"k":{"type":"zset","value":[["a",-Infinity]],"ttl":null}}}`))
	f.Add([]byte(`{"format":"redback","format_version":1,"data":{"k":{"type":"stream","value":{"groups":[{"name":"g","entries_read":null}],"entries":[["1-0",["a","b"]]],"last_id":"1-0"}}},"keys_count":1}`))
	// Version 2: field expiries, raw values, consumers and pending entries,
	// source facts; and a version 1 document holding them.
	f.Add(seal([]byte(`{"format":"redback","format_version":2,"source":{"server":"valkey","server_version":"9.0.1","rdb_version":80},"data":{"h":{"type":"hash","value":[["a","1",1701786741535],["b","2"]]},"r":{"type":"raw","redis_type":"vectorset","module":"vectorset","rdb_version":12,"pttl":5,"value":"\u0000b64:BwECAwQFBgcICQ=="}},"keys_count":2}`)))
	f.Add(seal([]byte(`{"format":"redback","format_version":2,"data":{"s":{"type":"stream","value":{"last_id":"2-0","groups":[{"name":"g","last_delivered_id":"2-0","entries_read":2,"consumers":[{"name":"bob","seen_time":9,"active_time":null},{"name":"\u0000b64:/w==","seen_time":1,"active_time":1}],"pending":[["1-0","bob",3,4],["2-0","gone",5,1]]},{"name":"e","consumers":[],"pending":[]}],"entries":[["1-0",["a","b"]]]}}},"keys_count":1}`)))
	f.Add([]byte(`{"format":"redback","format_version":1,"data":{"h":{"type":"hash","value":[["a","1",5]]},"s":{"type":"stream","value":{"groups":[{"name":"g","consumers":[{"name":"c"}],"pending":[[1]]}]}},"r":{"type":"raw","value":""}},"keys_count":3}`))
	big := KeyHeader{Key: []byte("h"), Type: TypeHash, FieldTTLs: true}
	keys := []genKey{{h: big}}
	for i := 0; i < 20; i++ {
		keys[0].items = append(keys[0].items, []byte{'f', byte('a' + i)}, []byte("v"))
		keys[0].fexp = append(keys[0].fexp, int64(i%3))
	}
	f.Add(writeArchive(f, keys))
	f.Fuzz(fuzzReader)
}

func fuzzReader(t *testing.T, data []byte) {
	start := time.Now()
	r := newReaderSize(bytes.NewReader(data), ReaderOptions{MaxChunkItems: 3, MaxChunkBytes: 64}, 8<<10)
	_, err := r.Header()
	for n := 0; err == nil; n++ {
		var c *Chunk
		c, err = r.Next()
		if err == nil {
			if n > len(data) {
				t.Fatalf("more chunks (%d) than input bytes", n)
			}
			size := len(c.Key)
			for _, it := range c.Items {
				size += len(it)
			}
			if size > len(data) {
				t.Fatalf("chunk larger than the input")
			}
			if c.FieldExpire != nil && (c.Type != TypeHash || len(c.FieldExpire) != len(c.Items)/2) {
				t.Fatalf("%v chunk of %d items with %d field expiries", c.Type, len(c.Items), len(c.FieldExpire))
			}
			if (c.Raw != nil) != (c.Type == TypeRaw) {
				t.Fatalf("%v chunk with Raw %v", c.Type, c.Raw)
			}
			if c.Stream != nil {
				n := 0
				for _, g := range c.Stream.Groups {
					n += len(g.Consumers) + len(g.Pending)
				}
				if n > len(data)/4 {
					t.Fatalf("%d consumers and pending entries from %d bytes", n, len(data))
				}
			}
			r.Release(c)
		}
	}
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) && err.Error() != "EOF" {
		t.Fatalf("error not wrapping ErrCorrupt: %v", err)
	}
	if err == io.EOF {
		// The end of a version 2 document is reported only with its
		// checksum checked, and a checksum found is FORMAT.md's digest.
		tr := r.Trailer()
		if h, _ := r.Header(); h.FormatVersion >= 2 && !tr.Verified {
			t.Fatalf("version 2 document read without a checksum: %+v", tr)
		}
		if i := bytes.LastIndex(data, []byte(`"sha256"`)); tr.Verified && i >= 0 && bytes.Contains(data[i:], []byte(tr.Checksum)) {
			if sum := sha256.Sum256(data[:i]); hex.EncodeToString(sum[:]) != tr.Checksum {
				t.Fatalf("checksum %s verified, the document before the member hashes to %x", tr.Checksum, sum)
			}
		}
	}
	if r.Offset() > int64(len(data)) {
		t.Fatalf("offset %d beyond input %d", r.Offset(), len(data))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("slow: %v", d)
	}
}

// FuzzRoundTrip checks that the byte-string mapping is one to one: every
// byte string survives EncodeBytes and the Reader exactly, and the JSON
// is standard.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\x00b64:aGk=", "\xff", "é", "\xed\xb2\x80", "\"\\\n", "\xed\xa0\x80", "🙂", "\x01\x1f\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		enc := EncodeBytes(nil, b)
		doc := append([]byte(`{"format":"redback","format_version":1,"data":{`), enc...)
		doc = append(doc, `:{"type":"list","value":[`...)
		doc = append(doc, enc...)
		doc = append(doc, `]}},"keys_count":1}`...)
		r := NewReaderOptions(bytes.NewReader(doc), ReaderOptions{MaxChunkBytes: 64})
		c, err := r.Next()
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !bytes.Equal(c.Key, b) || len(c.Items) != 1 || !bytes.Equal(c.Items[0], b) {
			t.Fatalf("%q came back as key %q items %q", b, c.Key, c.Items)
		}
		if IsText(b) == bytes.HasPrefix(enc, []byte(b64Prefix)) {
			t.Fatalf("%q: wrong form %s", b, enc)
		}
		if !IsText(b) && !bytes.Equal(enc[len(b64Prefix):len(enc)-1], []byte(base64.StdEncoding.EncodeToString(b))) {
			t.Fatalf("%q: base64 form %s", b, enc)
		}
		checkStandardJSON(t, doc)
		// A string value in parts, split at every position.
		var tc TextChecker
		for i := 0; i <= len(b) && i < 64; i++ {
			tc.Reset()
			tc.Write(b[:i])
			tc.Write(b[i:])
			if tc.IsText() != IsText(b) {
				t.Fatalf("%q split at %d: TextChecker %v", b, i, tc.IsText())
			}
		}
	})
}

// TestReaderMemoryBounded reads a big archive and checks the heap stays
// far below its size.
func TestReaderMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	w.BeginKey(KeyHeader{Key: []byte("big"), Type: TypeString})
	v := bytes.Repeat([]byte("x\xff"), 16<<20) // 32 MiB, base64 form
	w.WriteString(v)
	w.EndKey()
	w.BeginKey(KeyHeader{Key: []byte("list"), Type: TypeList})
	item := bytes.Repeat([]byte("é"), 100)
	for i := 0; i < 200000; i++ {
		w.WriteItem(item)
	}
	w.EndKey()
	w.Close()
	data := buf.Bytes()
	v = nil
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	n := 0
	r := NewReaderOptions(bytes.NewReader(data), ReaderOptions{MaxChunkBytes: 256 << 10})
	var total int
	for {
		c, err := r.Next()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		for _, it := range c.Items {
			total += len(it)
		}
		r.Release(c)
		if n++; n%50 == 0 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
	}
	if total != 32<<20+200000*200 {
		t.Fatalf("read %d bytes", total)
	}
	grown := int64(peak) - int64(before.HeapAlloc)
	if grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB reading a %d MiB archive", grown>>20, len(data)>>20)
	}
}
