package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// ReaderOptions bounds the chunks a Reader hands out.
type ReaderOptions struct {
	// MaxChunkItems is the most elements in one chunk (a list or set item,
	// a hash field with its value, a zset member with its score, a stream
	// entry); default 1024.
	MaxChunkItems int
	// MaxChunkBytes bounds a chunk's data: a chunk takes no further element
	// once its data reached MaxChunkBytes (so it exceeds it by at most one
	// element), and a string value comes in parts of at most MaxChunkBytes.
	// Default 1 MiB; values below 64 are raised to 64.
	MaxChunkBytes int
}

// Reader parses an archive's JSON document (FORMAT.md) as a stream and
// hands out its keys in chunks. Memory stays bounded by the chunk limits
// and by the largest single element (a hash value, list item, ..., at
// most 512 MiB), never by the archive's size. It is not safe for
// concurrent use, except that Release may be called from any goroutine.
//
// The Reader checks the document's own checksum (FORMAT.md "Integrity"):
// it hashes every byte as it consumes it and compares at the "sha256"
// member, which must be the last; a mismatch is an error wrapping
// ErrChecksum that Next returns instead of io.EOF, and a version 2
// document without the member is refused. Chunks handed out before are
// therefore tentative until io.EOF. Trailer says whether the document
// carried a checksum (seed and version 1 archives have none).
//
// Every error caused by the document wraps ErrCorrupt and names the byte
// offset, except ErrNewerFormat; errors of the underlying reader are
// returned wrapped (those of NewDecoder's stream keep their ErrCorrupt).
// The first error is sticky.
type Reader struct {
	src      io.Reader
	buf      []byte
	pos, end int
	base     int64
	eof      bool
	rerr     error
	opt      ReaderOptions

	// The document's checksum (FORMAT.md "Integrity"): sha holds every
	// byte consumed before buf[hpos]. mark is the offset of the name of
	// the top-level member being read (-1 when none); markSum, once
	// markDone, the digest of the document before it (taken when a refill
	// had to hash past it, or when the name turned out to be "sha256").
	sha      hash.Hash
	hpos     int
	mark     int64
	markSum  [sha256.Size]byte
	markDone bool

	hdr     Header
	hdrDone bool
	err     error
	st      rstate
	seed    bool

	// top level
	seen      uint32 // topSeen bits
	keysCount int64
	keysPerDB map[int]int64
	trailer   Trailer
	counted   int64
	perDB     map[int]int64
	dbSeen    map[int]bool
	topFirst  bool
	dbsFirst  bool
	keysFirst bool
	inDBs     bool
	db        int

	// key
	key      []byte
	typ      Type
	kseen    uint32 // keySeen bits
	ttl      int64
	pttl     int64
	expireAt int64
	keyFirst bool
	// raw values (format version 2)
	rawType   string
	rawModule string
	rawRDB    int
	raw       *RawInfo

	// value
	vs          vstate
	vFirst      bool
	vObj        bool
	elemPending bool
	smFirst     bool
	sseen       uint32 // stream member bits
	meta        *StreamMeta

	// chunk in progress
	cur    *Chunk
	klen   int
	offs   []int // start, end of each item in cur.data
	ents   []entOff
	nElems int
	pool   sync.Pool
	// hash field expiries of the chunk in progress: fexp is parallel to its
	// pairs once feHas (a pair with an expiry was read), else unused.
	fexp  []int64
	feHas bool

	// stream group metadata (consumers, pending entries) is copied into
	// arena, a block shared by many small byte strings.
	arena   []byte
	scratch []byte

	// strings
	slen, slimit int64
	b64, b64pad  bool
	nq           int
	b64buf       []byte
	name         []byte
}

type entOff struct{ id, nf int } // index of the ID in offs/2, number of fields

type rstate uint8

const (
	stTop  rstate = iota // inside the top-level object
	stDBs                // inside "databases"
	stKeys               // inside a keys object
	stKey                // inside a key object
	stValue
	stEnd
)

type vstate uint8

const (
	vsString vstate = iota + 1
	vsElems
	vsStream
	vsEntries
	vsDone
)

const (
	topFormat = 1 << iota
	topVersion
	topTimestamp
	topCreated
	topSource
	topData
	topDBs
	topKeysCount
	topKeysPerDB
	topCompleted
	topSha256
	topFilter
	topKeysPerType
)

const (
	keyType = 1 << iota
	keyValue
	keyTTL
	keyPTTL
	keyExpireAt
	keyRedisType
	keyModule
	keyRDBVersion
)

// Limits of FORMAT.md, "Streaming and limits" and "Raw values".
const (
	maxRawName    = 256       // bytes of a raw value's redis_type or module
	maxRDBVersion = 1<<16 - 1 // an RDB version is two bytes
	maxMetaString = 64 << 10  // a byte string of stream metadata

	maxStreamGroups    = 1 << 16
	maxStreamConsumers = 100_000   // per stream, all groups together
	maxStreamPending   = 1_000_000 // per stream, all groups together
	maxStreamMetaBytes = 64 << 20  // byte strings of a stream's groups
)

// NewReader returns a Reader with default options. r yields the plain
// JSON (see NewDecoder for the layers); the Reader never closes it.
func NewReader(r io.Reader) *Reader { return NewReaderOptions(r, ReaderOptions{}) }

// NewReaderOptions returns a Reader with the given chunk limits (zero
// fields take the defaults).
func NewReaderOptions(r io.Reader, o ReaderOptions) *Reader {
	return newReaderSize(r, o, readBufSize)
}

// newReaderSize is NewReaderOptions with a given buffer size (at least
// 8 KiB: the longest lookahead is a number of maxNumberLen bytes).
func newReaderSize(r io.Reader, o ReaderOptions, size int) *Reader {
	if o.MaxChunkItems <= 0 {
		o.MaxChunkItems = 1024
	}
	if o.MaxChunkBytes <= 0 {
		o.MaxChunkBytes = 1 << 20
	}
	o.MaxChunkBytes = max(o.MaxChunkBytes, 64)
	return &Reader{
		src:  r,
		buf:  make([]byte, max(size, 8<<10)),
		opt:  o,
		name: make([]byte, 0, 128),
		sha:  sha256.New(),
		mark: -1,
	}
}

// Offset returns the number of JSON bytes consumed so far.
func (r *Reader) Offset() int64 { return r.offset() }

func (r *Reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	return r.err
}

// Header parses the members before the first key and returns them. Members
// that come after the keys (allowed, though redback never writes them
// there) are not in it. It is idempotent; Next calls it when needed.
func (r *Reader) Header() (Header, error) {
	if r.hdrDone {
		return r.hdr, r.err
	}
	r.hdrDone = true
	if err := r.expect('{', "'{' at the start of the archive"); err != nil {
		if r.offset() == 0 && r.eof && r.end == 0 {
			return r.hdr, r.fail(r.corrupt("empty archive"))
		}
		return r.hdr, r.fail(err)
	}
	r.topFirst = true
	r.st = stTop
	for r.st == stTop {
		if err := r.topMember(); err != nil {
			return r.hdr, r.fail(err)
		}
	}
	return r.hdr, nil
}

// Trailer returns the archive's trailer; it is complete once Next has
// returned io.EOF. For seed archives KeysCount and KeysPerDB are the
// counted keys. Checksum and Verified tell whether the document carried
// its own checksum and that it matched (always so at io.EOF for version
// 2; never for seed and version 1 archives, which carry none).
func (r *Reader) Trailer() Trailer { return r.trailer }

// Release hands a chunk back for its buffers to be reused. The caller must
// not use c afterwards. Optional; safe from any goroutine.
func (r *Reader) Release(c *Chunk) {
	if c == nil {
		return
	}
	if cap(c.data) > 4*r.opt.MaxChunkBytes+64<<10 {
		c.data = nil
	}
	r.pool.Put(c)
}

var typeByName = map[string]Type{
	"string": TypeString, "hash": TypeHash, "list": TypeList,
	"set": TypeSet, "zset": TypeZSet, "stream": TypeStream,
	"raw": TypeRaw,
}

// v2 reports whether the archive is of format version 2 or later (known
// once the keys begin: format_version must come before them).
func (r *Reader) v2() bool { return r.hdr.FormatVersion >= 2 }

// topMember handles one member of the top-level object, or its end.
func (r *Reader) topMember() error {
	more, err := r.next(&r.topFirst, '}')
	if err != nil {
		return err
	}
	if !more {
		return r.finish()
	}
	start := r.offset()
	if r.seen&topSha256 != 0 {
		return corruptf(start, "a member after \"sha256\", which must be the last")
	}
	r.mark, r.markDone = start, false
	name, err := r.memberName()
	if err != nil {
		return err
	}
	if string(name) == "sha256" {
		r.sumAtMark()
	}
	r.mark = -1
	bit := uint32(0)
	switch string(name) {
	case "format":
		bit = topFormat
	case "format_version":
		bit = topVersion
	case "timestamp":
		bit = topTimestamp
	case "created_at":
		bit = topCreated
	case "source":
		bit = topSource
	case "data":
		bit = topData
	case "databases":
		bit = topDBs
	case "keys_count":
		bit = topKeysCount
	case "keys_per_db":
		bit = topKeysPerDB
	case "completed_at":
		bit = topCompleted
	case "sha256":
		bit = topSha256
	case "filter":
		bit = topFilter
	case "keys_per_type":
		bit = topKeysPerType
	default:
		return r.skipValue(1)
	}
	if r.seen&bit != 0 {
		return corruptf(start, "duplicate member %q", name)
	}
	r.seen |= bit
	switch bit {
	case topFormat:
		if r.seen&(topData|topDBs) != 0 {
			return corruptf(start, "\"format\" after the keys")
		}
		s, err := r.smallString("format", 64)
		if err != nil {
			return err
		}
		if string(s) != "redback" {
			return corruptf(start, "unknown format %q", s)
		}
	case topVersion:
		if r.seen&(topData|topDBs) != 0 {
			return corruptf(start, "\"format_version\" after the keys")
		}
		v, err := r.expectInt("format_version")
		if err != nil {
			return err
		}
		if v > FormatVersion {
			return newerFormat(v)
		}
		if v < 1 {
			return corruptf(start, "invalid format_version %d", v)
		}
		r.hdr.FormatVersion = int(v)
	case topTimestamp:
		s, err := r.smallString("timestamp", 256)
		if err != nil {
			return err
		}
		r.hdr.Timestamp = string(s)
	case topCreated:
		s, err := r.smallString("created_at", 256)
		if err != nil {
			return err
		}
		r.hdr.CreatedAtRaw = string(s)
		r.hdr.CreatedAt = parseTime(r.hdr.CreatedAtRaw)
	case topCompleted:
		s, err := r.smallString("completed_at", 256)
		if err != nil {
			return err
		}
		r.trailer.CompletedAt = parseTime(string(s))
	case topSource:
		return r.source()
	case topFilter:
		if r.seen&(topData|topDBs) != 0 {
			return corruptf(start, "\"filter\" after the keys")
		}
		return r.filter()
	case topKeysCount:
		v, err := r.expectInt("keys_count")
		if err != nil {
			return err
		}
		if v < 0 {
			return corruptf(start, "negative keys_count")
		}
		r.keysCount = v
	case topKeysPerDB:
		return r.keysPerDBMember()
	case topKeysPerType:
		return r.keysPerTypeMember()
	case topSha256:
		return r.checksum(start)
	case topData, topDBs:
		if r.seen&topFormat != 0 && r.seen&topVersion == 0 {
			return corruptf(start, "\"format\" without \"format_version\"")
		}
		if r.seen&topFormat == 0 && r.seen&topVersion != 0 {
			return corruptf(start, "\"format_version\" without \"format\"")
		}
		r.seed = r.seen&topFormat == 0
		if err := r.expect('{', "an object"); err != nil {
			return err
		}
		if bit == topData {
			r.st, r.db, r.inDBs, r.keysFirst = stKeys, 0, false, true
		} else {
			r.st, r.dbsFirst = stDBs, true
		}
	}
	return nil
}

// sumAtMark makes r.markSum the digest of the document before r.mark.
func (r *Reader) sumAtMark() {
	if r.markDone {
		return
	}
	m := int(r.mark - r.base) // in [hpos, pos]: no refill since the mark
	r.sha.Write(r.buf[r.hpos:m])
	r.hpos = m
	r.sha.Sum(r.markSum[:0])
	r.markDone = true
}

// hashConsumed adds the bytes consumed (before r.pos) to the checksum,
// taking the digest at the mark on the way; more calls it before it drops
// them.
func (r *Reader) hashConsumed() {
	if r.mark >= 0 {
		r.sumAtMark()
	}
	r.sha.Write(r.buf[r.hpos:r.pos])
	r.hpos = r.pos
}

// checksum reads the "sha256" member's value (its name started at start)
// and compares it with the digest of the document before the name.
func (r *Reader) checksum(start int64) error {
	if _, err := r.peekTok(); err != nil {
		return err
	}
	vstart := r.offset()
	s, err := r.smallString("sha256", 2*sha256.Size)
	if err != nil {
		return err
	}
	if len(s) != 2*sha256.Size || r.offset()-vstart != 2*sha256.Size+2 || !isLowerHex(s) {
		return corruptf(start, "invalid sha256 %q: want %d lowercase hex digits", s, 2*sha256.Size)
	}
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], r.markSum[:])
	r.trailer.Checksum = string(s)
	if string(s) != string(want[:]) {
		return fmt.Errorf("%w: %w: at byte %d: the archive records sha256 %s, its content hashes to %s",
			ErrCorrupt, ErrChecksum, start, s, want[:])
	}
	r.trailer.Verified = true
	return nil
}

func isLowerHex(s []byte) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func newerFormat(v int64) error {
	return &versionError{v}
}

type versionError struct{ v int64 }

func (e *versionError) Error() string {
	return "archive format_version " + strconv.FormatInt(e.v, 10) +
		" is newer than this redback reads (" + strconv.Itoa(FormatVersion) + "); upgrade redback"
}
func (e *versionError) Unwrap() error { return ErrNewerFormat }

// parseTime reads RFC 3339, or a time without zone (seed archives, taken
// as local time); the zero time when neither.
func parseTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.Local); err == nil {
		return t
	}
	return time.Time{}
}

func (r *Reader) source() error {
	if err := r.expect('{', "an object for source"); err != nil {
		return err
	}
	first := true
	var seen uint8
	for {
		more, err := r.next(&first, '}')
		if err != nil || !more {
			return err
		}
		start := r.offset()
		name, err := r.memberName()
		if err != nil {
			return err
		}
		var bit uint8
		var dst *string
		switch string(name) {
		case "redis_version":
			bit, dst = 1, &r.hdr.Source.RedisVersion
		case "role":
			bit, dst = 2, &r.hdr.Source.Role
		case "mode":
			bit, dst = 4, &r.hdr.Source.Mode
		case "databases":
			bit = 8
		case "server": // format version 2, read in every archive: source may come before format_version
			bit, dst = 16, &r.hdr.Source.Server
		case "server_version":
			bit, dst = 32, &r.hdr.Source.ServerVersion
		case "rdb_version":
			bit = 64
		case "snapshot":
			bit = 128
		default:
			if err := r.skipValue(2); err != nil {
				return err
			}
			continue
		}
		if seen&bit != 0 {
			return corruptf(start, "duplicate member %q in source", name)
		}
		seen |= bit
		if bit == 128 {
			if err := r.snapshot(); err != nil {
				return err
			}
			continue
		}
		if dst != nil {
			s, err := r.smallString("a source member", 256)
			if err != nil {
				return err
			}
			*dst = string(s)
			continue
		}
		if bit == 64 {
			v, err := r.expectInt("source.rdb_version")
			if err != nil {
				return err
			}
			if v < 0 || v > maxRDBVersion {
				return corruptf(start, "invalid source.rdb_version %d", v)
			}
			r.hdr.Source.RDBVersion = int(v)
			continue
		}
		if err := r.expect('[', "an array for source.databases"); err != nil {
			return err
		}
		dbs := []int{}
		f := true
		for {
			more, err := r.next(&f, ']')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			v, err := r.expectInt("a database number")
			if err != nil {
				return err
			}
			if v < 0 || v > math.MaxInt32 || len(dbs) >= 1<<16 {
				return r.corrupt("invalid source.databases")
			}
			dbs = append(dbs, int(v))
		}
		r.hdr.Source.Databases = dbs
	}
}

// Limits of a filter (FORMAT.md "filter").
const (
	maxFilterPatterns = 1024
	maxFilterPattern  = 64 << 10
)

// filter reads the top-level "filter" member; unknown members of it are
// skipped.
func (r *Reader) filter() error {
	if err := r.expect('{', "an object for filter"); err != nil {
		return err
	}
	f := &Filter{}
	first := true
	var seen uint8
	for {
		more, err := r.next(&first, '}')
		if err != nil {
			return err
		}
		if !more {
			r.hdr.Filter = f
			return nil
		}
		start := r.offset()
		name, err := r.memberName()
		if err != nil {
			return err
		}
		var dst *[][]byte
		var bit uint8
		switch string(name) {
		case "include":
			dst, bit = &f.Include, 1
		case "exclude":
			dst, bit = &f.Exclude, 2
		default:
			if err := r.skipValue(2); err != nil {
				return err
			}
			continue
		}
		if seen&bit != 0 {
			return corruptf(start, "duplicate member %q in filter", name)
		}
		seen |= bit
		if err := r.expect('[', "an array of patterns"); err != nil {
			return err
		}
		af := true
		for {
			more, err := r.next(&af, ']')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			if len(*dst) >= maxFilterPatterns {
				return r.corrupt("more than %d patterns in filter", maxFilterPatterns)
			}
			p, err := r.smallBytes("a filter pattern", maxFilterPattern)
			if err != nil {
				return err
			}
			*dst = append(*dst, append([]byte(nil), p...))
		}
	}
}

// snapshot reads source.snapshot; unknown members are skipped.
func (r *Reader) snapshot() error {
	if err := r.expect('{', "an object for source.snapshot"); err != nil {
		return err
	}
	sn := &Snapshot{}
	first := true
	for {
		more, err := r.next(&first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		start := r.offset()
		nb, err := r.memberName()
		if err != nil {
			return err
		}
		name := string(nb) // the buffer moves on
		switch name {
		case "method", "replid", "rdb_created_at":
			v, err := r.smallString("a snapshot member", 64)
			if err != nil {
				return err
			}
			switch name {
			case "method":
				sn.Method = string(v)
			case "replid":
				sn.ReplID = string(v)
			default:
				t, err := time.Parse(time.RFC3339, string(v))
				if err != nil {
					return corruptf(start, "invalid source.snapshot.rdb_created_at")
				}
				sn.RDBCreatedAt = t
			}
		case "offset":
			v, err := r.expectInt("source.snapshot.offset")
			if err != nil {
				return err
			}
			if v < 0 {
				return corruptf(start, "invalid source.snapshot.offset %d", v)
			}
			sn.Offset = v
		default:
			if err := r.skipValue(3); err != nil {
				return err
			}
		}
	}
	r.hdr.Source.Snapshot = sn
	return nil
}

// dbNumber parses a database number as written in "databases" and
// "keys_per_db": canonical decimal.
func dbNumber(s []byte) (int, bool) {
	if len(s) == 0 || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v <= math.MaxInt32
}

func (r *Reader) keysPerDBMember() (err error) {
	r.keysPerDB, err = countsMember(r, "keys_per_db", "database number", func(name []byte) (int, bool) { return dbNumber(name) })
	return err
}

// keysPerTypeMember reads keys_per_type. Unknown type names are refused (a
// later version that adds a type takes a new format_version, and so is
// refused before).
func (r *Reader) keysPerTypeMember() error {
	m, err := countsMember(r, "keys_per_type", "type", func(name []byte) (Type, bool) {
		t, ok := typeByName[string(name)]
		return t, ok
	})
	if err == nil {
		r.trailer.KeysPerType = m
	}
	return err
}

// countsMember reads the object of key counts named member (keys_per_db,
// keys_per_type): each name, a what that key parses, maps to an integer of
// at least 0; at most 65536 of them, none twice.
func countsMember[K comparable](r *Reader, member, what string, key func([]byte) (K, bool)) (map[K]int64, error) {
	if err := r.expect('{', "an object for "+member); err != nil {
		return nil, err
	}
	m := map[K]int64{}
	first := true
	for {
		more, err := r.next(&first, '}')
		if err != nil || !more {
			return m, err
		}
		start := r.offset()
		name, err := r.memberName()
		if err != nil {
			return nil, err
		}
		k, ok := key(name)
		if !ok {
			return nil, corruptf(start, "invalid %s %q in %s", what, name, member)
		}
		if _, dup := m[k]; dup {
			return nil, corruptf(start, "duplicate %s %q in %s", what, name, member)
		}
		if len(m) >= 1<<16 {
			return nil, corruptf(start, "too many names in %s", member)
		}
		v, err := r.expectInt("a key count")
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, corruptf(start, "negative key count in %s", member)
		}
		m[k] = v
	}
}

// finish is called after the top-level object's closing brace: it checks
// that nothing follows and that the counts match.
func (r *Reader) finish() error {
	for {
		for r.pos < r.end {
			switch r.buf[r.pos] {
			case ' ', '\t', '\n', '\r':
				r.pos++
			default:
				return r.corrupt("trailing data after the archive")
			}
		}
		if r.eof {
			break
		}
		if err := r.more(); err != nil {
			if r.rerr != nil {
				return r.rerr
			}
			break
		}
	}
	if r.seen&topData == 0 {
		return r.corrupt("no \"data\" member: not an archive")
	}
	if r.hdr.FormatVersion >= 2 && r.seen&topSha256 == 0 {
		return r.corrupt("no \"sha256\": an archive of format_version %d ends with its checksum; this one is damaged or incomplete", r.hdr.FormatVersion)
	}
	r.st = stEnd
	if r.seed {
		r.trailer.KeysCount = r.counted
		r.trailer.KeysPerDB = r.countedPerDB()
		return nil
	}
	if r.seen&topKeysCount == 0 {
		return r.corrupt("no keys_count: the archive is incomplete")
	}
	if r.keysCount != r.counted {
		return r.corrupt("keys_count is %d but the archive holds %d keys", r.keysCount, r.counted)
	}
	per := r.countedPerDB()
	if r.seen&topKeysPerDB != 0 {
		for db, n := range r.keysPerDB {
			if per[db] != n {
				return r.corrupt("keys_per_db says %d keys in database %d, the archive holds %d", n, db, per[db])
			}
		}
		for db, n := range per {
			if r.keysPerDB[db] != n {
				return r.corrupt("keys_per_db says %d keys in database %d, the archive holds %d", r.keysPerDB[db], db, n)
			}
		}
	}
	r.trailer.KeysCount = r.keysCount
	r.trailer.KeysPerDB = per
	return nil
}

func (r *Reader) countedPerDB() map[int]int64 {
	m := make(map[int]int64, len(r.perDB))
	for db, n := range r.perDB {
		if n > 0 {
			m[db] = n
		}
	}
	return m
}

// Next returns the next chunk of the archive's keys, or io.EOF once the
// document ended and was checked (keys_count matched, nothing follows).
// The caller owns the chunk: the Reader never touches it again (unless it
// is given back with Release).
func (r *Reader) Next() (*Chunk, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.hdrDone {
		if _, err := r.Header(); err != nil {
			return nil, err
		}
	}
	c, err := r.step()
	if err != nil {
		return nil, r.fail(err)
	}
	return c, nil
}

var errEnd = io.EOF

func (r *Reader) step() (*Chunk, error) {
	for {
		switch r.st {
		case stEnd:
			return nil, errEnd
		case stTop:
			if err := r.topMember(); err != nil {
				return nil, err
			}
		case stDBs:
			more, err := r.next(&r.dbsFirst, '}')
			if err != nil {
				return nil, err
			}
			if !more {
				r.st = stTop
				continue
			}
			start := r.offset()
			name, err := r.memberName()
			if err != nil {
				return nil, err
			}
			db, ok := dbNumber(name)
			if !ok || db == 0 {
				return nil, corruptf(start, "invalid database number %q in databases", name)
			}
			if r.dbSeen == nil {
				r.dbSeen = map[int]bool{}
			}
			if r.dbSeen[db] || len(r.dbSeen) >= 1<<16 {
				return nil, corruptf(start, "duplicate database %d", db)
			}
			r.dbSeen[db] = true
			if err := r.expect('{', "an object of keys"); err != nil {
				return nil, err
			}
			r.st, r.db, r.inDBs, r.keysFirst = stKeys, db, true, true
		case stKeys:
			more, err := r.next(&r.keysFirst, '}')
			if err != nil {
				return nil, err
			}
			if !more {
				if r.inDBs {
					r.st = stDBs
				} else {
					r.st = stTop
				}
				continue
			}
			done, err := r.beginBytes("a key")
			if err != nil {
				return nil, err
			}
			if !done {
				if r.key, done, err = r.bytesBody(r.key[:0], math.MaxInt); err != nil {
					return nil, err
				}
			} else {
				r.key = r.key[:0]
			}
			if err := r.expect(':', "':' after a key"); err != nil {
				return nil, err
			}
			if err := r.expect('{', "a key object"); err != nil {
				return nil, err
			}
			r.st, r.keyFirst, r.kseen, r.typ = stKey, true, 0, 0
			r.ttl, r.pttl, r.expireAt, r.meta = 0, 0, 0, nil
			r.rawType, r.rawModule, r.rawRDB, r.raw = "", "", 0, nil
		case stKey:
			c, err := r.keyMember()
			if c != nil || err != nil {
				return c, err
			}
		case stValue:
			c, err := r.valueStep()
			if err != nil {
				return nil, err
			}
			if r.vs == vsDone {
				r.st = stKey
			}
			if c != nil {
				return c, nil
			}
		}
	}
}

// keyMember handles one member of a key object, or its end (then it
// returns the key's last chunk).
func (r *Reader) keyMember() (*Chunk, error) {
	more, err := r.next(&r.keyFirst, '}')
	if err != nil {
		return nil, err
	}
	if !more {
		return r.endKey()
	}
	start := r.offset()
	name, err := r.memberName()
	if err != nil {
		return nil, err
	}
	var bit uint32
	switch string(name) {
	case "type":
		bit = keyType
	case "value":
		bit = keyValue
	case "ttl":
		bit = keyTTL
	case "pttl":
		bit = keyPTTL
	case "expire_at":
		bit = keyExpireAt
	case "redis_type", "module", "rdb_version":
		if !r.v2() {
			return nil, r.skipValue(4) // unknown members in version 1
		}
		switch name[0] {
		case 'r':
			bit = keyRedisType
			if name[1] == 'd' {
				bit = keyRDBVersion
			}
		default:
			bit = keyModule
		}
	default:
		return nil, r.skipValue(4)
	}
	if r.kseen&bit != 0 {
		return nil, corruptf(start, "duplicate member %q in a key object", name)
	}
	r.kseen |= bit
	switch bit {
	case keyType:
		s, err := r.smallString("type", 16)
		if err != nil {
			return nil, err
		}
		t, ok := typeByName[string(s)]
		if !ok || (t == TypeRaw && !r.v2()) {
			return nil, corruptf(start, "unknown type %q", s)
		}
		r.typ = t
	case keyValue:
		if r.kseen&keyType == 0 {
			return nil, corruptf(start, "\"value\" before \"type\" in a key object")
		}
		if r.typ == TypeRaw {
			if r.kseen&keyRedisType == 0 {
				return nil, corruptf(start, "a raw key without \"redis_type\" before \"value\"")
			}
			if r.kseen&keyRDBVersion == 0 {
				return nil, corruptf(start, "a raw key without \"rdb_version\" before \"value\"")
			}
			r.raw = &RawInfo{RedisType: r.rawType, Module: r.rawModule, RDBVersion: r.rawRDB}
		}
		return nil, r.beginValue()
	case keyRedisType, keyModule:
		b, err := r.smallBytes(string(name), maxRawName)
		if err != nil {
			return nil, err
		}
		if bit == keyModule {
			r.rawModule = string(b)
		} else if len(b) == 0 {
			return nil, corruptf(start, "empty redis_type")
		} else {
			r.rawType = string(b)
		}
	case keyRDBVersion:
		v, err := r.expectInt("rdb_version")
		if err != nil {
			return nil, err
		}
		if v < 0 || v > maxRDBVersion {
			return nil, corruptf(start, "invalid rdb_version %d", v)
		}
		r.rawRDB = int(v)
	case keyTTL:
		v, ok, err := r.intOrNull("ttl")
		if err != nil {
			return nil, err
		}
		if !ok {
			v = -1
		}
		if v < -1 {
			return nil, corruptf(start, "invalid ttl %d", v)
		}
		r.ttl = v
	case keyPTTL:
		v, err := r.expectInt("pttl")
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, corruptf(start, "negative pttl")
		}
		r.pttl = v
	case keyExpireAt:
		v, err := r.expectInt("expire_at")
		if err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, corruptf(start, "negative expire_at")
		}
		r.expireAt = v
	}
	return nil, nil
}

func (r *Reader) endKey() (*Chunk, error) {
	if r.kseen&keyValue == 0 {
		return nil, r.corrupt("a key object without \"value\"")
	}
	c := r.emit(true)
	switch {
	case r.kseen&keyPTTL != 0:
		c.HasTTL, c.PTTL = true, max(r.pttl, 1)
	case r.kseen&keyTTL != 0 && r.ttl >= 0:
		if r.ttl > math.MaxInt64/1000 {
			return nil, r.corrupt("ttl out of range")
		}
		c.HasTTL, c.PTTL = true, max(r.ttl*1000, 1)
	}
	c.ExpireAt = r.expireAt
	if r.typ == TypeStream {
		c.Stream = r.meta
	}
	r.counted++
	if r.perDB == nil {
		r.perDB = map[int]int64{}
	}
	r.perDB[r.db]++
	r.st = stKeys
	return c, nil
}

// newChunk starts the chunk in progress.
func (r *Reader) newChunk(first bool) {
	c, _ := r.pool.Get().(*Chunk)
	if c == nil {
		c = &Chunk{}
	}
	data, items, ents, fields, fexp := c.data, c.Items, c.Entries, c.fields, c.FieldExpire
	*c = Chunk{DB: r.db, Type: r.typ, First: first, Raw: r.raw}
	if data == nil {
		data = make([]byte, 0, 512)
	}
	if cap(fexp) > cap(r.fexp) {
		r.fexp = fexp
	}
	r.fexp, r.feHas = r.fexp[:0], false
	c.data = append(data[:0], r.key...)
	c.Items, c.Entries, c.fields = items[:0], ents[:0], fields[:0]
	r.klen = len(r.key)
	r.cur = c
	r.offs, r.ents, r.nElems = r.offs[:0], r.ents[:0], 0
}

// emit finishes the chunk in progress and hands it out.
func (r *Reader) emit(last bool) *Chunk {
	c := r.cur
	r.cur = nil
	c.Last = last
	c.Key = c.data[:r.klen:r.klen]
	if r.feHas {
		// The chunk takes the expiries; the next chunk gets another buffer.
		c.FieldExpire = r.fexp
		r.fexp, r.feHas = nil, false
	}
	if r.typ == TypeStream {
		for _, e := range r.ents {
			for i := 0; i < e.nf; i++ {
				s, t := r.offs[2*(e.id+1+i)], r.offs[2*(e.id+1+i)+1]
				c.fields = append(c.fields, c.data[s:t:t])
			}
		}
		k := 0
		for _, e := range r.ents {
			s, t := r.offs[2*e.id], r.offs[2*e.id+1]
			c.Entries = append(c.Entries, StreamEntry{ID: c.data[s:t:t], Fields: c.fields[k : k+e.nf : k+e.nf]})
			k += e.nf
		}
		return c
	}
	if cap(c.Items) < len(r.offs)/2 {
		c.Items = make([][]byte, 0, len(r.offs)/2)
	}
	for i := 0; i+1 < len(r.offs); i += 2 {
		s, t := r.offs[i], r.offs[i+1]
		c.Items = append(c.Items, c.data[s:t:t])
	}
	return c
}

func (r *Reader) full() bool {
	return r.nElems >= r.opt.MaxChunkItems || len(r.cur.data)-r.klen >= r.opt.MaxChunkBytes
}

// beginValue starts a key's value (after "value":).
func (r *Reader) beginValue() error {
	r.newChunk(true)
	r.st, r.elemPending, r.vObj = stValue, false, false
	c, err := r.peekTok()
	if err != nil {
		return err
	}
	switch r.typ {
	case TypeString, TypeRaw:
		what := "a string value"
		if r.typ == TypeRaw {
			what = "a raw value"
		}
		done, err := r.beginBytes(what)
		if err != nil {
			return err
		}
		r.vs = vsString
		if done {
			r.offs = append(r.offs, len(r.cur.data), len(r.cur.data))
			r.vs = vsDone
		}
		return nil
	case TypeList, TypeSet:
		if c != '[' {
			return r.corrupt("expected an array for a %s value, found %s", r.typ, describe(c))
		}
	case TypeHash, TypeZSet:
		if c != '[' && c != '{' {
			return r.corrupt("expected an object or array for a %s value, found %s", r.typ, describe(c))
		}
		r.vObj = c == '{'
	case TypeStream:
		if c != '{' {
			return r.corrupt("expected an object for a stream value, found %s", describe(c))
		}
		r.pos++
		r.vs, r.smFirst, r.sseen = vsStream, true, 0
		r.meta = &StreamMeta{EntriesAdded: -1}
		return nil
	}
	r.pos++
	r.vs, r.vFirst = vsElems, true
	return nil
}

// valueStep parses the value on; it returns a chunk when one is full and
// more follows, and sets r.vs to vsDone at the value's end.
func (r *Reader) valueStep() (*Chunk, error) {
	switch r.vs {
	case vsString:
		start := len(r.cur.data)
		data, done, err := r.bytesBody(r.cur.data, start+r.opt.MaxChunkBytes)
		r.cur.data = data
		if err != nil {
			return nil, err
		}
		r.offs = append(r.offs, start, len(data))
		if !done && r.nq == 0 {
			// Avoid an empty last part when the string ends right here.
			if err := r.avail(1); err != nil {
				return nil, err
			}
			if r.pos < r.end && r.buf[r.pos] == '"' {
				r.pos++
				done = true
			}
		}
		if done {
			r.vs = vsDone
			return nil, nil
		}
		c := r.emit(false)
		r.newChunk(false)
		return c, nil
	case vsStream:
		return nil, r.streamMember()
	case vsElems, vsEntries:
		closing := byte(']')
		if r.vObj && r.vs == vsElems {
			closing = '}'
		}
		for {
			if !r.elemPending {
				more, err := r.next(&r.vFirst, closing)
				if err != nil {
					return nil, err
				}
				if !more {
					if r.vs == vsEntries {
						r.vs = vsStream
					} else {
						r.vs = vsDone
					}
					return nil, nil
				}
				r.elemPending = true
			}
			if r.full() {
				c := r.emit(false)
				r.newChunk(false)
				return c, nil
			}
			r.elemPending = false
			if err := r.element(); err != nil {
				return nil, err
			}
			r.nElems++
		}
	}
	return nil, nil
}

// item appends one byte string to the chunk in progress.
func (r *Reader) item(what string) error {
	start := len(r.cur.data)
	done, err := r.beginBytes(what)
	if err != nil {
		return err
	}
	if !done {
		r.cur.data, _, err = r.bytesBody(r.cur.data, math.MaxInt)
		if err != nil {
			return err
		}
	}
	r.offs = append(r.offs, start, len(r.cur.data))
	return nil
}

func (r *Reader) element() error {
	switch r.typ {
	case TypeList:
		return r.item("a list item")
	case TypeSet:
		return r.item("a set member")
	case TypeHash:
		if r.vObj {
			if err := r.item("a hash field"); err != nil {
				return err
			}
			if err := r.expect(':', "':' after a hash field"); err != nil {
				return err
			}
			return r.item("a hash value")
		}
		return r.hashPair()
	case TypeZSet:
		if r.vObj {
			if err := r.item("a zset member"); err != nil {
				return err
			}
			if err := r.expect(':', "':' after a zset member"); err != nil {
				return err
			}
			return r.score()
		}
		return r.pair("a zset member", "", true)
	case TypeStream:
		return r.entry()
	}
	return nil
}

// pair reads [a, b] (b a score when score is set).
func (r *Reader) pair(a, b string, score bool) error {
	if err := r.expect('[', "'[' of a pair"); err != nil {
		return err
	}
	if err := r.item(a); err != nil {
		return err
	}
	if err := r.expect(',', "',' in a pair"); err != nil {
		return err
	}
	var err error
	if score {
		err = r.score()
	} else {
		err = r.item(b)
	}
	if err != nil {
		return err
	}
	return r.expect(']', "']' closing a pair")
}

// hashPair reads [field, value] or (format version 2) [field, value,
// expire_at], keeping r.fexp parallel to the chunk's pairs.
func (r *Reader) hashPair() error {
	if err := r.expect('[', "'[' of a pair"); err != nil {
		return err
	}
	if err := r.item("a hash field"); err != nil {
		return err
	}
	if err := r.expect(',', "',' in a pair"); err != nil {
		return err
	}
	if err := r.item("a hash value"); err != nil {
		return err
	}
	c, err := r.peekTok()
	if err != nil {
		return err
	}
	if c != ',' {
		if r.feHas {
			r.fexp = append(r.fexp, 0)
		}
		return r.expect(']', "']' closing a pair")
	}
	if !r.v2() {
		return r.corrupt("a hash field with an expiry (three elements) in an archive of format_version %d", r.hdr.FormatVersion)
	}
	r.pos++
	start := r.offset()
	v, err := r.expectInt("a hash field's expire_at")
	if err != nil {
		return err
	}
	if v <= 0 {
		return corruptf(start, "a hash field's expire_at must be positive, found %d", v)
	}
	if !r.feHas {
		// First expiry of the chunk: the pairs before it have none.
		r.feHas = true
		for n := len(r.offs)/4 - 1; n > 0; n-- {
			r.fexp = append(r.fexp, 0)
		}
	}
	r.fexp = append(r.fexp, v)
	return r.expect(']', "']' closing a hash field")
}

// score appends a zset score's text: a JSON number, or "inf", "+inf",
// "-inf" (a string; in seed archives also Python's Infinity, -Infinity).
func (r *Reader) score() error {
	c, err := r.peekTok()
	if err != nil {
		return err
	}
	start := len(r.cur.data)
	switch {
	case c == '"':
		s, err := r.smallString("a score", 8)
		if err != nil {
			return err
		}
		switch string(s) {
		case "inf", "+inf", "-inf":
		default:
			return r.corrupt("invalid score %q", s)
		}
		r.cur.data = append(r.cur.data, s...)
	case r.seed && (c == 'I' || c == '-'):
		if err := r.avail(9); err != nil {
			return err
		}
		b := r.buf[r.pos:r.end]
		switch {
		case len(b) >= 8 && string(b[:8]) == "Infinity":
			r.pos += 8
			r.cur.data = append(r.cur.data, "inf"...)
			err = r.delimited()
		case len(b) >= 9 && string(b[:9]) == "-Infinity":
			r.pos += 9
			r.cur.data = append(r.cur.data, "-inf"...)
			err = r.delimited()
		default:
			var s []byte
			s, err = r.numberText()
			r.cur.data = append(r.cur.data, s...)
		}
		if err != nil {
			return err
		}
	default:
		s, err := r.numberText()
		if err != nil {
			return err
		}
		if len(s) > 64 {
			return r.corrupt("score too long")
		}
		r.cur.data = append(r.cur.data, s...)
	}
	r.offs = append(r.offs, start, len(r.cur.data))
	return nil
}

// entry reads a stream entry [id, [field, value, ...]].
func (r *Reader) entry() error {
	if err := r.expect('[', "'[' of a stream entry"); err != nil {
		return err
	}
	id := len(r.offs) / 2
	if err := r.item("a stream entry ID"); err != nil {
		return err
	}
	if err := r.expect(',', "',' in a stream entry"); err != nil {
		return err
	}
	if err := r.expect('[', "'[' of a stream entry's fields"); err != nil {
		return err
	}
	first := true
	nf := 0
	for {
		more, err := r.next(&first, ']')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if err := r.item("a stream field"); err != nil {
			return err
		}
		nf++
	}
	if nf%2 != 0 {
		return r.corrupt("a stream entry with an odd number of fields")
	}
	r.ents = append(r.ents, entOff{id, nf})
	return r.expect(']', "']' closing a stream entry")
}

const (
	smLastID = 1 << iota
	smEntriesAdded
	smMaxDeleted
	smGroups
	smEntries
)

// streamMember handles one member of a stream value, or its end.
func (r *Reader) streamMember() error {
	more, err := r.next(&r.smFirst, '}')
	if err != nil {
		return err
	}
	if !more {
		r.vs = vsDone
		return nil
	}
	start := r.offset()
	name, err := r.memberName()
	if err != nil {
		return err
	}
	var bit uint32
	switch string(name) {
	case "last_id":
		bit = smLastID
	case "entries_added":
		bit = smEntriesAdded
	case "max_deleted_id":
		bit = smMaxDeleted
	case "groups":
		bit = smGroups
	case "entries":
		bit = smEntries
	default:
		return r.skipValue(5)
	}
	if r.sseen&bit != 0 {
		return corruptf(start, "duplicate member %q in a stream", name)
	}
	r.sseen |= bit
	switch bit {
	case smLastID:
		r.meta.LastID, err = r.metaBytes("last_id", false)
	case smMaxDeleted:
		r.meta.MaxDeletedID, err = r.metaBytes("max_deleted_id", true)
	case smEntriesAdded:
		v, ok, err := r.intOrNull("entries_added")
		if err != nil {
			return err
		}
		if ok {
			if v < 0 {
				return corruptf(start, "negative entries_added")
			}
			r.meta.EntriesAdded = v
		}
	case smGroups:
		return r.groups()
	case smEntries:
		if err := r.expect('[', "an array of stream entries"); err != nil {
			return err
		}
		r.vs, r.vFirst, r.elemPending = vsEntries, true, false
	}
	return err
}

// metaBytes reads a small byte string of stream metadata (at most 64 KiB)
// into a new slice; null gives nil when nullable.
func (r *Reader) metaBytes(what string, nullable bool) ([]byte, error) {
	if nullable {
		if null, err := r.isNull(); err != nil || null {
			return nil, err
		}
	}
	done, err := r.beginBytes(what)
	if err != nil {
		return nil, err
	}
	b := []byte{}
	if !done {
		if b, done, err = r.bytesBody(b, 64<<10); err != nil {
			return nil, err
		}
		if !done {
			return nil, r.corrupt("%s too long", what)
		}
	}
	return b, nil
}

// metaLimits is what is left of a stream's budgets (FORMAT.md,
// "Streaming and limits") while its groups are read.
type metaLimits struct {
	consumers, pending int
	bytes              int64
}

// charge takes n bytes of byte strings from the budget.
func (r *Reader) charge(lim *metaLimits, n int) error {
	lim.bytes -= int64(n)
	if lim.bytes < 0 {
		return r.corrupt("stream groups hold more than %d MiB of names and IDs", maxStreamMetaBytes>>20)
	}
	return nil
}

func (r *Reader) groups() error {
	if err := r.expect('[', "an array of groups"); err != nil {
		return err
	}
	lim := metaLimits{consumers: maxStreamConsumers, pending: maxStreamPending, bytes: maxStreamMetaBytes}
	first := true
	for {
		more, err := r.next(&first, ']')
		if err != nil || !more {
			return err
		}
		if len(r.meta.Groups) >= maxStreamGroups {
			return r.corrupt("too many stream groups")
		}
		if err := r.expect('{', "a group object"); err != nil {
			return err
		}
		g := StreamGroup{EntriesRead: -1}
		f := true
		var seen uint8
		for {
			more, err := r.next(&f, '}')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			start := r.offset()
			name, err := r.memberName()
			if err != nil {
				return err
			}
			var bit uint8
			switch string(name) {
			case "name":
				bit = 1
			case "last_delivered_id":
				bit = 2
			case "entries_read":
				bit = 4
			case "consumers":
				bit = 8
			case "pending":
				bit = 16
			}
			if bit == 0 || (bit >= 8 && !r.v2()) {
				if err := r.skipValue(7); err != nil {
					return err
				}
				continue
			}
			if seen&bit != 0 {
				return corruptf(start, "duplicate member %q in a group", name)
			}
			seen |= bit
			switch bit {
			case 1:
				g.Name, err = r.metaBytes("a group name", false)
				if err == nil {
					err = r.charge(&lim, len(g.Name))
				}
			case 2:
				g.LastDeliveredID, err = r.metaBytes("last_delivered_id", false)
				if err == nil {
					err = r.charge(&lim, len(g.LastDeliveredID))
				}
			case 4:
				var v int64
				var ok bool
				v, ok, err = r.intOrNull("entries_read")
				if ok {
					if v < 0 {
						return corruptf(start, "negative entries_read")
					}
					g.EntriesRead = v
				}
			case 8:
				err = r.consumers(&g, &lim)
			case 16:
				err = r.pendingList(&g, &lim)
			}
			if err != nil {
				return err
			}
		}
		if seen&1 == 0 {
			return r.corrupt("a stream group without a name")
		}
		r.meta.Groups = append(r.meta.Groups, g)
	}
}

// consumers reads a group's "consumers" array (format version 2).
func (r *Reader) consumers(g *StreamGroup, lim *metaLimits) error {
	if err := r.expect('[', "an array of consumers"); err != nil {
		return err
	}
	g.Consumers = []StreamConsumer{}
	first := true
	for {
		more, err := r.next(&first, ']')
		if err != nil || !more {
			return err
		}
		if lim.consumers--; lim.consumers < 0 {
			return r.corrupt("more than %d consumers in a stream", maxStreamConsumers)
		}
		if err := r.expect('{', "a consumer object"); err != nil {
			return err
		}
		c := StreamConsumer{ActiveTime: -1}
		var seen uint8
		f := true
		for {
			more, err := r.next(&f, '}')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			start := r.offset()
			name, err := r.memberName()
			if err != nil {
				return err
			}
			var bit uint8
			switch string(name) {
			case "name":
				bit = 1
			case "seen_time":
				bit = 2
			case "active_time":
				bit = 4
			default:
				if err := r.skipValue(9); err != nil {
					return err
				}
				continue
			}
			if seen&bit != 0 {
				return corruptf(start, "duplicate member %q in a consumer", name)
			}
			seen |= bit
			switch bit {
			case 1:
				c.Name, err = r.keptBytes("a consumer name", lim)
			case 2:
				c.SeenTime, err = r.expectInt("seen_time")
				if err == nil && c.SeenTime < 0 {
					err = corruptf(start, "negative seen_time")
				}
			case 4:
				var v int64
				var ok bool
				v, ok, err = r.intOrNull("active_time")
				if ok {
					if v < 0 {
						return corruptf(start, "negative active_time")
					}
					c.ActiveTime = v
				}
			}
			if err != nil {
				return err
			}
		}
		if seen&1 == 0 {
			return r.corrupt("a consumer without a name")
		}
		if seen&2 == 0 {
			return r.corrupt("a consumer without seen_time")
		}
		g.Consumers = append(g.Consumers, c)
	}
}

// pendingList reads a group's "pending" array (format version 2): entries
// [id, consumer, delivery_time, delivery_count]. A consumer named in
// g.Consumers (read before) is shared with it rather than copied.
func (r *Reader) pendingList(g *StreamGroup, lim *metaLimits) error {
	if err := r.expect('[', "an array of pending entries"); err != nil {
		return err
	}
	g.Pending = []StreamPending{}
	var byName map[string]int // index of g.Consumers, for many consumers
	first := true
	for {
		more, err := r.next(&first, ']')
		if err != nil || !more {
			return err
		}
		if lim.pending--; lim.pending < 0 {
			return r.corrupt("more than %d pending entries in a stream", maxStreamPending)
		}
		start := r.offset()
		if err := r.expect('[', "'[' of a pending entry"); err != nil {
			return err
		}
		var p StreamPending
		f := true
		n := 0
		for ; ; n++ {
			more, err := r.next(&f, ']')
			if err != nil {
				return err
			}
			if !more {
				break
			}
			switch n {
			case 0:
				p.ID, err = r.keptBytes("a pending entry's ID", lim)
			case 1:
				if err = r.scratchBytes("a pending entry's consumer"); err != nil {
					break
				}
				name := r.scratch
				j := -1
				if len(g.Consumers) > 8 {
					if byName == nil {
						byName = make(map[string]int, len(g.Consumers))
						for k, c := range g.Consumers {
							byName[string(c.Name)] = k
						}
					}
					if k, ok := byName[string(name)]; ok {
						j = k
					}
				} else {
					for k := range g.Consumers {
						if bytes.Equal(g.Consumers[k].Name, name) {
							j = k
							break
						}
					}
				}
				if j >= 0 {
					p.Consumer = g.Consumers[j].Name
				} else {
					p.Consumer, err = r.keep(name, lim)
				}
			case 2, 3:
				var v int64
				v, err = r.expectInt("a pending entry's delivery time or count")
				if err == nil && v < 0 {
					err = r.corrupt("negative delivery time or count in a pending entry")
				}
				if n == 2 {
					p.DeliveryTime = v
				} else {
					p.DeliveryCount = v
				}
			default:
				return corruptf(start, "a pending entry of more than 4 elements")
			}
			if err != nil {
				return err
			}
		}
		if n != 4 {
			return corruptf(start, "a pending entry of %d elements, want 4 [id, consumer, delivery_time, delivery_count]", n)
		}
		g.Pending = append(g.Pending, p)
	}
}

// scratchBytes reads a byte string of stream metadata (at most
// maxMetaString bytes) into r.scratch.
func (r *Reader) scratchBytes(what string) error {
	done, err := r.beginBytes(what)
	if err != nil {
		return err
	}
	r.scratch = r.scratch[:0]
	if !done {
		if r.scratch, done, err = r.bytesBody(r.scratch, maxMetaString); err != nil {
			return err
		}
		if !done {
			return r.corrupt("%s too long", what)
		}
	}
	return nil
}

// keptBytes reads a byte string of stream metadata into the arena.
func (r *Reader) keptBytes(what string, lim *metaLimits) ([]byte, error) {
	if err := r.scratchBytes(what); err != nil {
		return nil, err
	}
	return r.keep(r.scratch, lim)
}

// keep copies b into the arena (charging the budget) and returns the copy,
// capped so that appending to it cannot touch its neighbours. The arena's
// blocks are never reused: the copies belong to the chunks handed out.
func (r *Reader) keep(b []byte, lim *metaLimits) ([]byte, error) {
	if err := r.charge(lim, len(b)); err != nil {
		return nil, err
	}
	if cap(r.arena)-len(r.arena) < len(b) || r.arena == nil {
		size := max(len(b), min(64<<10, max(512, 2*cap(r.arena))))
		r.arena = make([]byte, 0, size)
	}
	n := len(r.arena)
	r.arena = append(r.arena, b...)
	return r.arena[n : n+len(b) : n+len(b)], nil
}

// smallBytes reads a byte string of at most max bytes into r.name.
func (r *Reader) smallBytes(what string, max int) ([]byte, error) {
	done, err := r.beginBytes(what)
	if err != nil {
		return nil, err
	}
	s := r.name[:0]
	if !done {
		if s, done, err = r.bytesBody(s, max); err != nil {
			return nil, err
		}
		if !done {
			return nil, r.corrupt("%s too long", what)
		}
	}
	r.name = s
	return s, nil
}
