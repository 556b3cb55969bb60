package rdbfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
)

// A whole-file model of what a Reader delivers, built while checking the
// invariants of the event stream (chunk limits, pairing, offsets).

type keyID struct {
	DB  int
	Key string
}

type consumerVal struct {
	Name         string
	Seen, Active int64
	IDs          []StreamID
}

type groupVal struct {
	Name        string
	LastID      StreamID
	EntriesRead int64
	Pending     []PendingEntry
	Consumers   []consumerVal
}

type entryVal struct {
	ID StreamID
	FV []string // field, value, ...
}

type streamVal struct {
	Entries []entryVal
	Meta    StreamMeta
	Groups  []groupVal
}

type keyVal struct {
	Start  KeyStart
	Str    []byte
	List   []string
	Hash   map[string]string
	HExp   map[string]int64
	ZSet   map[string]float64
	Stream *streamVal
	Raw    []byte // with the type byte
	IsRaw  bool
	Chunks int
}

type fileModel struct {
	Header      Header
	Aux         map[string]string
	Funcs       []string
	ModAux      []ModuleAux
	Slots       []SlotInfo
	SlotImports []SlotImport
	Resize      map[int]ResizeDB
	Keys        map[keyID]*keyVal
	Order       []keyID
	EOF         EOF
	Events      int
	Seen        encCounts
}

// invariantError is a Reader bug (as opposed to a bad file).
type invariantError struct{ msg string }

func (e *invariantError) Error() string { return "invariant: " + e.msg }

func broken(format string, args ...any) error {
	return &invariantError{fmt.Sprintf(format, args...)}
}

type readMode int

const (
	modeParsed readMode = iota
	modeRaw             // WantRaw on every key
	modeSkip            // SkipValue on every key
	modeMixed           // parsed, raw, skip in turn
	modeAllRaw          // Options.Raw
)

type collectOpts struct {
	Options
	mode readMode
	walk bool // Walk instead of Next
}

// collect reads a whole file. A returned *invariantError is a Reader bug.
func collect(in io.Reader, o collectOpts) (*fileModel, error) {
	opts := o.Options
	if o.mode == modeAllRaw {
		opts.Raw = true
	}
	r, err := NewReader(in, opts)
	if err != nil {
		return nil, err
	}
	eff := opts
	eff.setDefaults()
	m := &fileModel{Header: r.Header(), Aux: map[string]string{}, Resize: map[int]ResizeDB{}, Keys: map[keyID]*keyVal{}}
	c := &collector{m: m, r: r, o: o, eff: eff}
	if o.walk {
		err = r.Walk(c.event)
		if err == nil {
			if ev, err2 := r.Next(); ev != nil || err2 != io.EOF {
				return m, broken("Next after Walk: %v %v", ev, err2)
			}
		}
	} else {
		for {
			ev, err2 := r.Next()
			if err2 == io.EOF {
				if !c.sawEOF {
					return m, broken("io.EOF without an EOF event")
				}
				break
			}
			if err2 != nil {
				err = err2
				if _, again := r.Next(); again != err2 {
					return m, broken("error not sticky: %v then %v", err2, again)
				}
				break
			}
			if ev == nil {
				return m, broken("nil event")
			}
			if err = c.event(ev); err != nil {
				r.Close()
				break
			}
		}
	}
	m.Seen = r.seen
	if err != nil {
		var ie *invariantError
		if errors.As(err, &ie) {
			return m, err
		}
		var re *Error
		if !errors.As(err, &re) {
			return m, broken("error of type %T: %v", err, err)
		}
		return m, err
	}
	if c.cur != nil {
		return m, broken("file ended inside key %q", c.cur.Start.Key)
	}
	return m, nil
}

type collector struct {
	m      *fileModel
	r      *Reader
	o      collectOpts
	eff    Options
	cur    *keyVal
	nkeys  int
	raw    bool // the current key comes raw
	skip   bool
	sawEOF bool
	strOff int64
	stream *streamVal
}

// chunkBytesOK checks the MaxChunkBytes rule: the chunk was delivered as
// soon as it reached the limit, so all but its last element stay below.
func (c *collector) chunkBytesOK(sizes []int) error {
	if len(sizes) > c.eff.MaxChunkElems {
		return broken("chunk of %d elements, limit %d", len(sizes), c.eff.MaxChunkElems)
	}
	if len(sizes) == 0 {
		return broken("empty chunk")
	}
	sum := 0
	for _, s := range sizes[:len(sizes)-1] {
		sum += s
	}
	if sum >= c.eff.MaxChunkBytes {
		return broken("chunk of %d bytes before its last element, limit %d", sum, c.eff.MaxChunkBytes)
	}
	return nil
}

func (c *collector) needKey(ev Event, want Type) error {
	if c.cur == nil {
		return broken("%T outside a key", ev)
	}
	if c.skip {
		return broken("%T for a skipped key", ev)
	}
	if c.raw {
		return broken("%T for a raw key", ev)
	}
	if c.cur.Start.Type != want {
		return broken("%T for a %s key", ev, c.cur.Start.Type)
	}
	c.cur.Chunks++
	return nil
}

func (c *collector) event(ev Event) error {
	m := c.m
	m.Events++
	if c.sawEOF {
		return broken("event %T after EOF", ev)
	}
	switch e := ev.(type) {
	case *Aux:
		m.Aux[string(e.Key)] = string(e.Value)
	case *FunctionLibrary:
		m.Funcs = append(m.Funcs, string(e.Code))
	case *ModuleAux:
		x := *e
		x.Raw = bytes.Clone(e.Raw)
		m.ModAux = append(m.ModAux, x)
	case *SlotImport:
		x := SlotImport{JobName: bytes.Clone(e.JobName), Ranges: slices.Clone(e.Ranges)}
		m.SlotImports = append(m.SlotImports, x)
	case *SelectDB:
		if c.cur != nil {
			return broken("SelectDB inside a key")
		}
	case *ResizeDB:
		m.Resize[c.r.db] = *e
	case *SlotInfo:
		m.Slots = append(m.Slots, *e)
	case *KeyStart:
		if c.cur != nil {
			return broken("KeyStart inside key %q", c.cur.Start.Key)
		}
		kv := &keyVal{Start: *e}
		kv.Start.Key = bytes.Clone(e.Key)
		id := keyID{e.DB, string(e.Key)}
		m.Keys[id] = kv
		m.Order = append(m.Order, id)
		c.cur = kv
		c.strOff = 0
		mode := c.o.mode
		if mode == modeMixed {
			mode = []readMode{modeParsed, modeRaw, modeSkip}[c.nkeys%3]
		}
		c.nkeys++
		c.raw = mode == modeRaw || mode == modeAllRaw || e.Type == TypeModule
		c.skip = mode == modeSkip
		kv.IsRaw = c.raw && !c.skip
		switch mode {
		case modeRaw:
			c.r.WantRaw()
		case modeSkip:
			c.r.SkipValue()
		}
		switch e.Type {
		case TypeHash:
			kv.Hash = map[string]string{}
		case TypeSet, TypeList:
			kv.List = []string{}
		case TypeZSet:
			kv.ZSet = map[string]float64{}
		case TypeStream:
			kv.Stream = &streamVal{}
			c.stream = kv.Stream
		}
	case *KeyEnd:
		kv := c.cur
		if kv == nil || !bytes.Equal(e.Key, kv.Start.Key) {
			return broken("KeyEnd %q without its KeyStart", e.Key)
		}
		if c.raw && !c.skip {
			if len(kv.Raw) == 0 || kv.Raw[0] != kv.Start.RDBType {
				return broken("raw value of %q does not start with its type byte", e.Key)
			}
		}
		if !c.raw && !c.skip && kv.Start.Type == TypeString && kv.Chunks == 0 {
			return broken("string %q without a chunk", e.Key)
		}
		c.cur = nil
	case *StringChunk:
		if err := c.needKey(ev, TypeString); err != nil {
			return err
		}
		if e.Offset != c.strOff || e.Offset+int64(len(e.Data)) > e.Total {
			return broken("string chunk at %d+%d of %d, expected offset %d", e.Offset, len(e.Data), e.Total, c.strOff)
		}
		if len(e.Data) > c.eff.MaxChunkBytes {
			return broken("string chunk of %d bytes", len(e.Data))
		}
		if len(e.Data) == 0 && e.Total != 0 {
			return broken("empty string chunk")
		}
		c.strOff += int64(len(e.Data))
		c.cur.Str = append(c.cur.Str, e.Data...)
	case *Elements:
		if c.cur == nil || (c.cur.Start.Type != TypeList && c.cur.Start.Type != TypeSet) {
			return broken("Elements outside a list or set")
		}
		if err := c.needKey(ev, c.cur.Start.Type); err != nil {
			return err
		}
		sizes := make([]int, len(e.Elems))
		for i, x := range e.Elems {
			sizes[i] = len(x)
			c.cur.List = append(c.cur.List, string(x))
		}
		return c.chunkBytesOK(sizes)
	case *HashChunk:
		if err := c.needKey(ev, TypeHash); err != nil {
			return err
		}
		if len(e.Fields) != len(e.Values) || (e.ExpireAtMs != nil && len(e.ExpireAtMs) != len(e.Fields)) {
			return broken("hash chunk of %d fields, %d values, %d expiries", len(e.Fields), len(e.Values), len(e.ExpireAtMs))
		}
		sizes := make([]int, len(e.Fields))
		for i, f := range e.Fields {
			sizes[i] = len(f) + len(e.Values[i])
			c.cur.Hash[string(f)] = string(e.Values[i])
			if e.ExpireAtMs != nil {
				if c.cur.HExp == nil {
					c.cur.HExp = map[string]int64{}
				}
				c.cur.HExp[string(f)] = e.ExpireAtMs[i]
			}
		}
		return c.chunkBytesOK(sizes)
	case *ZSetChunk:
		if err := c.needKey(ev, TypeZSet); err != nil {
			return err
		}
		if len(e.Members) != len(e.Scores) {
			return broken("zset chunk of %d members, %d scores", len(e.Members), len(e.Scores))
		}
		sizes := make([]int, len(e.Members))
		for i, mb := range e.Members {
			if math.IsNaN(e.Scores[i]) {
				return broken("NaN score")
			}
			sizes[i] = len(mb) + 8
			c.cur.ZSet[string(mb)] = e.Scores[i]
		}
		return c.chunkBytesOK(sizes)
	case *StreamEntries:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		if len(e.Entries) == 0 || len(e.Entries) > c.eff.MaxChunkElems {
			return broken("stream chunk of %d entries", len(e.Entries))
		}
		sizes := make([]int, len(e.Entries))
		for i, x := range e.Entries {
			if len(x.Fields) != len(x.Values) {
				return broken("stream entry with %d fields and %d values", len(x.Fields), len(x.Values))
			}
			ev := entryVal{ID: x.ID}
			for j := range x.Fields {
				ev.FV = append(ev.FV, string(x.Fields[j]), string(x.Values[j]))
				sizes[i] += len(x.Fields[j]) + len(x.Values[j])
			}
			c.stream.Entries = append(c.stream.Entries, ev)
		}
		return c.chunkBytesOK(sizes)
	case *StreamMeta:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		c.stream.Meta = *e
	case *StreamGroup:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		c.stream.Groups = append(c.stream.Groups, groupVal{Name: string(e.Name), LastID: e.LastID, EntriesRead: e.EntriesRead})
	case *StreamPending:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		if len(c.stream.Groups) == 0 || len(e.Entries) == 0 || len(e.Entries) > c.eff.MaxChunkElems {
			return broken("bad StreamPending")
		}
		g := &c.stream.Groups[len(c.stream.Groups)-1]
		g.Pending = append(g.Pending, e.Entries...)
	case *StreamConsumer:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		if len(c.stream.Groups) == 0 {
			return broken("consumer without a group")
		}
		g := &c.stream.Groups[len(c.stream.Groups)-1]
		if e.Index != uint64(len(g.Consumers)) {
			return broken("consumer index %d, expected %d", e.Index, len(g.Consumers))
		}
		g.Consumers = append(g.Consumers, consumerVal{Name: string(e.Name), Seen: e.SeenTimeMs, Active: e.ActiveTimeMs})
	case *StreamConsumerPending:
		if err := c.needKey(ev, TypeStream); err != nil {
			return err
		}
		g := &c.stream.Groups[len(c.stream.Groups)-1]
		if len(g.Consumers) == 0 || len(e.IDs) == 0 || len(e.IDs) > c.eff.MaxChunkElems {
			return broken("bad StreamConsumerPending")
		}
		cs := &g.Consumers[len(g.Consumers)-1]
		cs.IDs = append(cs.IDs, e.IDs...)
	case *RawChunk:
		if c.cur == nil || !c.raw || c.skip {
			return broken("RawChunk for a key not raw")
		}
		if len(e.Data) == 0 || len(e.Data) > c.eff.MaxChunkBytes {
			return broken("raw chunk of %d bytes", len(e.Data))
		}
		c.cur.Chunks++
		c.cur.Raw = append(c.cur.Raw, e.Data...)
	case *EOF:
		if c.cur != nil {
			return broken("EOF inside a key")
		}
		m.EOF = *e
		c.sawEOF = true
	default:
		return broken("unknown event %T", ev)
	}
	return nil
}

// equalValues compares what two reads of one key delivered (not the raw
// bytes).
func equalValues(a, b *keyVal) bool {
	return bytes.Equal(a.Str, b.Str) && slices.Equal(a.List, b.List) &&
		maps.Equal(a.Hash, b.Hash) && maps.Equal(a.HExp, b.HExp) &&
		maps.Equal(a.ZSet, b.ZSet) && reflect.DeepEqual(a.Stream, b.Stream)
}

// rawFile rebuilds a file of the given header from the raw values of m
// (read raw), in their order and databases.
func rawFile(h Header, m *fileModel) []byte {
	magic := fmt.Sprintf("REDIS%04d", h.Version)
	if h.Dialect == DialectValkey {
		magic = fmt.Sprintf("VALKEY%03d", h.Version)
	}
	w := newBuilder(magic)
	db := -1
	for _, id := range m.Order {
		if id.DB != db {
			db = id.DB
			w.selectDB(uint64(db))
		}
		raw := m.Keys[id].Raw
		w.byte(raw[0]).str(id.Key).raw(raw[1:])
	}
	return w.eof(true)
}

// checkRawRoundTrip checks that the raw values of raw (m's file read
// raw) make a file that reads (parsed) as m: each raw value is exactly
// one value, the same one.
func checkRawRoundTrip(h Header, parsed, raw *fileModel, opts Options) error {
	if !slices.Equal(parsed.Order, raw.Order) {
		return broken("keys %v parsed, %v raw", parsed.Order, raw.Order)
	}
	for _, id := range raw.Order {
		if !raw.Keys[id].IsRaw {
			return broken("key %v not raw", id)
		}
	}
	again, err := collect(bytes.NewReader(rawFile(h, raw)), collectOpts{Options: opts})
	if err != nil {
		return broken("the raw values do not read back: %v", err)
	}
	if !slices.Equal(again.Order, parsed.Order) {
		return broken("the raw values read back as keys %v, want %v", again.Order, parsed.Order)
	}
	for id, pk := range parsed.Keys {
		k2 := again.Keys[id]
		if pk.IsRaw != k2.IsRaw || (pk.IsRaw && !bytes.Equal(pk.Raw, k2.Raw)) || !equalValues(pk, k2) {
			return broken("key %v: its raw bytes read back as a different value", id)
		}
	}
	return nil
}
