package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests of what format version 2 added: hash field expiries, raw values,
// stream consumers and pending entries, source facts.

// fieldExpiry is the expiry the big hash of TestFieldExpireChunks gives
// field i: long runs without any (whole chunks with FieldExpire nil),
// sparse ones, dense ones, and a last field alone.
func fieldExpiry(i int) int64 {
	switch {
	case i < 1000:
		return 0
	case i < 2000:
		if i%5 == 0 {
			return 1701786741535 + int64(i)
		}
		return 0
	case i < 3000:
		return 1701786741535 + int64(i)
	case i == 4999:
		return 1
	}
	return 0
}

func TestFieldExpireChunks(t *testing.T) {
	const n = 5000
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	w.BeginKey(KeyHeader{Key: []byte("big"), Type: TypeHash, FieldTTLs: true})
	for i := 0; i < n; i++ {
		f := []byte("f" + strconv.Itoa(i))
		v := bytes.Repeat([]byte("v"), i%50)
		var err error
		if e := fieldExpiry(i); e != 0 || i%2 == 0 {
			err = w.WriteFieldExpire(f, v, e)
		} else {
			err = w.WriteField(f, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.EndKey()
	// A hash after it: its chunks must not inherit expiries.
	w.BeginKey(KeyHeader{Key: []byte("after"), Type: TypeHash, HashAsPairs: true})
	w.WriteField([]byte("a"), []byte("b"))
	w.EndKey()
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	checkStandardJSON(t, data)
	for _, o := range []ReaderOptions{{}, {MaxChunkItems: 100}, {MaxChunkItems: 7, MaxChunkBytes: 64}, {MaxChunkItems: 1}} {
		for _, release := range []bool{true, false} {
			r := NewReaderOptions(bytes.NewReader(data), o)
			var kept []*Chunk
			next, chunks, nilChunks := 0, 0, 0
			for {
				c, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if string(c.Key) == "after" {
					if c.FieldExpire != nil {
						t.Fatalf("%+v: FieldExpire %v on the next key", o, c.FieldExpire)
					}
					continue
				}
				chunks++
				any := false
				for j := 0; j < len(c.Items)/2; j++ {
					if string(c.Items[2*j]) != "f"+strconv.Itoa(next+j) {
						t.Fatalf("%+v: pair %d is %q", o, next+j, c.Items[2*j])
					}
					any = any || fieldExpiry(next+j) != 0
				}
				if !any {
					nilChunks++
				}
				if (c.FieldExpire != nil) != any {
					t.Fatalf("%+v: chunk from pair %d: FieldExpire %v", o, next, c.FieldExpire)
				}
				next += len(c.Items) / 2
				if release {
					checkExpiries(t, c, next-len(c.Items)/2)
					r.Release(c)
				} else {
					kept = append(kept, c)
				}
			}
			// Chunks kept to the end still hold their own expiries.
			start := 0
			for _, c := range kept {
				checkExpiries(t, c, start)
				start += len(c.Items) / 2
			}
			if next != n || chunks < 2 && o.MaxChunkItems > 0 || nilChunks == 0 && o.MaxChunkItems != 0 {
				t.Fatalf("%+v: %d pairs in %d chunks (%d without expiry)", o, next, chunks, nilChunks)
			}
		}
	}
}

func checkExpiries(t *testing.T, c *Chunk, first int) {
	t.Helper()
	if c.FieldExpire == nil {
		return
	}
	if len(c.FieldExpire) != len(c.Items)/2 {
		t.Fatalf("%d expiries for %d pairs", len(c.FieldExpire), len(c.Items)/2)
	}
	for j, e := range c.FieldExpire {
		if e != fieldExpiry(first+j) {
			t.Fatalf("pair %d: expiry %d, want %d", first+j, e, fieldExpiry(first+j))
		}
	}
}

func TestRawParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	payload := make([]byte, 300<<10)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	info := RawInfo{RedisType: "vectorset", Module: "vectorset", RDBVersion: 12}
	for _, v := range [][]byte{payload, []byte("text payload ✓"), {}} {
		var one bytes.Buffer
		w := NewWriter(&one, Header{Timestamp: "t", CreatedAt: fixedTime})
		w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &info, PTTL: 5000, ExpireAt: 1701786681535})
		if err := w.WriteString(v); err != nil {
			t.Fatal(err)
		}
		w.EndKey()
		w.Close()
		for trial := 0; trial < 3; trial++ {
			var parts bytes.Buffer
			w := NewWriter(&parts, Header{Timestamp: "t", CreatedAt: fixedTime})
			ri := info
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &ri, PTTL: 5000, ExpireAt: 1701786681535, StringBase64: !IsText(v)})
			ri.RedisType = "changed after BeginKey" // the Writer must not keep the pointer
			for p := v; len(p) > 0; {
				n := min(len(p), 1+rng.IntN(1+trial*40000))
				if err := w.WriteStringPart(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := w.EndKey(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if !bytes.Equal(stripCompleted(one.Bytes()), stripCompleted(parts.Bytes())) {
				t.Fatalf("parts differ from one write (%d bytes)", len(v))
			}
		}
		for _, o := range []ReaderOptions{{}, {MaxChunkBytes: 4096}, {MaxChunkBytes: 64}} {
			r := NewReaderOptions(bytes.NewReader(one.Bytes()), o)
			var got []byte
			n := 0
			for {
				c, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				if c.Type != TypeRaw || c.Raw == nil || *c.Raw != info || len(c.Items) != 1 || c.FieldExpire != nil {
					t.Fatalf("chunk %+v", c)
				}
				if c.Last != (c.HasTTL && c.PTTL == 5000 && c.ExpireAt == 1701786681535) {
					t.Fatalf("TTL %v %d %d on chunk last=%v", c.HasTTL, c.PTTL, c.ExpireAt, c.Last)
				}
				got = append(got, c.Items[0]...)
				r.Release(c)
			}
			if !bytes.Equal(got, v) || (o.MaxChunkBytes == 64 && len(v) > 1000 && n < len(v)/64) {
				t.Fatalf("%+v: read %d bytes in %d chunks, want %d", o, len(got), n, len(v))
			}
		}
		// A wrong promise fails as for strings.
		if len(v) > 0 {
			w = NewWriter(io.Discard, Header{})
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &info, StringBase64: IsText(v)})
			err := w.WriteStringPart(v)
			if err == nil {
				err = w.EndKey()
			}
			if !errors.Is(err, ErrStringForm) {
				t.Fatalf("wrong StringBase64: %v", err)
			}
		}
	}
}

// bigPEL returns stream metadata with a long pending entries list.
func bigPEL(nCons, nPending int) *StreamMeta {
	m := &StreamMeta{LastID: []byte("9-0"), EntriesAdded: -1}
	for g := 0; g < 2; g++ {
		sg := StreamGroup{Name: []byte("g" + strconv.Itoa(g)), LastDeliveredID: []byte("9-0"), EntriesRead: -1, Consumers: []StreamConsumer{}, Pending: []StreamPending{}}
		for c := 0; c < nCons; c++ {
			sg.Consumers = append(sg.Consumers, StreamConsumer{Name: []byte(fmt.Sprintf("consumer-%d", c)), SeenTime: int64(c), ActiveTime: int64(c) - 1})
		}
		for p := 0; p < nPending; p++ {
			sg.Pending = append(sg.Pending, StreamPending{ID: []byte(fmt.Sprintf("%d-%d", 1701786681535+p, g)), Consumer: sg.Consumers[p%nCons].Name, DeliveryTime: 1701786681535 + int64(p), DeliveryCount: int64(p % 7)})
		}
		m.Groups = append(m.Groups, sg)
	}
	m.Groups[1].Consumers = m.Groups[1].Consumers[:3] // few consumers: found by a scan, not a map
	for i := range m.Groups[1].Pending {
		m.Groups[1].Pending[i].Consumer = m.Groups[0].Consumers[i%5].Name // some not among g1's
	}
	return m
}

func TestStreamDeliveryState(t *testing.T) {
	m := bigPEL(50, 100000)
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	if err := w.BeginKey(KeyHeader{Key: []byte("s"), Type: TypeStream, Stream: m}); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) > 2*writeBufSize {
		t.Fatalf("writer buffer grew to %d bytes for a long PEL", cap(w.buf))
	}
	w.WriteStreamEntry(StreamEntry{ID: []byte("1-0"), Fields: [][]byte{[]byte("f"), []byte("v")}})
	w.EndKey()
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkStandardJSON(t, buf.Bytes())
	keys := []genKey{{h: KeyHeader{Key: []byte("s"), Type: TypeStream, Stream: m}, entries: []StreamEntry{{ID: []byte("1-0"), Fields: [][]byte{[]byte("f"), []byte("v")}}}}}
	_, got, _, err := readAll(t, buf.Bytes(), ReaderOptions{MaxChunkItems: 1})
	if err != nil {
		t.Fatal(err)
	}
	compareKeys(t, keys, got)
	g0, g1 := got[0].stream.Groups[0], got[0].stream.Groups[1]
	// Consumers named in pending entries share the consumer's bytes.
	for i, p := range g0.Pending[:100] {
		if &p.Consumer[0] != &g0.Consumers[i%50].Name[0] {
			t.Fatalf("pending %d: consumer not shared", i)
		}
	}
	for i, p := range g1.Pending[:10] {
		shared := &p.Consumer[0] == &g1.Consumers[min(i%5, 2)].Name[0]
		if shared != (i%5 < 3) {
			t.Fatalf("g1 pending %d: shared %v", i, shared)
		}
	}
	// Capped slices: appending to one never writes into another.
	if p := g0.Pending[0]; cap(p.ID) != len(p.ID) {
		t.Fatalf("ID not capped: len %d cap %d", len(p.ID), cap(p.ID))
	}
}

// TestStreamLimits checks the documented caps of stream metadata.
func TestStreamLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	doc := func(groups ...string) []byte {
		var b bytes.Buffer
		b.WriteString(hdr2 + `"s":{"type":"stream","value":{"last_id":"1-0","groups":[`)
		for i, g := range groups {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"g%d","last_delivered_id":"0-0",%s}`, i, g)
		}
		b.WriteString(`],"entries":[]}}},"keys_count":1}`)
		return seal(b.Bytes())
	}
	consumers := func(n int, nameLen int) string {
		var b strings.Builder
		b.WriteString(`"consumers":[`)
		name := strings.Repeat("c", nameLen)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"%s%d","seen_time":1}`, name, i)
		}
		return b.String() + "]"
	}
	pending := func(n int) string {
		var b strings.Builder
		b.WriteString(`"pending":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`["1-0","c",1,1]`)
		}
		return b.String() + "]"
	}
	for _, c := range []struct {
		doc []byte
		msg string
	}{
		{doc(consumers(maxStreamConsumers/2, 0), consumers(maxStreamConsumers/2, 0)), ""},
		{doc(consumers(maxStreamConsumers/2, 0), consumers(maxStreamConsumers/2+1, 0)), "more than 100000 consumers"},
		{doc(pending(maxStreamPending/2+1), pending(maxStreamPending/2)), "more than 1000000 pending entries"},
		{doc(consumers(1100, 61<<10)), "more than 64 MiB"},
		{doc(consumers(1, 64<<10)), "too long"},
	} {
		err := drain(c.doc, ReaderOptions{})
		if c.msg == "" {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("got %v, want %q", err, c.msg)
		}
	}
}

func TestWriterErrorsV2(t *testing.T) {
	info := &RawInfo{RedisType: "vectorset", RDBVersion: 12}
	for _, c := range []struct {
		name string
		f    func(w *Writer) error
	}{
		{"raw without RawInfo", func(w *Writer) error { return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw}) }},
		{"raw without redis type", func(w *Writer) error {
			return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &RawInfo{RDBVersion: 12}})
		}},
		{"raw type too long", func(w *Writer) error {
			return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &RawInfo{RedisType: strings.Repeat("x", 257)}})
		}},
		{"raw rdb version", func(w *Writer) error {
			return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: &RawInfo{RedisType: "x", RDBVersion: 70000}})
		}},
		{"invalid type", func(w *Writer) error { return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw + 1}) }},
		{"WriteItem on raw", func(w *Writer) error {
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: info})
			return w.WriteItem([]byte("x"))
		}},
		{"WriteField on raw", func(w *Writer) error {
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeRaw, Raw: info})
			return w.WriteField([]byte("x"), []byte("y"))
		}},
		{"WriteFieldExpire without FieldTTLs", func(w *Writer) error {
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeHash, HashAsPairs: true})
			return w.WriteFieldExpire([]byte("f"), []byte("v"), 5)
		}},
		{"WriteFieldExpire negative", func(w *Writer) error {
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeHash, FieldTTLs: true})
			return w.WriteFieldExpire([]byte("f"), []byte("v"), -1)
		}},
		{"WriteFieldExpire on a list", func(w *Writer) error {
			w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeList, FieldTTLs: true})
			return w.WriteFieldExpire([]byte("f"), []byte("v"), 1)
		}},
		{"negative seen time", func(w *Writer) error {
			return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeStream, Stream: &StreamMeta{Groups: []StreamGroup{{Consumers: []StreamConsumer{{SeenTime: -1}}}}}})
		}},
		{"negative delivery count", func(w *Writer) error {
			return w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeStream, Stream: &StreamMeta{Groups: []StreamGroup{{Pending: []StreamPending{{DeliveryCount: -1}}}}}})
		}},
	} {
		w := NewWriter(io.Discard, Header{})
		if err := c.f(w); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if _, err2 := w.Close(); err2 != err {
			t.Errorf("%s: the writer is not failed (%v, then %v)", c.name, err, err2)
		}
	}
	// FieldTTLs implies the pairs form; WriteField is allowed there.
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeHash, FieldTTLs: true})
	w.WriteField([]byte("a"), []byte("1"))
	w.WriteFieldExpire([]byte("b"), []byte("2"), 0)
	w.WriteFieldExpire([]byte("c"), []byte("3"), 1701786681535)
	w.EndKey()
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"value":[["a","1"],["b","2"],["c","3",1701786681535]]`)) {
		t.Fatalf("got %s", buf.Bytes())
	}
	// Source members absent when unknown, present when known.
	buf.Reset()
	NewWriter(&buf, Header{Source: Source{RedisVersion: "7.0.0"}}).Close()
	if bytes.Contains(buf.Bytes(), []byte(`"server`)) || bytes.Contains(buf.Bytes(), []byte(`rdb_version`)) {
		t.Fatalf("got %s", buf.Bytes())
	}
}

const hdr2 = `{"format":"redback","format_version":2,"timestamp":"t","created_at":"c","data":{`

func TestReaderErrorsV2(t *testing.T) {
	group := func(g string) string {
		return hdr2 + `"s":{"type":"stream","value":{"last_id":"1-0","groups":[{"name":"g",` + g + `}],"entries":[]}}},"keys_count":1}`
	}
	raw := func(members string) string {
		return hdr2 + `"k":{"type":"raw",` + members + `}},"keys_count":1}`
	}
	cases := []struct{ name, doc, msg string }{
		{"field expiry in v1", hdr + `"h":{"type":"hash","value":[["f","v",5]]}},"keys_count":1}`, "three elements"},
		{"field expiry in a seed", `{"data":{"h":{"type":"hash","value":[["f","v",5]]}}}`, "format_version 0"},
		{"expire_at float", hdr2 + `"h":{"type":"hash","value":[["f","v",1.5]]}},"keys_count":1}`, "not an integer"},
		{"expire_at exponent", hdr2 + `"h":{"type":"hash","value":[["f","v",1e12]]}},"keys_count":1}`, "not an integer"},
		{"expire_at string", hdr2 + `"h":{"type":"hash","value":[["f","v","5"]]}},"keys_count":1}`, "expected an integer"},
		{"expire_at null", hdr2 + `"h":{"type":"hash","value":[["f","v",null]]}},"keys_count":1}`, "expected an integer"},
		{"expire_at zero", hdr2 + `"h":{"type":"hash","value":[["f","v",0]]}},"keys_count":1}`, "must be positive"},
		{"expire_at negative", hdr2 + `"h":{"type":"hash","value":[["f","v",-3]]}},"keys_count":1}`, "must be positive"},
		{"expire_at overflow", hdr2 + `"h":{"type":"hash","value":[["f","v",99999999999999999999]]}},"keys_count":1}`, "out of range"},
		{"hash pair of four", hdr2 + `"h":{"type":"hash","value":[["f","v",5,6]]}},"keys_count":1}`, "']' closing a hash field"},
		{"hash pair of one", hdr2 + `"h":{"type":"hash","value":[["f"]]}},"keys_count":1}`, "',' in a pair"},
		{"raw in v1", hdr + `"k":{"type":"raw","redis_type":"x","rdb_version":1,"value":"x"}},"keys_count":1}`, "unknown type \"raw\""},
		{"raw in a seed", `{"data":{"k":{"type":"raw","value":"x"}}}`, "unknown type \"raw\""},
		{"raw without redis_type", raw(`"rdb_version":12,"value":"x"`), "without \"redis_type\""},
		{"raw without rdb_version", raw(`"redis_type":"vectorset","value":"x"`), "without \"rdb_version\""},
		{"raw redis_type after value", raw(`"rdb_version":12,"value":"x","redis_type":"vectorset"`), "without \"redis_type\""},
		{"raw empty redis_type", raw(`"redis_type":"","rdb_version":12,"value":"x"`), "empty redis_type"},
		{"raw redis_type too long", raw(`"redis_type":"` + strings.Repeat("x", 257) + `","rdb_version":12,"value":"x"`), "too long"},
		{"raw redis_type number", raw(`"redis_type":5,"rdb_version":12,"value":"x"`), "expected a string"},
		{"raw module number", raw(`"redis_type":"x","module":null,"rdb_version":12,"value":"x"`), "expected a string"},
		{"raw rdb_version string", raw(`"redis_type":"x","rdb_version":"12","value":"x"`), "expected an integer"},
		{"raw rdb_version float", raw(`"redis_type":"x","rdb_version":12.0,"value":"x"`), "not an integer"},
		{"raw rdb_version range", raw(`"redis_type":"x","rdb_version":65536,"value":"x"`), "invalid rdb_version"},
		{"raw rdb_version negative", raw(`"redis_type":"x","rdb_version":-1,"value":"x"`), "invalid rdb_version"},
		{"raw duplicate module", raw(`"redis_type":"x","module":"a","module":"b","rdb_version":1,"value":"x"`), "duplicate member"},
		{"raw value array", raw(`"redis_type":"x","rdb_version":1,"value":["x"]`), "expected a string for a raw value"},
		{"raw bad base64", raw(`"redis_type":"x","rdb_version":1,"value":"\u0000b64:!!!!"`), "invalid base64"},
		{"pending of three", group(`"pending":[["1-0","c",5]]`), "of 3 elements, want 4"},
		{"pending of five", group(`"pending":[["1-0","c",5,1,2]]`), "more than 4 elements"},
		{"pending empty tuple", group(`"pending":[[]]`), "of 0 elements"},
		{"pending not a tuple", group(`"pending":["1-0"]`), "'[' of a pending entry"},
		{"pending not an array", group(`"pending":{}`), "an array of pending entries"},
		{"pending count float", group(`"pending":[["1-0","c",5,1.5]]`), "not an integer"},
		{"pending time string", group(`"pending":[["1-0","c","5",1]]`), "expected an integer"},
		{"pending negative count", group(`"pending":[["1-0","c",5,-1]]`), "negative delivery"},
		{"pending id number", group(`"pending":[[1,"c",5,1]]`), "expected a string"},
		{"pending consumer null", group(`"pending":[["1-0",null,5,1]]`), "expected a string"},
		{"duplicate pending", group(`"pending":[],"pending":[]`), "duplicate member"},
		{"consumers not an array", group(`"consumers":{}`), "an array of consumers"},
		{"consumer not an object", group(`"consumers":["c"]`), "a consumer object"},
		{"consumer without name", group(`"consumers":[{"seen_time":1}]`), "without a name"},
		{"consumer without seen_time", group(`"consumers":[{"name":"c"}]`), "without seen_time"},
		{"consumer seen_time float", group(`"consumers":[{"name":"c","seen_time":1.5}]`), "not an integer"},
		{"consumer negative seen_time", group(`"consumers":[{"name":"c","seen_time":-1}]`), "negative seen_time"},
		{"consumer active_time string", group(`"consumers":[{"name":"c","seen_time":1,"active_time":"x"}]`), "expected an integer"},
		{"consumer negative active_time", group(`"consumers":[{"name":"c","seen_time":1,"active_time":-1}]`), "negative active_time"},
		{"consumer duplicate name", group(`"consumers":[{"name":"c","name":"d","seen_time":1}]`), "duplicate member"},
		{"consumer name binary bad", group(`"consumers":[{"name":"\u0000xyz","seen_time":1}]`), "begins with U+0000"},
		{"source rdb_version string", `{"format":"redback","format_version":2,"source":{"rdb_version":"11"},"data":{},"keys_count":0}`, "expected an integer"},
		{"source rdb_version negative", `{"format":"redback","format_version":2,"source":{"rdb_version":-1},"data":{},"keys_count":0}`, "invalid source.rdb_version"},
		{"source server number", `{"format":"redback","format_version":2,"source":{"server":1},"data":{},"keys_count":0}`, "expected a string"},
		{"source duplicate server", `{"format":"redback","format_version":2,"source":{"server":"a","server":"b"},"data":{},"keys_count":0}`, "duplicate member"},
	}
	for _, c := range cases {
		err := drain([]byte(c.doc), ReaderOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("%s: got %v, want ErrCorrupt with %q", c.name, err, c.msg)
		}
	}
}

// TestReaderV2Compat: what a version 1 reader skipped stays skipped in
// version 1 archives; version 2 members read in any order and form.
func TestReaderV2Compat(t *testing.T) {
	// In version 1, the new key and group members are unknown members.
	v1 := `{"source":{"server":"valkey","rdb_version":11,"server_version":"8.0.1"},"format":"redback","format_version":1,"data":{
	  "s":{"type":"string","redis_type":7,"module":[],"rdb_version":"x","value":"v"},
	  "st":{"type":"stream","value":{"last_id":"1-0","groups":[{"name":"g","consumers":"junk","pending":5}],"entries":[]}}
	},"keys_count":2}`
	h, keys, _, err := readAll(t, []byte(v1), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Source.Server != "valkey" || h.Source.ServerVersion != "8.0.1" || h.Source.RDBVersion != 11 {
		t.Fatalf("source %+v", h.Source)
	}
	if g := keys[1].stream.Groups[0]; g.Consumers != nil || g.Pending != nil {
		t.Fatalf("group %+v", g)
	}
	// Version 2: members in other orders, unknown members, white space;
	// raw members on a key of another type are read and ignored.
	v2 := ` {"format":"redback","format_version":2,"data":{
	  "r": {"rdb_version": 12, "ttl": 5, "type": "raw", "x": [1], "redis_type": "\u0000b64:/3Q=", "value": "\u0000b64:AAE="},
	  "s": {"type": "string", "redis_type": "string", "rdb_version": 11, "value": "v"},
	  "h": {"type": "hash", "value": [ ["a", "1" , 7 ] , ["b","2"] ]},
	  "st": {"type":"stream","value":{"entries":[],"groups":[{"pending":[["2-0","bob",3,4]],"x":{},"consumers":[{"active_time":null,"x":1,"seen_time":9,"name":"bob"}],"name":"g"}],"last_id":"2-0"}}
	}, "keys_count": 4}`
	_, keys, _, err = readAll(t, seal([]byte(v2)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := keys[0].raw; r == nil || *r != (RawInfo{RedisType: "\xfft", RDBVersion: 12}) || string(keys[0].str) != "\x00\x01" || keys[0].pttl != 5000 {
		t.Fatalf("raw key %+v %+v", keys[0], r)
	}
	if keys[1].raw != nil || keys[1].typ != TypeString {
		t.Fatalf("string key %+v", keys[1])
	}
	if !slices.Equal(keys[2].fexp, []int64{7, 0}) {
		t.Fatalf("field expiries %v", keys[2].fexp)
	}
	g := keys[3].stream.Groups[0]
	if len(g.Consumers) != 1 || string(g.Consumers[0].Name) != "bob" || g.Consumers[0].SeenTime != 9 || g.Consumers[0].ActiveTime != -1 ||
		len(g.Pending) != 1 || string(g.Pending[0].ID) != "2-0" || string(g.Pending[0].Consumer) != "bob" || g.Pending[0].DeliveryTime != 3 || g.Pending[0].DeliveryCount != 4 {
		t.Fatalf("group %+v", g)
	}
	// The object form of a hash carries no expiries.
	_, keys, _, err = readAll(t, seal([]byte(hdr2+`"h":{"type":"hash","value":{"a":"1"}}},"keys_count":1}`)), ReaderOptions{})
	if err != nil || !slices.Equal(keys[0].fexp, []int64{0}) {
		t.Fatalf("%v %v", err, keys)
	}
}

// TestFieldExpireNoAllocs: a hash without field expiries costs no more
// than before, and one with them reuses released buffers.
func TestFieldExpireNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, Header{})
	for k := 0; k < 200; k++ {
		w.BeginKey(KeyHeader{Key: []byte("h" + strconv.Itoa(k)), Type: TypeHash, FieldTTLs: true})
		for i := 0; i < 100; i++ {
			w.WriteFieldExpire([]byte("f"+strconv.Itoa(i)), []byte("v"), int64(1+i%2))
		}
		w.EndKey()
	}
	w.Close()
	data := buf.Bytes()
	read := func() {
		r := NewReaderOptions(bytes.NewReader(data), ReaderOptions{MaxChunkItems: 10})
		for {
			c, err := r.Next()
			if err != nil {
				break
			}
			r.Release(c)
		}
	}
	read()
	allocs := testing.AllocsPerRun(5, read)
	t.Logf("%v allocations reading 2000 chunks", allocs)
	// The reader, its buffers and a handful of chunks: far fewer than the
	// 2000 chunks the archive gives.
	if allocs > 200 {
		t.Fatalf("%v allocations reading 2000 chunks", allocs)
	}
	// The writer allocates nothing per field.
	f, v := []byte("field"), []byte("value")
	w = NewWriter(io.Discard, Header{})
	w.BeginKey(KeyHeader{Key: []byte("k"), Type: TypeHash, FieldTTLs: true})
	if a := testing.AllocsPerRun(1000, func() { w.WriteFieldExpire(f, v, 1701786681535) }); a != 0 {
		t.Fatalf("WriteFieldExpire allocates %v", a)
	}
}

// TestSourceSnapshot: source.snapshot round-trips, is absent for a SCAN
// archive, skips members it does not know, and refuses bad values.
func TestSourceSnapshot(t *testing.T) {
	created := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	for _, sn := range []*Snapshot{
		nil,
		{Method: "replica", ReplID: strings.Repeat("ab", 20), Offset: 123456789, RDBCreatedAt: created},
		{Method: "rdb", RDBCreatedAt: created},
		{Method: "rdb"},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf, Header{Source: Source{RedisVersion: "7.0.0", Snapshot: sn}})
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if sn == nil && bytes.Contains(buf.Bytes(), []byte("snapshot")) {
			t.Fatalf("a SCAN archive names a snapshot: %s", buf.Bytes())
		}
		h, _, _, err := readAll(t, buf.Bytes(), ReaderOptions{})
		if err != nil {
			t.Fatalf("%+v: %v\n%s", sn, err, buf.Bytes())
		}
		got := h.Source.Snapshot
		if (got == nil) != (sn == nil) || (sn != nil && (got.Method != sn.Method || got.ReplID != sn.ReplID ||
			got.Offset != sn.Offset || !got.RDBCreatedAt.Equal(sn.RDBCreatedAt))) {
			t.Fatalf("wrote %+v, read %+v", sn, got)
		}
	}
	doc := func(s string) []byte {
		return []byte(`{"format":"redback","format_version":1,"source":{"snapshot":` + s + `},"data":{},"keys_count":0}`)
	}
	h, _, _, err := readAll(t, doc(`{"future":[1,{"x":2}],"method":"replica","offset":5}`), ReaderOptions{})
	if err != nil || h.Source.Snapshot == nil || h.Source.Snapshot.Method != "replica" || h.Source.Snapshot.Offset != 5 {
		t.Fatalf("unknown member: %+v %v", h.Source.Snapshot, err)
	}
	for _, bad := range []string{`"replica"`, `{"offset":-1}`, `{"rdb_created_at":"yesterday"}`, `{"method":5}`} {
		if _, _, _, err := readAll(t, doc(bad), ReaderOptions{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", bad, err)
		}
	}
	if _, _, _, err := readAll(t, []byte(`{"format":"redback","format_version":1,"source":{"snapshot":{},"snapshot":{}},"data":{},"keys_count":0}`), ReaderOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a repeated snapshot: %v", err)
	}
}
