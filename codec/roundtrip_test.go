package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// readKey is one key as reassembled from a Reader's chunks.
type readKey struct {
	db       int
	key      []byte
	typ      Type
	str      []byte
	items    [][]byte
	entries  []StreamEntry
	hasTTL   bool
	pttl     int64
	expireAt int64
	stream   *StreamMeta
	fexp     []int64 // hash: expiry of each pair, 0 for none
	raw      *RawInfo
	chunks   int
}

// readAll reads a whole document, checking the chunk invariants.
func readAll(tb testing.TB, data []byte, o ReaderOptions) (Header, []readKey, Trailer, error) {
	tb.Helper()
	return readFrom(tb, NewReaderOptions(bytes.NewReader(data), o), o)
}

// chunkReader is what readFrom needs: *Reader and *ArchiveReader have it.
type chunkReader interface {
	Header() (Header, error)
	Next() (*Chunk, error)
	Release(c *Chunk)
	Trailer() Trailer
}

// readFrom reads r to its end, checking the chunk invariants against the
// options r was made with.
func readFrom(tb testing.TB, r chunkReader, o ReaderOptions) (Header, []readKey, Trailer, error) {
	tb.Helper()
	h, err := r.Header()
	if err != nil {
		return h, nil, Trailer{}, err
	}
	var keys []readKey
	var cur *readKey
	for {
		c, err := r.Next()
		if err == io.EOF {
			if cur != nil {
				tb.Fatalf("EOF inside key %q", cur.key)
			}
			return h, keys, r.Trailer(), nil
		}
		if err != nil {
			return h, keys, Trailer{}, err
		}
		if c.First != (cur == nil) {
			tb.Fatalf("chunk First=%v with cur=%v", c.First, cur != nil)
		}
		if c.First {
			keys = append(keys, readKey{db: c.DB, key: bytes.Clone(c.Key), typ: c.Type})
			cur = &keys[len(keys)-1]
		} else if !bytes.Equal(c.Key, cur.key) || c.DB != cur.db || c.Type != cur.typ {
			tb.Fatalf("chunk of another key inside %q", cur.key)
		}
		cur.chunks++
		if o.MaxChunkItems > 0 && c.Type != TypeString {
			n := len(c.Items)
			if c.Type == TypeHash || c.Type == TypeZSet {
				n /= 2
			}
			if c.Type == TypeStream {
				n = len(c.Entries)
			}
			if n > o.MaxChunkItems {
				tb.Fatalf("chunk of %d elements, limit %d", n, o.MaxChunkItems)
			}
		}
		if (c.Raw != nil) != (c.Type == TypeRaw) {
			tb.Fatalf("chunk of a %v key with Raw %v", c.Type, c.Raw)
		}
		if c.Type == TypeRaw {
			if cur.raw == nil {
				cur.raw = c.Raw
			} else if *cur.raw != *c.Raw {
				tb.Fatalf("raw info changed inside key %q: %+v then %+v", cur.key, *cur.raw, *c.Raw)
			}
		}
		if c.FieldExpire != nil {
			if c.Type != TypeHash || len(c.FieldExpire) != len(c.Items)/2 {
				tb.Fatalf("%v chunk of %d items with %d field expiries", c.Type, len(c.Items), len(c.FieldExpire))
			}
			if !slices.ContainsFunc(c.FieldExpire, func(v int64) bool { return v != 0 }) {
				tb.Fatalf("FieldExpire without an expiry: %v", c.FieldExpire)
			}
			cur.fexp = append(cur.fexp, c.FieldExpire...)
		} else if c.Type == TypeHash {
			cur.fexp = append(cur.fexp, make([]int64, len(c.Items)/2)...)
		}
		if c.Type == TypeString || c.Type == TypeRaw {
			if len(c.Items) != 1 {
				tb.Fatalf("string chunk with %d parts", len(c.Items))
			}
			if o.MaxChunkBytes > 0 && len(c.Items[0]) > o.MaxChunkBytes {
				tb.Fatalf("string part of %d bytes, limit %d", len(c.Items[0]), o.MaxChunkBytes)
			}
			cur.str = append(cur.str, c.Items[0]...)
			if cur.str == nil {
				cur.str = []byte{}
			}
		}
		for _, it := range c.Items {
			if c.Type != TypeString && c.Type != TypeRaw {
				cur.items = append(cur.items, bytes.Clone(it))
			}
		}
		for _, e := range c.Entries {
			ne := StreamEntry{ID: bytes.Clone(e.ID)}
			for _, f := range e.Fields {
				ne.Fields = append(ne.Fields, bytes.Clone(f))
			}
			cur.entries = append(cur.entries, ne)
		}
		if !c.Last && (c.HasTTL || c.Stream != nil) {
			tb.Fatalf("TTL or stream meta on a chunk that is not the last")
		}
		if c.Last {
			cur.hasTTL, cur.pttl, cur.expireAt, cur.stream = c.HasTTL, c.PTTL, c.ExpireAt, c.Stream
			cur = nil
		}
		r.Release(c)
	}
}

// randBytes returns awkward byte strings: empty, NUL-led, invalid UTF-8,
// the base64 prefix as text, escapes, multi-byte text.
func randBytes(rng *rand.Rand, maxLen int) []byte {
	switch rng.IntN(12) {
	case 0:
		return []byte{}
	case 1:
		b := make([]byte, 1+rng.IntN(maxLen+1))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		b[0] = 0
		return b
	case 2:
		return []byte("\x00b64:" + base64.StdEncoding.EncodeToString([]byte("hello")))
	case 3:
		return []byte(`\u0000b64:aGVsbG8=`)
	case 4:
		return []byte("\x00")
	case 5, 6:
		b := make([]byte, rng.IntN(maxLen+1))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	case 7:
		return []byte("héllo wörld ✓ 🙂 \"quoted\" back\\slash \n\t\r\b\f \x01\x1f\x7f end")
	case 8:
		return []byte{0xed, 0xa0, 0x80} // an encoded surrogate: invalid UTF-8
	case 9:
		return []byte("\u2028\u2029</script>")
	default:
		n := rng.IntN(maxLen + 1)
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc xyz:_-0123\"\\/é"[rng.IntN(19)]
		}
		return b
	}
}

var scores = []string{"0", "1", "-1", "1.5", "3.0000000000000004", "1e+300", "-2.5e-10", "inf", "-inf", "+inf", "12345678901234567890"}

// genData returns random keys in ascending DB order.
func genData(rng *rand.Rand, n int, big bool) []genKey {
	dbs := []int{0, 1, 3, 15}
	if rng.IntN(3) == 0 {
		dbs = dbs[1:]
	}
	var keys []genKey
	for _, db := range dbs {
		used := map[string]bool{}
		for i := 0; i < n; i++ {
			k := genKey{h: KeyHeader{DB: db, Key: randBytes(rng, 20), Type: Type(1 + rng.IntN(7))}}
			for used[string(k.h.Key)] {
				k.h.Key = randBytes(rng, 20)
			}
			used[string(k.h.Key)] = true
			if rng.IntN(3) == 0 {
				k.h.PTTL = 1 + rng.Int64N(1<<40)
				if rng.IntN(2) == 0 {
					k.h.ExpireAt = 1701786681535 + k.h.PTTL
				}
			}
			ne := rng.IntN(8)
			if big && rng.IntN(4) == 0 {
				ne = 500 + rng.IntN(3000)
			}
			switch k.h.Type {
			case TypeString, TypeRaw:
				k.str = randBytes(rng, 40)
				if big && rng.IntN(3) == 0 {
					k.str = bytes.Repeat(randBytes(rng, 50), 1+rng.IntN(5000))
				}
				if rng.IntN(3) == 0 {
					k.parts = 1 + rng.IntN(100)
					k.h.StringBase64 = !IsText(k.str)
				}
				if k.h.Type == TypeRaw {
					k.h.Raw = &RawInfo{RedisType: string(randBytes(rng, 12)), RDBVersion: rng.IntN(maxRDBVersion + 1)}
					if k.h.Raw.RedisType == "" {
						k.h.Raw.RedisType = "vectorset"
					}
					if rng.IntN(2) == 0 {
						k.h.Raw.Module = string(randBytes(rng, 12))
					}
				}
			case TypeHash:
				k.h.HashAsPairs = rng.IntN(2) == 0
				k.h.FieldTTLs = rng.IntN(3) == 0
				seen := map[string]bool{}
				for j := 0; j < ne; j++ {
					f := randBytes(rng, 10)
					if !k.h.HashAsPairs && !k.h.FieldTTLs {
						f = append(f, strconv.Itoa(j)...)
					}
					if seen[string(f)] && !k.h.HashAsPairs && !k.h.FieldTTLs {
						continue
					}
					seen[string(f)] = true
					k.items = append(k.items, f, randBytes(rng, 30))
					if k.h.FieldTTLs {
						var e int64
						if rng.IntN(3) == 0 {
							e = 1 + rng.Int64N(1<<50)
						}
						k.fexp = append(k.fexp, e)
					}
				}
			case TypeList, TypeSet:
				for j := 0; j < ne; j++ {
					k.items = append(k.items, randBytes(rng, 30))
				}
			case TypeZSet:
				for j := 0; j < ne; j++ {
					k.items = append(k.items, randBytes(rng, 20), []byte(scores[rng.IntN(len(scores))]))
				}
			case TypeStream:
				m := &StreamMeta{LastID: []byte("1701786681535-3"), EntriesAdded: -1}
				if rng.IntN(2) == 0 {
					m.EntriesAdded = rng.Int64N(1 << 50)
					m.MaxDeletedID = []byte("1701786681535-1")
				}
				for g := 0; g < rng.IntN(3); g++ {
					sg := StreamGroup{Name: randBytes(rng, 8), LastDeliveredID: []byte("0-0"), EntriesRead: rng.Int64N(3) - 1}
					if rng.IntN(3) > 0 {
						sg.Consumers = []StreamConsumer{}
						for c := 0; c < rng.IntN(12); c++ {
							sg.Consumers = append(sg.Consumers, StreamConsumer{Name: randBytes(rng, 8), SeenTime: rng.Int64N(1 << 42), ActiveTime: rng.Int64N(1<<42) - 1})
						}
					}
					if rng.IntN(3) > 0 {
						sg.Pending = []StreamPending{}
						for p := 0; p < rng.IntN(20); p++ {
							var cons []byte
							if len(sg.Consumers) > 0 && rng.IntN(4) > 0 {
								cons = sg.Consumers[rng.IntN(len(sg.Consumers))].Name
							} else {
								cons = randBytes(rng, 8)
							}
							sg.Pending = append(sg.Pending, StreamPending{ID: []byte(fmt.Sprintf("1701786681535-%d", p)), Consumer: cons, DeliveryTime: rng.Int64N(1 << 42), DeliveryCount: rng.Int64N(20)})
						}
					}
					m.Groups = append(m.Groups, sg)
				}
				k.h.Stream = m
				for j := 0; j < ne; j++ {
					e := StreamEntry{ID: []byte(fmt.Sprintf("%d-%d", 1701786681535+j, j))}
					for f := 0; f < 1+rng.IntN(3); f++ {
						e.Fields = append(e.Fields, randBytes(rng, 10), randBytes(rng, 20))
					}
					k.entries = append(k.entries, e)
				}
			}
			keys = append(keys, k)
		}
	}
	return keys
}

func writeArchive(tb testing.TB, keys []genKey) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{Source: Source{RedisVersion: "7.2.4", Role: "master", Mode: "standalone", Databases: []int{0, 1, 3, 15},
		Server: "valkey", ServerVersion: "9.0.1", RDBVersion: 80}})
	writeKeys(tb, w, keys)
	tr, err := w.Close()
	if err != nil {
		tb.Fatal(err)
	}
	if tr.KeysCount != int64(len(keys)) || w.Keys() != int64(len(keys)) {
		tb.Fatalf("trailer count %d, want %d", tr.KeysCount, len(keys))
	}
	if w.BytesWritten() != int64(buf.Len()) {
		tb.Fatalf("BytesWritten %d, wrote %d", w.BytesWritten(), buf.Len())
	}
	return buf.Bytes()
}

func nz(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func compareKeys(tb testing.TB, want []genKey, got []readKey) {
	tb.Helper()
	if len(want) != len(got) {
		tb.Fatalf("read %d keys, wrote %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.db != w.h.DB || !bytes.Equal(g.key, w.h.Key) || g.typ != w.h.Type {
			tb.Fatalf("key %d: got db %d %q %v, want db %d %q %v", i, g.db, g.key, g.typ, w.h.DB, w.h.Key, w.h.Type)
		}
		if g.hasTTL != (w.h.PTTL > 0) || g.pttl != w.h.PTTL || g.expireAt != w.h.ExpireAt {
			tb.Fatalf("key %q: ttl %v %d %d, want %d %d", w.h.Key, g.hasTTL, g.pttl, g.expireAt, w.h.PTTL, w.h.ExpireAt)
		}
		switch w.h.Type {
		case TypeString, TypeRaw:
			if !bytes.Equal(nz(g.str), nz(w.str)) {
				tb.Fatalf("key %q: string differs (%d vs %d bytes)", w.h.Key, len(g.str), len(w.str))
			}
			if w.h.Type == TypeRaw && (g.raw == nil || *g.raw != *w.h.Raw) {
				tb.Fatalf("key %q: raw info %+v, want %+v", w.h.Key, g.raw, *w.h.Raw)
			}
		case TypeStream:
			if len(g.entries) != len(w.entries) {
				tb.Fatalf("key %q: %d entries, want %d", w.h.Key, len(g.entries), len(w.entries))
			}
			for j := range w.entries {
				if !bytes.Equal(g.entries[j].ID, w.entries[j].ID) || !slices.EqualFunc(g.entries[j].Fields, w.entries[j].Fields, bytes.Equal) {
					tb.Fatalf("key %q: entry %d differs", w.h.Key, j)
				}
			}
			m, wm := g.stream, w.h.Stream
			if m == nil || !bytes.Equal(m.LastID, wm.LastID) || m.EntriesAdded != wm.EntriesAdded ||
				!bytes.Equal(m.MaxDeletedID, wm.MaxDeletedID) || (m.MaxDeletedID == nil) != (wm.MaxDeletedID == nil) ||
				len(m.Groups) != len(wm.Groups) {
				tb.Fatalf("key %q: stream meta %+v, want %+v", w.h.Key, m, wm)
			}
			for j := range wm.Groups {
				a, b := m.Groups[j], wm.Groups[j]
				if !bytes.Equal(a.Name, b.Name) || !bytes.Equal(a.LastDeliveredID, b.LastDeliveredID) || a.EntriesRead != b.EntriesRead {
					tb.Fatalf("key %q: group %d %+v, want %+v", w.h.Key, j, a, b)
				}
				if (a.Consumers == nil) != (b.Consumers == nil) || (a.Pending == nil) != (b.Pending == nil) ||
					!slices.EqualFunc(a.Consumers, b.Consumers, func(x, y StreamConsumer) bool {
						return bytes.Equal(x.Name, y.Name) && x.SeenTime == y.SeenTime && x.ActiveTime == y.ActiveTime
					}) ||
					!slices.EqualFunc(a.Pending, b.Pending, func(x, y StreamPending) bool {
						return bytes.Equal(x.ID, y.ID) && bytes.Equal(x.Consumer, y.Consumer) && x.DeliveryTime == y.DeliveryTime && x.DeliveryCount == y.DeliveryCount
					}) {
					tb.Fatalf("key %q: group %d consumers %+v pending %+v, want %+v %+v", w.h.Key, j, a.Consumers, a.Pending, b.Consumers, b.Pending)
				}
			}
		default:
			if !slices.EqualFunc(g.items, w.items, func(a, b []byte) bool { return bytes.Equal(a, b) }) {
				tb.Fatalf("key %q (%v): items differ:\n got %q\nwant %q", w.h.Key, w.h.Type, g.items, w.items)
			}
			if w.h.Type == TypeHash {
				want := w.fexp
				if want == nil {
					want = make([]int64, len(w.items)/2)
				}
				if !slices.Equal(g.fexp, want) {
					tb.Fatalf("key %q: field expiries %v, want %v", w.h.Key, g.fexp, want)
				}
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		keys := genData(rng, 20, seed%3 == 0)
		data := writeArchive(t, keys)
		for _, o := range []ReaderOptions{{}, {MaxChunkItems: 7, MaxChunkBytes: 64}, {MaxChunkItems: 1, MaxChunkBytes: 100}} {
			h, got, tr, err := readAll(t, data, o)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if h.FormatVersion != FormatVersion || h.Source.RedisVersion != "7.2.4" || len(h.Source.Databases) != 4 ||
				h.Source.Server != "valkey" || h.Source.ServerVersion != "9.0.1" || h.Source.RDBVersion != 80 {
				t.Fatalf("header %+v", h)
			}
			compareKeys(t, keys, got)
			if tr.KeysCount != int64(len(keys)) {
				t.Fatalf("trailer %+v", tr)
			}
			// keys_per_type as the writer recorded it, counted here.
			perType := map[Type]int64{}
			for _, k := range keys {
				perType[k.h.Type]++
			}
			if fmt.Sprint(tr.KeysPerType) != fmt.Sprint(perType) {
				t.Fatalf("seed %d: keys_per_type %v, want %v", seed, tr.KeysPerType, perType)
			}
		}
		checkStandardJSON(t, data)
	}
}

// checkStandardJSON decodes data with encoding/json and checks that no
// object repeats a name.
func checkStandardJSON(tb testing.TB, data []byte) {
	tb.Helper()
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatalf("encoding/json: %v", err)
	}
	if err := noDuplicateNames(json.NewDecoder(bytes.NewReader(data))); err != nil {
		tb.Fatal(err)
	}
}

func noDuplicateNames(d *json.Decoder) error {
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool // next string token is a name
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if s, ok := tok.(string); ok {
				if top.names[s] {
					return fmt.Errorf("duplicate name %q", s)
				}
				top.names[s] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, names: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].key = true
			}
		}
	}
}

func TestExternalParsers(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 7))
	data := writeArchive(t, genData(rng, 30, true))
	path := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"jq", "-e", ".keys_count", path},
		{"python3", "-c", "import json,sys; d=json.load(open(sys.argv[1])); assert d['format']=='redback'", path},
	} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			t.Fatalf("%s not found: %v", cmd[0], err) // they are on the build machine; do not skip silently
		}
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
}

func TestWriterEmpty(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkStandardJSON(t, buf.Bytes())
	_, keys, tr, err := readAll(t, buf.Bytes(), ReaderOptions{})
	if err != nil || len(keys) != 0 || tr.KeysCount != 0 {
		t.Fatalf("%v %v %+v\n%s", err, keys, tr, buf.Bytes())
	}
	// Only a database other than 0.
	buf.Reset()
	w = NewWriter(&buf, Header{})
	writeKeys(t, w, []genKey{{h: KeyHeader{DB: 2, Key: []byte("k"), Type: TypeString}, str: []byte("v")}})
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if d, ok := v["data"].(map[string]any); !ok || len(d) != 0 {
		t.Fatalf("data = %v", v["data"])
	}
	if _, _, _, err := readAll(t, buf.Bytes(), ReaderOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter(io.Discard, Header{})
	if err := w.BeginKey(KeyHeader{DB: 3, Key: []byte("a"), Type: TypeString}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteItem([]byte("x")); err == nil {
		t.Fatal("WriteItem on a string key accepted")
	}
	w = NewWriter(io.Discard, Header{})
	w.BeginKey(KeyHeader{DB: 3, Key: []byte("a"), Type: TypeString})
	w.EndKey()
	if err := w.BeginKey(KeyHeader{DB: 1, Key: []byte("b"), Type: TypeString}); err == nil {
		t.Fatal("descending DB accepted")
	}
	w = NewWriter(io.Discard, Header{})
	w.BeginKey(KeyHeader{Key: []byte("z"), Type: TypeZSet})
	if err := w.WriteMember([]byte("m"), []byte("nan")); err == nil {
		t.Fatal("score nan accepted")
	}
	w = NewWriter(io.Discard, Header{})
	if err := w.BeginKey(KeyHeader{Key: []byte("s"), Type: TypeStream}); err == nil {
		t.Fatal("stream without meta accepted")
	}
	w = NewWriter(io.Discard, Header{})
	w.BeginKey(KeyHeader{Key: []byte("s"), Type: TypeString})
	if _, err := w.Close(); err == nil {
		t.Fatal("Close with an open key accepted")
	}
	// A failing destination.
	w = NewWriter(failWriter{}, Header{})
	w.BeginKey(KeyHeader{Key: []byte("s"), Type: TypeString})
	w.WriteString(make([]byte, 1<<20))
	w.EndKey()
	if _, err := w.Close(); err == nil {
		t.Fatal("write error lost")
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

// TestStringParts checks that a string written in parts is byte for byte
// what one WriteString gives, however the parts are cut.
func TestStringParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	values := [][]byte{
		[]byte(""), []byte("a"), []byte("héllo ✓ 🙂 wörld"), {0, 1, 2}, {0xff, 0xfe}, []byte("ab\xe2\x82"),
		bytes.Repeat([]byte("✓🙂é\"\\\n"), 30000), bytes.Repeat([]byte{0xff, 'a', 0}, 70001),
	}
	for i := 0; i < 20; i++ {
		values = append(values, randBytes(rng, 300))
	}
	for _, v := range values {
		var one bytes.Buffer
		w := NewWriter(&one, Header{Timestamp: "t", CreatedAt: fixedTime})
		w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeString})
		w.WriteString(v)
		w.EndKey()
		w.Close()
		for trial := 0; trial < 5; trial++ {
			var parts bytes.Buffer
			w := NewWriter(&parts, Header{Timestamp: "t", CreatedAt: fixedTime})
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeString, StringBase64: !IsText(v)})
			var tc TextChecker
			for p := v; ; {
				n := min(len(p), rng.IntN(7)+trial*rng.IntN(70000))
				if err := w.WriteStringPart(p[:n]); err != nil {
					t.Fatalf("%q: %v", v[:min(len(v), 40)], err)
				}
				tc.Write(p[:n])
				p = p[n:]
				if len(p) == 0 {
					break
				}
			}
			if tc.IsText() != IsText(v) {
				t.Fatalf("TextChecker says %v for %q", tc.IsText(), v)
			}
			if err := w.EndKey(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			a, b := stripCompleted(one.Bytes()), stripCompleted(parts.Bytes())
			if !bytes.Equal(a, b) {
				t.Fatalf("parts differ from one write for %q", v)
			}
		}
		// A wrong promise fails.
		w = NewWriter(io.Discard, Header{})
		w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeString, StringBase64: IsText(v)})
		err := w.WriteStringPart(v)
		if err == nil {
			err = w.EndKey()
		}
		if !errors.Is(err, ErrStringForm) {
			t.Fatalf("wrong StringBase64 for %q: %v", v, err)
		}
	}
}

// stripCompleted cuts the completed_at time, which differs between runs.
func stripCompleted(b []byte) []byte {
	i := bytes.LastIndex(b, []byte(`"completed_at"`))
	return b[:i]
}
