package codec

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"
)

// ErrStringForm is returned by WriteStringPart and EndKey when the parts of
// a string contradict KeyHeader.StringBase64. The Writer is then failed.
var ErrStringForm = errors.New("codec: string parts contradict KeyHeader.StringBase64")

const (
	writeBufSize = 256 << 10 // Writer's buffer
	flushAt      = 192 << 10 // flush once this much is buffered
	segment      = 48 << 10  // big values are encoded in segments of this size (a multiple of 3)
)

// Writer streams one archive's JSON document (FORMAT.md) to an io.Writer.
//
// Use: NewWriter, then for each key BeginKey, the value's elements
// (WriteString or WriteStringPart for strings and raw values, WriteField or
// WriteFieldExpire, WriteItem, WriteMember, WriteStreamEntry, as the type
// asks), EndKey; finally Close. Keys must be grouped by database in
// ascending order.
//
// The Writer buffers internally and writes to the underlying io.Writer in
// big blocks; it never closes it. It is not safe for concurrent use. After
// any error the Writer is failed: every later call returns that error and
// the output must be discarded (it is not a valid archive).
type Writer struct {
	dst     io.Writer
	buf     []byte
	flushed int64
	err     error
	h       Header
	// sha hashes the document as it is flushed (FORMAT.md "Integrity");
	// buf[:hashed] is already in it.
	sha    hash.Hash
	hashed int

	started  bool // header members written
	dataOpen bool // "data" object opened (and maybe closed)
	inDBs    bool // inside "databases"
	db       int  // database of the open keys object
	keysOpen bool // a keys object ("data" or "databases"/"N") is open
	nInDB    int64
	perDB    []dbCount
	perType  [TypeRaw + 1]int64
	keys     int64
	closed   bool

	inKey  bool
	kh     KeyHeader
	nElems int64
	// string value state: 0 nothing written, 1 WriteString done, 2 parts.
	strMode  int
	tc       TextChecker
	carry    [3]byte // base64 input bytes not yet encoded (parts mode)
	ncarry   int
	b64Parts bool
}

type dbCount struct {
	db int
	n  int64
}

// NewWriter returns a Writer of the document to w. It writes nothing until
// the first call that needs output. Format and FormatVersion are set by the
// Writer (h.FormatVersion is ignored). A zero h.CreatedAt means now; an
// empty h.Timestamp is derived from CreatedAt (UTC).
func NewWriter(w io.Writer, h Header) *Writer {
	if h.CreatedAt.IsZero() {
		h.CreatedAt = time.Now()
	}
	h.CreatedAt = h.CreatedAt.UTC()
	if h.Timestamp == "" {
		h.Timestamp = h.CreatedAt.Format("20060102_150405")
	}
	h.FormatVersion = FormatVersion
	return &Writer{dst: w, buf: make([]byte, 0, writeBufSize), h: h, sha: sha256.New()}
}

// Keys returns the number of keys ended so far.
func (w *Writer) Keys() int64 { return w.keys }

// BytesWritten returns the number of JSON bytes produced so far (buffered
// ones included).
func (w *Writer) BytesWritten() int64 { return w.flushed + int64(len(w.buf)) }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) misuse(format string, args ...any) error {
	return w.fail(fmt.Errorf("codec: writer: "+format, args...))
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	w.sha.Write(w.buf[w.hashed:])
	w.hashed = 0
	n, err := w.dst.Write(w.buf)
	w.flushed += int64(n)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		return w.fail(fmt.Errorf("codec: write archive: %w", err))
	}
	return nil
}

// maybeFlush flushes when the buffer is nearly full.
func (w *Writer) maybeFlush() error {
	if len(w.buf) >= flushAt {
		return w.flush()
	}
	return nil
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

func (w *Writer) start() {
	if w.started {
		return
	}
	w.started = true
	b := w.buf
	b = append(b, `{"format":"redback","format_version":`...)
	b = strconv.AppendInt(b, FormatVersion, 10)
	b = append(b, `,"timestamp":`...)
	b = EncodeBytes(b, []byte(w.h.Timestamp))
	b = append(b, `,"created_at":"`...)
	b = w.h.CreatedAt.AppendFormat(b, timeLayout)
	b = append(b, `","source":{"redis_version":`...)
	b = EncodeBytes(b, []byte(w.h.Source.RedisVersion))
	b = append(b, `,"role":`...)
	b = EncodeBytes(b, []byte(w.h.Source.Role))
	b = append(b, `,"mode":`...)
	b = EncodeBytes(b, []byte(w.h.Source.Mode))
	b = append(b, `,"databases":[`...)
	for i, db := range w.h.Source.Databases {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(db), 10)
	}
	b = append(b, ']')
	if s := w.h.Source.Server; s != "" {
		b = append(b, `,"server":`...)
		b = EncodeBytes(b, []byte(s))
	}
	if s := w.h.Source.ServerVersion; s != "" {
		b = append(b, `,"server_version":`...)
		b = EncodeBytes(b, []byte(s))
	}
	if v := w.h.Source.RDBVersion; v > 0 {
		b = append(b, `,"rdb_version":`...)
		b = strconv.AppendInt(b, int64(v), 10)
	}
	if sn := w.h.Source.Snapshot; sn != nil {
		b = append(b, `,"snapshot":{"method":`...)
		b = EncodeBytes(b, []byte(sn.Method))
		if sn.ReplID != "" {
			b = append(b, `,"replid":`...)
			b = EncodeBytes(b, []byte(sn.ReplID))
			b = append(b, `,"offset":`...)
			b = strconv.AppendInt(b, sn.Offset, 10)
		}
		if !sn.RDBCreatedAt.IsZero() {
			b = append(b, `,"rdb_created_at":`...)
			b = EncodeBytes(b, []byte(sn.RDBCreatedAt.UTC().Format(time.RFC3339)))
		}
		b = append(b, '}')
	}
	if cs := w.h.Source.Cluster; cs != nil {
		b = appendCluster(b, cs)
	}
	b = append(b, '}')
	if f := w.h.Filter; f != nil {
		b = append(b, `,"filter":{"include":`...)
		b = appendByteArray(b, f.Include)
		b = append(b, `,"exclude":`...)
		b = appendByteArray(b, f.Exclude)
		b = append(b, '}')
	}
	w.buf = b
}

// appendCluster appends source.cluster.
func appendCluster(b []byte, cs *ClusterSource) []byte {
	b = append(b, `,"cluster":{"shards":[`...)
	for i, sh := range cs.Shards {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"slots":[`...)
		for j, r := range sh.Slots {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(r[0]), 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(r[1]), 10)
			b = append(b, ']')
		}
		b = append(b, `],"primary":`...)
		b = EncodeBytes(b, []byte(sh.Primary))
		b = append(b, `,"read_from":`...)
		b = EncodeBytes(b, []byte(sh.ReadFrom))
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendByteArray appends a JSON array of byte strings.
func appendByteArray(b []byte, a [][]byte) []byte {
	b = append(b, '[')
	for i, s := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = EncodeBytes(b, s)
	}
	return append(b, ']')
}

// openDB positions the writer inside the keys object of database db.
func (w *Writer) openDB(db int) error {
	if w.keysOpen && db == w.db {
		return nil
	}
	if db < 0 {
		return w.misuse("negative database %d", db)
	}
	if w.keysOpen && db < w.db {
		return w.misuse("database %d after database %d: keys must come in ascending database order", db, w.db)
	}
	w.start()
	if w.keysOpen {
		w.buf = append(w.buf, "\n}"...)
		w.perDB = append(w.perDB, dbCount{w.db, w.nInDB})
		w.keysOpen = false
	}
	if !w.dataOpen {
		w.dataOpen = true
		if db == 0 {
			w.buf = append(w.buf, `,"data":{`...)
			w.db, w.keysOpen, w.nInDB = 0, true, 0
			return nil
		}
		w.buf = append(w.buf, `,"data":{}`...)
	}
	if !w.inDBs {
		w.inDBs = true
		w.buf = append(w.buf, `,"databases":{"`...)
	} else {
		w.buf = append(w.buf, `,"`...)
	}
	w.buf = strconv.AppendInt(w.buf, int64(db), 10)
	w.buf = append(w.buf, `":{`...)
	w.db, w.keysOpen, w.nInDB = db, true, 0
	return nil
}

var typeNames = [...]string{
	TypeString: "string",
	TypeHash:   "hash",
	TypeList:   "list",
	TypeSet:    "set",
	TypeZSet:   "zset",
	TypeStream: "stream",
	TypeRaw:    "raw",
}

// String returns the type's name in archives ("string", "hash", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// BeginKey opens a key. Keys must come grouped by database in ascending
// database order (else an error); database 0 goes to "data", others to
// "databases". h.Stream is required for TypeStream (its groups, consumers
// and pending entries are written here), h.Raw for TypeRaw. The key's
// value is then given by the element calls for its type and closed by
// EndKey.
func (w *Writer) BeginKey(h KeyHeader) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return w.misuse("BeginKey after Close")
	}
	if w.inKey {
		return w.misuse("BeginKey while a key is open")
	}
	if h.Type < TypeString || h.Type > TypeRaw {
		return w.misuse("BeginKey: invalid type %d", h.Type)
	}
	if h.Type == TypeStream {
		if h.Stream == nil {
			return w.misuse("BeginKey: stream without StreamMeta")
		}
		if err := checkStreamMeta(h.Stream); err != nil {
			return w.fail(err)
		}
	}
	if h.Type == TypeRaw {
		if h.Raw == nil {
			return w.misuse("BeginKey: raw value without RawInfo")
		}
		if err := checkRawInfo(h.Raw); err != nil {
			return w.fail(err)
		}
	}
	if err := w.openDB(h.DB); err != nil {
		return err
	}
	b := w.buf
	if w.nInDB > 0 {
		b = append(b, ",\n"...)
	} else {
		b = append(b, '\n')
	}
	b = EncodeBytes(b, h.Key)
	b = append(b, `:{"type":"`...)
	b = append(b, typeNames[h.Type]...)
	if h.Type == TypeRaw {
		b = append(b, `","redis_type":`...)
		b = EncodeBytes(b, []byte(h.Raw.RedisType))
		if h.Raw.Module != "" {
			b = append(b, `,"module":`...)
			b = EncodeBytes(b, []byte(h.Raw.Module))
		}
		b = append(b, `,"rdb_version":`...)
		b = strconv.AppendInt(b, int64(h.Raw.RDBVersion), 10)
		b = append(b, ',')
	} else {
		b = append(b, `",`...)
	}
	if h.PTTL > 0 {
		b = append(b, `"ttl":`...)
		b = strconv.AppendInt(b, (h.PTTL+999)/1000, 10)
		b = append(b, `,"pttl":`...)
		b = strconv.AppendInt(b, h.PTTL, 10)
		if h.ExpireAt > 0 {
			b = append(b, `,"expire_at":`...)
			b = strconv.AppendInt(b, h.ExpireAt, 10)
		}
		b = append(b, `,"value":`...)
	} else {
		b = append(b, `"ttl":null,"value":`...)
	}
	if h.Type == TypeHash && h.FieldTTLs {
		h.HashAsPairs = true
	}
	switch h.Type {
	case TypeHash:
		if h.HashAsPairs {
			b = append(b, '[')
		} else {
			b = append(b, '{')
		}
	case TypeList, TypeSet, TypeZSet:
		b = append(b, '[')
	case TypeStream:
		s := h.Stream
		b = append(b, `{"last_id":`...)
		b = EncodeBytes(b, s.LastID)
		if s.EntriesAdded >= 0 {
			b = append(b, `,"entries_added":`...)
			b = strconv.AppendInt(b, s.EntriesAdded, 10)
		}
		if s.MaxDeletedID != nil {
			b = append(b, `,"max_deleted_id":`...)
			b = EncodeBytes(b, s.MaxDeletedID)
		}
		b = append(b, `,"groups":[`...)
		w.buf = b
		for i := range s.Groups {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.writeGroup(&s.Groups[i]); err != nil {
				return err
			}
		}
		b = append(w.buf, `],"entries":[`...)
	}
	w.buf = b
	w.inKey, w.kh, w.nElems, w.strMode = true, h, 0, 0
	w.kh.Key = nil // do not keep the caller's buffers
	w.kh.Stream = nil
	w.kh.Raw = nil
	return w.maybeFlush()
}

// checkStreamMeta checks what the Reader would refuse in a stream's groups.
func checkStreamMeta(s *StreamMeta) error {
	for i := range s.Groups {
		g := &s.Groups[i]
		for _, c := range g.Consumers {
			if c.SeenTime < 0 {
				return fmt.Errorf("codec: writer: BeginKey: negative SeenTime of consumer %q", c.Name)
			}
		}
		for _, p := range g.Pending {
			if p.DeliveryTime < 0 || p.DeliveryCount < 0 {
				return fmt.Errorf("codec: writer: BeginKey: negative delivery time or count of pending entry %q", p.ID)
			}
		}
	}
	return nil
}

// checkRawInfo checks a raw value's description against FORMAT.md.
func checkRawInfo(ri *RawInfo) error {
	switch {
	case ri.RedisType == "" || len(ri.RedisType) > maxRawName:
		return fmt.Errorf("codec: writer: BeginKey: raw value's RedisType %q is empty or too long", ri.RedisType)
	case len(ri.Module) > maxRawName:
		return fmt.Errorf("codec: writer: BeginKey: raw value's Module is too long")
	case ri.RDBVersion < 0 || ri.RDBVersion > maxRDBVersion:
		return fmt.Errorf("codec: writer: BeginKey: raw value's RDBVersion %d out of range", ri.RDBVersion)
	}
	return nil
}

// writeGroup writes one stream group's object, flushing as it goes: a
// group's pending entries list may be long.
func (w *Writer) writeGroup(g *StreamGroup) error {
	b := append(w.buf, `{"name":`...)
	b = EncodeBytes(b, g.Name)
	b = append(b, `,"last_delivered_id":`...)
	b = EncodeBytes(b, g.LastDeliveredID)
	b = append(b, `,"entries_read":`...)
	if g.EntriesRead >= 0 {
		b = strconv.AppendInt(b, g.EntriesRead, 10)
	} else {
		b = append(b, "null"...)
	}
	if g.Consumers != nil {
		b = append(b, `,"consumers":[`...)
		for j := range g.Consumers {
			c := &g.Consumers[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = EncodeBytes(b, c.Name)
			b = append(b, `,"seen_time":`...)
			b = strconv.AppendInt(b, c.SeenTime, 10)
			b = append(b, `,"active_time":`...)
			if c.ActiveTime >= 0 {
				b = strconv.AppendInt(b, c.ActiveTime, 10)
			} else {
				b = append(b, "null"...)
			}
			b = append(b, '}')
			if len(b) >= flushAt {
				w.buf = b
				if err := w.flush(); err != nil {
					return err
				}
				b = w.buf
			}
		}
		b = append(b, ']')
	}
	if g.Pending != nil {
		b = append(b, `,"pending":[`...)
		for j := range g.Pending {
			p := &g.Pending[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = EncodeBytes(b, p.ID)
			b = append(b, ',')
			b = EncodeBytes(b, p.Consumer)
			b = append(b, ',')
			b = strconv.AppendInt(b, p.DeliveryTime, 10)
			b = append(b, ',')
			b = strconv.AppendInt(b, p.DeliveryCount, 10)
			b = append(b, ']')
			if len(b) >= flushAt {
				w.buf = b
				if err := w.flush(); err != nil {
					return err
				}
				b = w.buf
			}
		}
		b = append(b, ']')
	}
	w.buf = append(b, '}')
	return nil
}

func (w *Writer) check(t Type, what string) error {
	if w.err != nil {
		return w.err
	}
	if !w.inKey {
		return w.misuse("%s without BeginKey", what)
	}
	if w.kh.Type != t && !(t == TypeString && w.kh.Type == TypeRaw) {
		return w.misuse("%s on a %s key", what, w.kh.Type)
	}
	return nil
}

// sep writes the separator before an element.
func (w *Writer) sep() {
	if w.nElems > 0 {
		w.buf = append(w.buf, ',')
	}
	w.nElems++
}

// appendValue writes the byte string v, flushing as it goes so that a big
// value never grows the buffer much beyond its size.
func (w *Writer) appendValue(v []byte) error {
	if len(v) < segment {
		w.buf = EncodeBytes(w.buf, v)
		return w.maybeFlush()
	}
	if IsText(v) {
		w.buf = append(w.buf, '"')
		for len(v) > 0 {
			n := min(len(v), segment)
			w.buf = appendEscaped(w.buf, v[:n])
			v = v[n:]
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, '"')
		return nil
	}
	w.buf = append(w.buf, b64Prefix...)
	for len(v) > 0 {
		n := min(len(v), segment)
		w.buf = base64.StdEncoding.AppendEncode(w.buf, v[:n])
		v = v[n:]
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, '"')
	return nil
}

// WriteString writes the whole value of a string key, or the payload of a
// raw key, in one call; the Writer chooses its form (text or base64) from
// its bytes.
func (w *Writer) WriteString(v []byte) error {
	if err := w.check(TypeString, "WriteString"); err != nil {
		return err
	}
	if w.strMode != 0 {
		return w.misuse("WriteString after another string write")
	}
	w.strMode = 1
	return w.appendValue(v)
}

// WriteStringPart appends p to the value of the current string key (or the
// payload of the current raw key, alike): a big
// value is written in any number of parts (possibly empty, split anywhere,
// even inside a UTF-8 sequence), and the output is byte for byte what
// WriteString of the concatenated parts would give, provided the caller
// set KeyHeader.StringBase64 = !IsText(concatenated parts) in BeginKey.
//
// The Writer checks that promise as it goes: with StringBase64 false, the
// first part that makes the value not text (a first byte 00, invalid
// UTF-8) fails with an error wrapping ErrStringForm (so does EndKey when
// the value ends inside a UTF-8 sequence); with StringBase64 true, EndKey
// fails with ErrStringForm when the value turned out to be text. The
// output is then already partly written, so the Writer is failed.
func (w *Writer) WriteStringPart(p []byte) error {
	if err := w.check(TypeString, "WriteStringPart"); err != nil {
		return err
	}
	switch w.strMode {
	case 1:
		return w.misuse("WriteStringPart after WriteString")
	case 0:
		w.strMode = 2
		w.tc.Reset()
		w.ncarry = 0
		w.b64Parts = w.kh.StringBase64
		if w.b64Parts {
			w.buf = append(w.buf, b64Prefix...)
		} else {
			w.buf = append(w.buf, '"')
		}
	}
	w.tc.check(p)
	if !w.b64Parts {
		if w.tc.bad {
			return w.fail(fmt.Errorf("%w: the value is not text (StringBase64 was false)", ErrStringForm))
		}
		for len(p) > 0 {
			n := min(len(p), segment)
			w.buf = appendEscaped(w.buf, p[:n])
			p = p[n:]
			if err := w.maybeFlush(); err != nil {
				return err
			}
		}
		return nil
	}
	// base64: encode whole groups of 3 bytes, carry the rest.
	if w.ncarry > 0 {
		for w.ncarry < 3 && len(p) > 0 {
			w.carry[w.ncarry] = p[0]
			w.ncarry++
			p = p[1:]
		}
		if w.ncarry < 3 {
			return nil
		}
		w.buf = base64.StdEncoding.AppendEncode(w.buf, w.carry[:3])
		w.ncarry = 0
	}
	for len(p) >= 3 {
		n := min(len(p), segment) / 3 * 3
		w.buf = base64.StdEncoding.AppendEncode(w.buf, p[:n])
		p = p[n:]
		if err := w.maybeFlush(); err != nil {
			return err
		}
	}
	w.ncarry = copy(w.carry[:], p)
	return nil
}

// WriteField writes one field of a hash (with no expiry).
func (w *Writer) WriteField(field, value []byte) error {
	if err := w.check(TypeHash, "WriteField"); err != nil {
		return err
	}
	if w.nElems > 0 {
		w.buf = append(w.buf, ',')
	}
	w.nElems++
	if w.kh.HashAsPairs {
		return w.appendPair(field, value, 0)
	}
	w.buf = EncodeBytes(w.buf, field)
	w.buf = append(w.buf, ':')
	return w.appendValue(value)
}

// WriteFieldExpire writes one field of a hash opened with
// KeyHeader.FieldTTLs, with its absolute expiry expireAt in Unix
// milliseconds (HPEXPIRETIME): [field, value, expireAt] when expireAt > 0,
// [field, value] when it is 0 (no expiry). A negative expireAt, or a hash
// without FieldTTLs, is an error.
func (w *Writer) WriteFieldExpire(field, value []byte, expireAt int64) error {
	if err := w.check(TypeHash, "WriteFieldExpire"); err != nil {
		return err
	}
	if !w.kh.FieldTTLs {
		return w.misuse("WriteFieldExpire on a hash without KeyHeader.FieldTTLs")
	}
	if expireAt < 0 {
		return w.misuse("WriteFieldExpire: negative expiry %d", expireAt)
	}
	if w.nElems > 0 {
		w.buf = append(w.buf, ',')
	}
	w.nElems++
	return w.appendPair(field, value, expireAt)
}

// appendPair writes [field, value] or, when expireAt > 0, [field, value,
// expireAt].
func (w *Writer) appendPair(field, value []byte, expireAt int64) error {
	w.buf = append(w.buf, '[')
	w.buf = EncodeBytes(w.buf, field)
	w.buf = append(w.buf, ',')
	if err := w.appendValue(value); err != nil {
		return err
	}
	if expireAt > 0 {
		w.buf = append(w.buf, ',')
		w.buf = strconv.AppendInt(w.buf, expireAt, 10)
	}
	w.buf = append(w.buf, ']')
	return nil
}

// WriteItem writes one element of a list or one member of a set.
func (w *Writer) WriteItem(v []byte) error {
	if w.err != nil {
		return w.err
	}
	if !w.inKey || (w.kh.Type != TypeList && w.kh.Type != TypeSet) {
		return w.misuse("WriteItem outside a list or set key")
	}
	w.sep()
	return w.appendValue(v)
}

// WriteMember writes one member of a sorted set with its score as Redis
// prints it: a JSON number ("1.5", "3.0000000000000004", "1e+300") is
// written as a number, "inf", "+inf" and "-inf" as strings; any other text
// is an error.
func (w *Writer) WriteMember(member, score []byte) error {
	if err := w.check(TypeZSet, "WriteMember"); err != nil {
		return err
	}
	quote := false
	switch string(score) {
	case "inf", "+inf", "-inf":
		quote = true
	default:
		if !isJSONNumber(score) {
			return w.misuse("WriteMember: score %q is not a number", score)
		}
	}
	w.sep()
	w.buf = append(w.buf, '[')
	if err := w.appendValue(member); err != nil {
		return err
	}
	w.buf = append(w.buf, ',')
	if quote {
		w.buf = append(w.buf, '"')
		w.buf = append(w.buf, score...)
		w.buf = append(w.buf, '"')
	} else {
		w.buf = append(w.buf, score...)
	}
	w.buf = append(w.buf, ']')
	return nil
}

// WriteStreamEntry writes one stream entry; e.Fields must have an even
// length.
func (w *Writer) WriteStreamEntry(e StreamEntry) error {
	if err := w.check(TypeStream, "WriteStreamEntry"); err != nil {
		return err
	}
	if len(e.Fields)%2 != 0 {
		return w.misuse("WriteStreamEntry: odd number of fields (%d)", len(e.Fields))
	}
	w.sep()
	w.buf = append(w.buf, '[')
	w.buf = EncodeBytes(w.buf, e.ID)
	w.buf = append(w.buf, ",["...)
	for i, f := range e.Fields {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		if err := w.appendValue(f); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, "]]"...)
	return nil
}

// EndKey closes the open key.
func (w *Writer) EndKey() error {
	if w.err != nil {
		return w.err
	}
	if !w.inKey {
		return w.misuse("EndKey without BeginKey")
	}
	switch w.kh.Type {
	case TypeString, TypeRaw:
		switch w.strMode {
		case 0:
			w.buf = append(w.buf, `""`...)
		case 2:
			if w.b64Parts {
				if w.tc.IsText() {
					return w.fail(fmt.Errorf("%w: the value is text (StringBase64 was true)", ErrStringForm))
				}
				w.buf = base64.StdEncoding.AppendEncode(w.buf, w.carry[:w.ncarry])
			} else if !w.tc.IsText() {
				return w.fail(fmt.Errorf("%w: the value is not text (StringBase64 was false)", ErrStringForm))
			}
			w.buf = append(w.buf, '"')
		}
	case TypeHash:
		if w.kh.HashAsPairs {
			w.buf = append(w.buf, ']')
		} else {
			w.buf = append(w.buf, '}')
		}
	case TypeList, TypeSet, TypeZSet:
		w.buf = append(w.buf, ']')
	case TypeStream:
		w.buf = append(w.buf, "]}"...)
	}
	w.buf = append(w.buf, '}')
	w.inKey = false
	w.keys++
	w.nInDB++
	w.perType[w.kh.Type]++
	return w.maybeFlush()
}

// Close ends the document: it writes keys_count, keys_per_db,
// keys_per_type, completed_at and, last, sha256 (the SHA-256 of everything before it:
// FORMAT.md "Integrity"), and flushes everything to the underlying
// io.Writer, which it does not close. It fails if a key is still open.
// The Trailer returned is what was written (Checksum the digest in hex;
// Verified is for Readers and stays false).
func (w *Writer) Close() (Trailer, error) {
	if w.err != nil {
		return Trailer{}, w.err
	}
	if w.closed {
		return Trailer{}, w.misuse("Close called twice")
	}
	if w.inKey {
		return Trailer{}, w.misuse("Close while a key is open")
	}
	w.start()
	if !w.dataOpen {
		w.dataOpen = true
		w.buf = append(w.buf, `,"data":{}`...)
	}
	if w.keysOpen {
		w.buf = append(w.buf, "\n}"...)
		w.perDB = append(w.perDB, dbCount{w.db, w.nInDB})
		w.keysOpen = false
	}
	if w.inDBs {
		w.buf = append(w.buf, '}')
	}
	t := Trailer{KeysCount: w.keys, KeysPerDB: make(map[int]int64, len(w.perDB)), CompletedAt: time.Now().UTC()}
	b := append(w.buf, `,"keys_count":`...)
	b = strconv.AppendInt(b, w.keys, 10)
	b = append(b, `,"keys_per_db":{`...)
	first := true
	for _, d := range w.perDB {
		if d.n == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		t.KeysPerDB[d.db] = d.n
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(d.db), 10)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, d.n, 10)
	}
	b = append(b, `},"keys_per_type":{`...)
	t.KeysPerType = map[Type]int64{}
	first = true
	for typ, n := range w.perType {
		if n == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		t.KeysPerType[Type(typ)] = n
		b = append(b, '"')
		b = append(b, typeNames[typ]...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, n, 10)
	}
	b = append(b, `},"completed_at":"`...)
	b = t.CompletedAt.AppendFormat(b, timeLayout)
	b = append(b, `",`...)
	// The digest covers every byte up to here: what was flushed and what
	// is buffered.
	w.sha.Write(b[w.hashed:])
	w.hashed = len(b)
	var sum [sha256.Size]byte
	w.sha.Sum(sum[:0])
	t.Checksum = hex.EncodeToString(sum[:])
	b = append(b, `"sha256":"`...)
	b = append(b, t.Checksum...)
	b = append(b, "\"}\n"...)
	w.buf = b
	w.closed = true
	if err := w.flush(); err != nil {
		return Trailer{}, err
	}
	return t, nil
}
