// fromrdb.go: an RDB stream (a replica snapshot, an RDB file) turned into
// archive keys, as a dump writes them.
package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/redback-dev/redback/agent/engine/rdbfile"
	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// RDBOptions tune FromRDB.
type RDBOptions struct {
	// Now dates the snapshot: keys whose expiry is at or before it are left
	// out (as a server loading the file drops them) and the others get
	// their remaining time to live from it. Zero: the RDB's ctime, else
	// the time of the call.
	Now time.Time
	// SkipKeys are left out (the HA lease's key).
	SkipKeys [][]byte
	// Select, when set, keeps only the keys it returns true for
	// (backup.include/exclude).
	Select func(key []byte) bool
	// Databases, when not empty, are the only ones read.
	Databases []int
	// SpillDir holds the temporary files of values that must be read twice
	// or reordered (a string over 1 MiB, whose form depends on all of its
	// bytes; a stream's entries, which the RDB gives before the groups the
	// archive wants first); default os.TempDir(). They are removed at once.
	SpillDir string
	// Progress, when set, is called every few thousand keys.
	Progress func(Progress)
}

// RDBStats describe what FromRDB read.
type RDBStats struct {
	Keys, Expired, FieldTTLKeys int64
	RawKeys                     map[string]int64
	// Dialect and Version of the RDB; Aux its header fields (redis-ver,
	// ctime, repl-id, ...).
	Dialect string
	Version int
	Aux     map[string]string
	// Created is the RDB's ctime (zero when absent); Checksum says its
	// CRC-64 was present and matched.
	Created  time.Time
	Checksum bool
}

// bigString is the size from which a string value or raw payload is
// spooled to a file instead of held.
const bigString = 1 << 20

// RDBInfo is what the start of an RDB says, before its keys.
type RDBInfo struct {
	Dialect string // "redis" or "valkey"
	Version int
	// Aux are the header fields (redis-ver, ctime, repl-id, ...).
	Aux map[string]string
	// Created is the RDB's ctime (zero when absent).
	Created time.Time
}

// FromRDB reads the RDB src and writes its keys, database by database in
// the file's order, to the KeyWriter that open returns when the header has
// been read (before the first key; open is not called when the header is
// already bad). Nothing is held whole: values stream
// through, except a string or raw payload over 1 MiB and a stream's
// entries, which go through a temporary file. A corrupt or truncated RDB
// fails with the reader's error, after which w must be aborted.
func FromRDB(ctx context.Context, src io.Reader, open func(RDBInfo) (KeyWriter, error), o RDBOptions) (st RDBStats, err error) {
	err = guard(func() error {
		var err error
		st, err = fromRDB(ctx, src, open, o)
		return err
	})()
	return st, err
}

func fromRDB(ctx context.Context, src io.Reader, open func(RDBInfo) (KeyWriter, error), o RDBOptions) (st RDBStats, err error) {
	rd, err := rdbfile.NewReader(src, rdbfile.Options{})
	if err != nil {
		return st, err
	}
	defer rd.Close()
	st.Dialect, st.Version = rd.Header().Dialect.String(), rd.Header().Version
	st.Aux = map[string]string{}
	st.RawKeys = map[string]int64{}
	c := &rdbConv{ctx: ctx, rd: rd, open: open, o: o, st: &st, skip: map[string]bool{}}
	for _, k := range o.SkipKeys {
		c.skip[string(k)] = true
	}
	err = rd.Walk(c.event)
	if c.spool != nil {
		c.spool.close()
	}
	return st, err
}

type rdbConv struct {
	ctx  context.Context
	rd   *rdbfile.Reader
	open func(RDBInfo) (KeyWriter, error)
	w    KeyWriter // nil until the header is read
	o    RDBOptions
	st   *RDBStats
	skip map[string]bool
	now  int64 // Unix ms

	key      rdbfile.KeyStart // the current key (Key copied)
	keyBuf   []byte
	h        codec.KeyHeader
	skipping bool
	begun    bool
	fieldTTL bool // a field of the current hash has an expiry

	str   []byte // a string or raw payload so far (up to bigString)
	spool *spool // ... or its spool
	tc    codec.TextChecker

	// A stream: entries spooled, then meta and groups gathered.
	streamMeta *codec.StreamMeta
	group      *codec.StreamGroup
	pelIndex   map[string]int // group PEL: ID -> index in group.Pending
	consumer   []byte
}

func (c *rdbConv) event(ev rdbfile.Event) error {
	switch ev.(type) {
	case *rdbfile.Aux, *rdbfile.ModuleAux, *rdbfile.FunctionLibrary, *rdbfile.SlotImport:
	default:
		if c.w == nil {
			w, err := c.open(RDBInfo{Dialect: c.st.Dialect, Version: c.st.Version, Aux: c.st.Aux, Created: c.st.Created})
			if err != nil {
				return err
			}
			c.w = w
		}
	}
	switch e := ev.(type) {
	case *rdbfile.Aux:
		c.st.Aux[string(e.Key)] = string(e.Value)
		if string(e.Key) == "ctime" {
			if s, err := strconv.ParseInt(string(e.Value), 10, 64); err == nil && s > 0 {
				c.st.Created = time.Unix(s, 0).UTC()
			}
		}
	case *rdbfile.KeyStart:
		return c.keyStart(e)
	case *rdbfile.StringChunk:
		return c.bytes(e.Data)
	case *rdbfile.RawChunk:
		return c.bytes(e.Data)
	case *rdbfile.Elements:
		for _, el := range e.Elems {
			if err := c.w.WriteItem(el); err != nil {
				return err
			}
		}
	case *rdbfile.HashChunk:
		if !c.begun {
			// The first chunk tells whether the encoding carries field
			// expiries.
			c.h.FieldTTLs = e.ExpireAtMs != nil
			c.begun = true
			if err := c.w.BeginKey(c.h); err != nil {
				return err
			}
		}
		for i := range e.Fields {
			var err error
			if e.ExpireAtMs != nil && e.ExpireAtMs[i] != rdbfile.NoExpire {
				if e.ExpireAtMs[i] <= c.now {
					continue // expired: a loading server drops it
				}
				if !c.fieldTTL {
					c.fieldTTL = true
					c.st.FieldTTLKeys++
				}
				err = c.w.WriteFieldExpire(e.Fields[i], e.Values[i], e.ExpireAtMs[i])
			} else {
				err = c.w.WriteField(e.Fields[i], e.Values[i])
			}
			if err != nil {
				return err
			}
		}
	case *rdbfile.ZSetChunk:
		var score []byte
		for i := range e.Members {
			score = appendScore(score[:0], e.Scores[i])
			if err := c.w.WriteMember(e.Members[i], score); err != nil {
				return err
			}
		}
	case *rdbfile.StreamEntries:
		return c.streamEntries(e)
	case *rdbfile.StreamMeta:
		c.streamMeta = &codec.StreamMeta{LastID: []byte(e.LastID.String()), EntriesAdded: -1}
		if e.HasV2Meta {
			c.streamMeta.EntriesAdded = int64(e.EntriesAdded)
			c.streamMeta.MaxDeletedID = []byte(e.MaxDeletedID.String())
		}
	case *rdbfile.StreamGroup:
		c.streamMeta.Groups = append(c.streamMeta.Groups, codec.StreamGroup{
			Name: bytes.Clone(e.Name), LastDeliveredID: []byte(e.LastID.String()), EntriesRead: e.EntriesRead,
			Consumers: []codec.StreamConsumer{}, Pending: []codec.StreamPending{},
		})
		c.group = &c.streamMeta.Groups[len(c.streamMeta.Groups)-1]
		c.pelIndex = map[string]int{}
	case *rdbfile.StreamPending:
		for _, p := range e.Entries {
			id := p.ID.String()
			c.pelIndex[id] = len(c.group.Pending)
			c.group.Pending = append(c.group.Pending, codec.StreamPending{ID: []byte(id), DeliveryTime: p.DeliveryTimeMs, DeliveryCount: int64(p.DeliveryCount)})
		}
	case *rdbfile.StreamConsumer:
		c.consumer = bytes.Clone(e.Name)
		c.group.Consumers = append(c.group.Consumers, codec.StreamConsumer{Name: c.consumer, SeenTime: e.SeenTimeMs, ActiveTime: e.ActiveTimeMs})
	case *rdbfile.StreamConsumerPending:
		for _, id := range e.IDs {
			if i, ok := c.pelIndex[id.String()]; ok {
				c.group.Pending[i].Consumer = c.consumer
			}
		}
	case *rdbfile.KeyEnd:
		return c.keyEnd()
	case *rdbfile.EOF:
		c.st.Checksum = e.Verified
	}
	return nil
}

func (c *rdbConv) keyStart(e *rdbfile.KeyStart) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if c.now == 0 {
		now := c.o.Now
		if now.IsZero() {
			now = c.st.Created
		}
		if now.IsZero() {
			now = time.Now()
		}
		c.now = now.UnixMilli()
	}
	c.keyBuf = append(c.keyBuf[:0], e.Key...)
	c.key = *e
	c.key.Key = c.keyBuf
	c.skipping, c.begun, c.fieldTTL = false, false, false
	c.str, c.streamMeta, c.group, c.tc = c.str[:0], nil, nil, codec.TextChecker{}
	excluded := c.skip[string(e.Key)] || (len(c.o.Databases) > 0 && !slices.Contains(c.o.Databases, e.DB)) ||
		(c.o.Select != nil && !c.o.Select(e.Key))
	if excluded || (e.HasExpire && e.ExpireAtMs <= c.now) {
		if !excluded {
			c.st.Expired++
		}
		c.skipping = true
		c.rd.SkipValue()
		return nil
	}
	c.h = codec.KeyHeader{DB: e.DB, Key: c.keyBuf}
	if e.HasExpire {
		c.h.ExpireAt = e.ExpireAtMs
		c.h.PTTL = e.ExpireAtMs - c.now
	}
	switch e.Type {
	case rdbfile.TypeString:
		c.h.Type = codec.TypeString
		return nil // begun with its first bytes (the form depends on them)
	case rdbfile.TypeModule:
		c.h.Type = codec.TypeRaw
		c.h.Raw = &codec.RawInfo{RedisType: e.Module, Module: e.Module, RDBVersion: c.st.Version}
		return nil
	case rdbfile.TypeList:
		c.h.Type = codec.TypeList
	case rdbfile.TypeSet:
		c.h.Type = codec.TypeSet
	case rdbfile.TypeZSet:
		c.h.Type = codec.TypeZSet
	case rdbfile.TypeHash:
		c.h.Type = codec.TypeHash
		c.h.HashAsPairs = true
		return nil // begun with its first chunk
	case rdbfile.TypeStream:
		c.h.Type = codec.TypeStream
		return nil // begun once its groups are known
	default:
		return fmt.Errorf("rdb: key %s: type %s has no archive form", quoteKey(e.Key), e.Type)
	}
	c.begun = true
	return c.w.BeginKey(c.h)
}

// bytes takes a piece of a string value or raw payload.
func (c *rdbConv) bytes(p []byte) error {
	c.tc.Write(p)
	if c.spool != nil && c.spool.active {
		return c.spool.write(p)
	}
	if len(c.str)+len(p) <= bigString {
		c.str = append(c.str, p...)
		return nil
	}
	if err := c.startSpool(); err != nil {
		return err
	}
	if err := c.spool.write(c.str); err != nil {
		return err
	}
	c.str = c.str[:0]
	return c.spool.write(p)
}

func (c *rdbConv) startSpool() error {
	if c.spool == nil {
		f, err := os.CreateTemp(c.o.SpillDir, ".redback-spool-*")
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		os.Remove(f.Name()) // gone from the folder at once; freed on close
		c.spool = &spool{f: f}
	}
	return c.spool.reset()
}

func (c *rdbConv) streamEntries(e *rdbfile.StreamEntries) error {
	if c.spool == nil || !c.spool.active {
		if err := c.startSpool(); err != nil {
			return err
		}
	}
	for _, en := range e.Entries {
		if err := c.spool.writeEntry(en); err != nil {
			return err
		}
	}
	return nil
}

func (c *rdbConv) keyEnd() error {
	if c.skipping {
		return nil
	}
	switch c.h.Type {
	case codec.TypeString, codec.TypeRaw:
		if err := c.endBytes(); err != nil {
			return err
		}
	case codec.TypeStream:
		if err := c.endStream(); err != nil {
			return err
		}
	default:
		if !c.begun { // a hash whose chunks never came (an empty value)
			c.begun = true
			if err := c.w.BeginKey(c.h); err != nil {
				return err
			}
		}
		if err := c.w.EndKey(); err != nil {
			return err
		}
	}
	if c.h.Type == codec.TypeRaw {
		c.st.RawKeys[c.h.Raw.RedisType]++
	}
	c.st.Keys++
	if c.o.Progress != nil && c.st.Keys%4096 == 0 {
		c.o.Progress(Progress{KeysDone: c.st.Keys, KeysTotal: -1})
	}
	return nil
}

// endBytes writes a string or raw key, whose bytes are all in.
func (c *rdbConv) endBytes() error {
	var footer []byte
	if c.h.Type == codec.TypeRaw {
		// A raw value is a DUMP payload: the serialized value, the RDB
		// version and the CRC-64 of both.
		crc := uint64(0)
		if c.spool != nil && c.spool.active {
			crc = c.spool.crc
		} else {
			crc = rdbvalue.CRC64(0, c.str)
		}
		footer = rdbvalue.AppendFooterCRC(nil, crc, c.st.Version)
		c.tc.Write(footer)
	}
	if c.spool == nil || !c.spool.active {
		if err := c.w.BeginKey(c.h); err != nil {
			return err
		}
		if err := c.w.WriteString(append(c.str, footer...)); err != nil {
			return err
		}
		return c.w.EndKey()
	}
	h := c.h
	h.StringBase64 = !c.tc.IsText()
	if err := c.w.BeginKey(h); err != nil {
		return err
	}
	if err := c.spool.replay(func(p []byte) error { return c.w.WriteStringPart(p) }); err != nil {
		return err
	}
	if len(footer) > 0 {
		if err := c.w.WriteStringPart(footer); err != nil {
			return err
		}
	}
	c.spool.active = false
	return c.w.EndKey()
}

// endStream writes a stream: its header with the groups, then the entries
// from the spool.
func (c *rdbConv) endStream() error {
	if c.streamMeta == nil {
		return fmt.Errorf("rdb: stream %s without its metadata", quoteKey(c.h.Key))
	}
	c.h.Stream = c.streamMeta
	if err := c.w.BeginKey(c.h); err != nil {
		return err
	}
	if c.spool != nil && c.spool.active {
		if err := c.spool.replayEntries(func(e codec.StreamEntry) error { return c.w.WriteStreamEntry(e) }); err != nil {
			return err
		}
		c.spool.active = false
	}
	return c.w.EndKey()
}

// appendScore formats a score as the dump does (the shortest text that
// reads back to the same double; inf and -inf).
func appendScore(dst []byte, f float64) []byte {
	switch {
	case f > 1.7976931348623157e308:
		return append(dst, "inf"...)
	case f < -1.7976931348623157e308:
		return append(dst, "-inf"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// spool is a temporary file that values pass through: written once, read
// back once, reused for the next value.
type spool struct {
	f      *os.File
	bw     *bufio.Writer
	active bool
	crc    uint64 // CRC-64 of the bytes written (raw payloads)
	buf    []byte
}

func (s *spool) reset() error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(s.f, 256<<10)
	} else {
		s.bw.Reset(s.f)
	}
	s.active, s.crc = true, 0
	return nil
}

func (s *spool) write(p []byte) error {
	s.crc = rdbvalue.CRC64(s.crc, p)
	if _, err := s.bw.Write(p); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// writeEntry appends a stream entry as length-prefixed parts: the ID, the
// number of fields and values, then each.
func (s *spool) writeEntry(e rdbfile.StreamEntry) error {
	b := s.buf[:0]
	b = binary.AppendUvarint(b, e.ID.Ms)
	b = binary.AppendUvarint(b, e.ID.Seq)
	b = binary.AppendUvarint(b, uint64(2*len(e.Fields)))
	for i := range e.Fields {
		b = binary.AppendUvarint(b, uint64(len(e.Fields[i])))
		b = append(b, e.Fields[i]...)
		b = binary.AppendUvarint(b, uint64(len(e.Values[i])))
		b = append(b, e.Values[i]...)
	}
	s.buf = b
	_, err := s.bw.Write(b)
	return err
}

// rewind flushes and positions the spool at its start for reading.
func (s *spool) rewind() (*bufio.Reader, error) {
	if err := s.bw.Flush(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return bufio.NewReaderSize(s.f, 256<<10), nil
}

func (s *spool) replay(fn func([]byte) error) error {
	r, err := s.rewind()
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
}

func (s *spool) replayEntries(fn func(codec.StreamEntry) error) error {
	r, err := s.rewind()
	if err != nil {
		return err
	}
	var e codec.StreamEntry
	var data []byte
	for {
		ms, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		seq, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		data = data[:0]
		lens := make([]int, 0, n)
		for i := uint64(0); i < n; i++ {
			l, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			start := len(data)
			data = append(data, make([]byte, l)...)
			if _, err := io.ReadFull(r, data[start:]); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			lens = append(lens, int(l))
		}
		e.ID = strconv.AppendUint(append(strconv.AppendUint(e.ID[:0], ms, 10), '-'), seq, 10)
		e.Fields = e.Fields[:0]
		off := 0
		for _, l := range lens {
			e.Fields = append(e.Fields, data[off:off+l])
			off += l
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

func (s *spool) close() { s.f.Close() }
