package rdbfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strconv"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// Dialect is the flavour of an RDB file, told by its magic.
type Dialect uint8

// Dialects.
const (
	DialectRedis  Dialect = iota + 1 // magic "REDIS" + 4 digits (Redis, Valkey 7.2-8.x)
	DialectValkey                    // magic "VALKEY" + 3 digits (Valkey 9+)
)

func (d Dialect) String() string {
	switch d {
	case DialectRedis:
		return "redis"
	case DialectValkey:
		return "valkey"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// The RDB versions this reader accepts, per dialect. Redis 7.0 writes 10,
// Redis 7.2 and Valkey 7.2-8.x 11, Redis 7.4-8.x 12, Valkey 9 80.
const (
	MinRedisVersion  = 1
	MaxRedisVersion  = 12
	MinValkeyVersion = 80
	MaxValkeyVersion = 80
)

// Header is what the file's first 9 bytes say.
type Header struct {
	Dialect Dialect
	Version int
}

// Options bound the Reader's memory. Zero fields take the defaults.
type Options struct {
	// MaxChunkElems is the most elements (list items, set members, hash
	// fields, sorted set members, stream entries, PEL entries) one chunk
	// event holds. Default 1024.
	MaxChunkElems int
	// MaxChunkBytes is about the most bytes of data one chunk holds: a
	// chunk is delivered when it reaches it, so it exceeds it by at most
	// one element. StringChunk and RawChunk pieces are at most this long.
	// Default 1 MiB.
	MaxChunkBytes int
	// MaxBlobBytes caps what must be held whole apart from elements: key
	// names, aux fields, function code, module aux data, and the
	// listpacks, ziplists, intsets and zipmaps that encode small values
	// (compressed or not). Larger is ErrTooLarge. Default 64 MiB.
	MaxBlobBytes int
	// MaxElemBytes caps one element of a collection (which is delivered
	// whole). String values are not capped: they are streamed. Default
	// 512 MiB (the server's own limit).
	MaxElemBytes int
	// Raw delivers every value as RawChunk events instead of parsed
	// chunks (see Reader.WantRaw for one key).
	Raw bool
}

func (o *Options) setDefaults() {
	if o.MaxChunkElems <= 0 {
		o.MaxChunkElems = 1024
	}
	if o.MaxChunkBytes <= 0 {
		o.MaxChunkBytes = 1 << 20
	}
	if o.MaxBlobBytes <= 0 {
		o.MaxBlobBytes = 64 << 20
	}
	if o.MaxElemBytes <= 0 {
		o.MaxElemBytes = 512 << 20
	}
}

// Reader reads an RDB file as a sequence of events (see Event). It reads
// its input sequentially, once, and holds at most one chunk of a value
// (plus one blob of a compact encoding) at a time, whatever the size of
// the file or of its keys.
//
// Use either Next (pull) or Walk (push), not both. A Reader is not safe
// for concurrent use.
type Reader struct {
	// input (source.go)
	rd        io.Reader
	buf       []byte
	pos, end  int
	base      int64
	crc       uint64
	crcPos    int
	rerr      error
	zeroReads int
	tee       *tee

	opts Options
	hdr  Header

	// iteration
	state int
	yield func(Event) bool
	next  func() (Event, bool)
	stop  func()
	err   error

	// the key being read
	db      int
	inKey   bool
	rawReq  bool
	skipReq bool
	pend    KeyStart // expiry, freq, idle seen before the key

	// buffers
	ka, ea, na arena // key/header strings; chunk elements; names
	blobBuf    []byte
	lzfIn      []byte
	win        []byte
	piece      []byte
	rawTee     tee
	flushRawFn func() error
	chunkBytes int
	tmp        []lpVal
	lp         rdbvalue.Listpack // the blob being iterated
	zl         rdbvalue.Ziplist
	expBuf     []int64
	master     [][]byte

	seen encCounts // what parsing met (for tests)

	// events, reused
	evAux        Aux
	evSelect     SelectDB
	evResize     ResizeDB
	evSlot       SlotInfo
	evSlotImport SlotImport
	evFunc       FunctionLibrary
	evModAux     ModuleAux
	evKey        KeyStart
	evKeyEnd     KeyEnd
	evString     StringChunk
	evElems      Elements
	evHash       HashChunk
	evZSet       ZSetChunk
	evEntries    StreamEntries
	evMeta       StreamMeta
	evGroup      StreamGroup
	evPending    StreamPending
	evConsumer   StreamConsumer
	evConsPEL    StreamConsumerPending
	evRaw        RawChunk
	evEOF        EOF
	flat         [][]byte // backing of the stream entries' fields and values
}

// encCounts counts string and node encodings met while parsing values.
type encCounts struct {
	intStrings, lzfStrings, lzfBlobs, plainNodes, packedNodes int
}

const (
	stateIdle = iota
	statePull
	stateWalk
	stateDone
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("rdbfile: reader closed")

// NewReader reads the header of the RDB file rd and returns a Reader for
// the rest. An unknown magic or version is an error (wrapping ErrCorrupt
// or ErrUnsupported).
func NewReader(rd io.Reader, opts Options) (*Reader, error) {
	opts.setDefaults()
	r := &Reader{rd: rd, buf: make([]byte, 4096), opts: opts}
	r.flushRawFn = r.flushRaw
	p, err := r.take(9)
	if err != nil {
		return nil, err
	}
	var digits []byte
	switch {
	case bytes.HasPrefix(p, []byte("REDIS")):
		r.hdr.Dialect, digits = DialectRedis, p[5:9]
	case bytes.HasPrefix(p, []byte("VALKEY")):
		r.hdr.Dialect, digits = DialectValkey, p[6:9]
	default:
		return nil, &Error{Offset: 0, Msg: fmt.Sprintf("not an RDB file (magic %q)", p), Err: ErrCorrupt}
	}
	v := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, &Error{Offset: 0, Msg: fmt.Sprintf("bad RDB version %q", digits), Err: ErrCorrupt}
		}
		v = v*10 + int(c-'0')
	}
	r.hdr.Version = v
	lo, hi := MinRedisVersion, MaxRedisVersion
	if r.hdr.Dialect == DialectValkey {
		lo, hi = MinValkeyVersion, MaxValkeyVersion
	}
	if v > hi {
		return nil, &Error{Offset: 0, Err: ErrUnsupported,
			Msg: fmt.Sprintf("RDB version %d (%s dialect) is newer than this reader knows (%d-%d)", v, r.hdr.Dialect, lo, hi)}
	}
	if v < lo {
		return nil, &Error{Offset: 0, Err: ErrUnsupported,
			Msg: fmt.Sprintf("RDB version %d is not a version of the %s dialect (%d-%d)", v, r.hdr.Dialect, lo, hi)}
	}
	return r, nil
}

// Offset returns how many bytes of the input the Reader has consumed
// (for progress reports; it reads ahead of that into its buffer).
func (r *Reader) Offset() int64 { return r.offset() }

// Header returns the dialect and RDB version of the file.
func (r *Reader) Header() Header { return r.hdr }

// Next returns the next event. After the EOF event it returns nil,
// io.EOF; after an error, nil and that error again. The event is valid
// until the next call.
func (r *Reader) Next() (Event, error) {
	switch r.state {
	case stateDone:
		return nil, r.final()
	case stateWalk:
		return nil, errors.New("rdbfile: Next called during Walk")
	case stateIdle:
		r.next, r.stop = iter.Pull(iter.Seq[Event](func(yield func(Event) bool) {
			r.yield = yield
			if err := r.run(); err != errStopped {
				r.err = err
			}
		}))
		r.state = statePull
	}
	ev, ok := r.next()
	if ok {
		return ev, nil
	}
	r.state = stateDone
	r.stop()
	return nil, r.final()
}

func (r *Reader) final() error {
	if r.err != nil {
		return r.err
	}
	return io.EOF
}

// Walk calls fn for every event (each valid only during the call) and
// returns nil after the EOF event, the first error of fn, or the error
// reading the file. It is Next without the coroutine switch; use one or
// the other.
func (r *Reader) Walk(fn func(Event) error) error {
	if r.state != stateIdle {
		return errors.New("rdbfile: Walk called after Next or Walk")
	}
	r.state = stateWalk
	var ferr error
	r.yield = func(ev Event) bool {
		ferr = fn(ev)
		return ferr == nil
	}
	err := r.run()
	r.state = stateDone
	if ferr != nil {
		err = ferr
	}
	r.err = err
	return err
}

// Close stops a Reader that will not be read to its end (it releases the
// coroutine behind Next). It does not close the underlying reader.
func (r *Reader) Close() error {
	if r.state == statePull {
		r.stop()
	}
	if r.state != stateDone && r.err == nil {
		r.err = ErrClosed
	}
	r.state = stateDone
	return nil
}

// WantRaw, called after Next (or Walk's callback) returned a KeyStart and
// before the next event, makes the Reader deliver that key's value as
// RawChunk events (its serialized bytes) instead of parsed chunks. Module
// values always come raw. A raw value is checked only for its framing
// (lengths, strings, module opcodes), not for the content of its compact
// encodings: the server that loads it checks that.
func (r *Reader) WantRaw() { r.rawReq = true }

// SkipValue, called after a KeyStart, makes the Reader read past that
// key's value without delivering it (it is still checked structurally):
// KeyEnd comes next.
func (r *Reader) SkipValue() { r.skipReq = true }

// Rest returns the input that follows the RDB data (after the EOF
// event): the bytes the Reader buffered beyond the checksum, then the rest
// of the underlying reader. Useful when an RDB is followed by more data
// (a replication stream).
func (r *Reader) Rest() io.Reader {
	b := append([]byte(nil), r.buf[r.pos:r.end]...)
	return io.MultiReader(bytes.NewReader(b), r.rd)
}

func (r *Reader) emit(ev Event) error {
	if !r.yield(ev) {
		return errStopped
	}
	return nil
}

func (r *Reader) curKey() []byte {
	if r.inKey {
		return r.evKey.Key
	}
	return nil
}

// run reads the file after its header, emitting its events.
func (r *Reader) run() error {
	for {
		op, err := r.readByte()
		if err != nil {
			return err
		}
		switch op {
		case opEOF:
			return r.readEOF()
		case opExpireTimeMs:
			ms, err := r.millis()
			if err != nil {
				return err
			}
			r.pend.HasExpire, r.pend.ExpireAtMs = true, ms
		case opExpireTime:
			s, err := r.u32le()
			if err != nil {
				return err
			}
			r.pend.HasExpire, r.pend.ExpireAtMs = true, int64(int32(s))*1000
		case opFreq:
			f, err := r.readByte()
			if err != nil {
				return err
			}
			r.pend.HasFreq, r.pend.Freq = true, f
		case opIdle:
			idle, err := r.length("LRU idle time")
			if err != nil {
				return err
			}
			r.pend.HasIdle, r.pend.Idle = true, idle
		case opSelectDB:
			db, err := r.length("database number")
			if err != nil {
				return err
			}
			if db > math.MaxInt32 {
				return r.errf(ErrCorrupt, "database number %d", db)
			}
			r.db = int(db)
			r.evSelect = SelectDB{DB: r.db}
			if err := r.emit(&r.evSelect); err != nil {
				return err
			}
		case opResizeDB:
			a, err := r.length("db size")
			if err != nil {
				return err
			}
			b, err := r.length("expires size")
			if err != nil {
				return err
			}
			r.evResize = ResizeDB{DBSize: a, ExpiresSize: b}
			if err := r.emit(&r.evResize); err != nil {
				return err
			}
		case opSlotInfo:
			var v [3]uint64
			for i := range v {
				if v[i], err = r.length("slot info"); err != nil {
					return err
				}
			}
			r.evSlot = SlotInfo{Slot: v[0], Size: v[1], ExpiresSize: v[2]}
			if err := r.emit(&r.evSlot); err != nil {
				return err
			}
		case opAux:
			r.ka.reset()
			k, err := r.readStr(&r.ka, r.opts.MaxBlobBytes, "aux field name")
			if err != nil {
				return err
			}
			v, err := r.readStr(&r.ka, r.opts.MaxBlobBytes, "aux field value")
			if err != nil {
				return err
			}
			r.evAux = Aux{Key: k, Value: v}
			if err := r.emit(&r.evAux); err != nil {
				return err
			}
		case opFunction2:
			r.ka.reset()
			code, err := r.readStr(&r.ka, r.opts.MaxBlobBytes, "function library")
			if err != nil {
				return err
			}
			r.evFunc = FunctionLibrary{Code: code}
			if err := r.emit(&r.evFunc); err != nil {
				return err
			}
		case opFunctionPreGA:
			return &Error{Offset: r.offset() - 1, Err: ErrUnsupported,
				Msg: "opcode 0xF6 (FUNCTION of Redis 7.0 release candidates) is not supported"}
		case opModuleAux:
			if err := r.readModuleAux(); err != nil {
				return err
			}
		case opSlotImport:
			if r.hdr.Dialect != DialectValkey {
				return r.unknownOpcode(op)
			}
			if err := r.readSlotImport(); err != nil {
				return err
			}
		default:
			if err := r.readKey(op); err != nil {
				return err
			}
		}
	}
}

func (r *Reader) unknownOpcode(op byte) error {
	off := r.offset() - 1
	if op >= 0xF0 {
		return &Error{Offset: off, Err: ErrUnsupported, Msg: fmt.Sprintf("unknown opcode 0x%02X", op)}
	}
	return &Error{Offset: off, Err: ErrUnsupported,
		Msg: fmt.Sprintf("unknown value type %d (0x%02X) for RDB version %d (%s dialect)", op, op, r.hdr.Version, r.hdr.Dialect)}
}

func (r *Reader) readEOF() error {
	r.crc = rdbvalue.CRC64(r.crc, r.buf[r.crcPos:r.pos])
	r.crcPos = r.pos
	sum := r.crc
	r.evEOF = EOF{}
	if r.hdr.Dialect == DialectValkey || r.hdr.Version >= 5 {
		at := r.offset()
		got, err := r.u64le()
		if err != nil {
			return err
		}
		if got != 0 && got != sum {
			return &Error{Offset: at, Err: ErrChecksum,
				Msg: fmt.Sprintf("checksum mismatch: the file says %016x, its data has %016x", got, sum)}
		}
		r.evEOF = EOF{Checksum: got, Verified: got != 0}
	}
	return r.emit(&r.evEOF)
}

func (r *Reader) readModuleAux() error {
	r.rawTee = tee{buf: r.rawTee.buf[:0], limit: r.opts.MaxBlobBytes, what: "module aux data"}
	r.tee = &r.rawTee
	id, err := r.length("module id")
	if err != nil {
		return err
	}
	whenOp, err := r.length("module aux when opcode")
	if err != nil {
		return err
	}
	if whenOp != modOpUInt {
		return r.errf(ErrCorrupt, "module aux when opcode %d (want %d)", whenOp, modOpUInt)
	}
	when, err := r.length("module aux when")
	if err != nil {
		return err
	}
	if err := r.moduleBody(); err != nil {
		return err
	}
	r.tee = nil
	r.evModAux = ModuleAux{ModuleID: id, Module: ModuleName(id), When: when, Raw: r.rawTee.buf}
	err = r.emit(&r.evModAux)
	r.shrinkTee()
	return err
}

func (r *Reader) readSlotImport() error {
	r.ka.reset()
	name, err := r.readStr(&r.ka, r.opts.MaxBlobBytes, "slot import job name")
	if err != nil {
		return err
	}
	n, err := r.length("slot range count")
	if err != nil {
		return err
	}
	if n > 16384 {
		return r.errf(ErrCorrupt, "%d slot ranges", n)
	}
	ev := &r.evSlotImport
	ev.JobName, ev.Ranges = name, ev.Ranges[:0]
	for range n {
		a, err := r.length("slot range start")
		if err != nil {
			return err
		}
		b, err := r.length("slot range end")
		if err != nil {
			return err
		}
		ev.Ranges = append(ev.Ranges, SlotRange{Start: a, End: b})
	}
	return r.emit(ev)
}

// shrinkTee drops a large raw buffer so that one big value does not pin
// its memory for the rest of the file.
func (r *Reader) shrinkTee() {
	if cap(r.rawTee.buf) > 2*r.opts.MaxChunkBytes+bufSize {
		r.rawTee.buf = nil
	}
}

// readKey reads a key of RDB object type t and its value.
func (r *Reader) readKey(t byte) error {
	typ, enc, ok := typeInfo(t, r.hdr.Dialect)
	if !ok {
		return r.unknownOpcode(t)
	}
	r.ka.reset()
	key, err := r.readStr(&r.ka, r.opts.MaxBlobBytes, "key name")
	if err != nil {
		return err
	}
	ks := &r.evKey
	*ks = r.pend
	r.pend = KeyStart{}
	ks.DB, ks.Key, ks.Type, ks.RDBType, ks.Encoding = r.db, key, typ, t, enc
	r.inKey = true
	r.rawReq, r.skipReq = false, false
	r.rawTee = tee{buf: append(r.rawTee.buf[:0], t), limit: math.MaxInt, flush: nil, what: "value"}
	if typ == TypeModule {
		if t == tModulePreGA {
			return r.errf(ErrUnsupported, "module value of the pre-release format (type 6) cannot be read")
		}
		r.tee = &r.rawTee
		if ks.ModuleID, err = r.length("module id"); err != nil {
			return err
		}
		ks.Module = ModuleName(ks.ModuleID)
	}
	if err := r.emit(ks); err != nil {
		return err
	}
	raw := r.opts.Raw || r.rawReq || typ == TypeModule
	switch {
	case r.skipReq:
		r.tee = nil
		err = r.skipValue(t)
	case raw:
		r.rawTee.limit, r.rawTee.flush = r.opts.MaxChunkBytes, r.flushRawFn
		r.tee = &r.rawTee
		if len(r.rawTee.buf) >= r.rawTee.limit {
			if err = r.flushRaw(); err != nil {
				return err
			}
		}
		if err = r.skipValue(t); err == nil {
			r.tee = nil
			err = r.flushRaw()
		}
		r.shrinkTee()
	default:
		err = r.parseValue(t)
	}
	r.tee = nil
	if err != nil {
		return err
	}
	r.inKey = false
	r.evKeyEnd = KeyEnd{Key: ks.Key}
	return r.emit(&r.evKeyEnd)
}

func (r *Reader) flushRaw() error {
	t := &r.rawTee
	var err error
	for off := 0; off < len(t.buf) && err == nil; {
		k := min(len(t.buf)-off, r.opts.MaxChunkBytes)
		r.evRaw = RawChunk{Data: t.buf[off : off+k]}
		err = r.emit(&r.evRaw)
		off += k
	}
	t.buf = t.buf[:0]
	return err
}
