// Package codec reads and writes redback archives: the JSON document of
// docs/FORMAT.md, optionally wrapped in gzip and age. It knows nothing of
// Redis or of storage; it moves byte strings between an io.Writer/io.Reader
// and typed, chunked records.
package codec

import "time"

// Type is a Redis value type as named in an archive.
type Type uint8

// The value types an archive holds.
const (
	TypeString Type = iota + 1
	TypeHash
	TypeList
	TypeSet
	TypeZSet
	TypeStream
)

// FormatVersion is the archive format version this package writes and the
// newest it reads.
const FormatVersion = 1

// Header is the archive metadata that precedes the keys.
type Header struct {
	// FormatVersion is 0 for seed archives (written by the Python tool that
	// redback replaces), else the archive's format_version.
	FormatVersion int
	// Timestamp is "YYYYMMDD_HHMMSS" (UTC for redback archives).
	Timestamp string
	// CreatedAt is when the backup started. CreatedAtRaw keeps the text as
	// found (seed archives carry a local time without zone).
	CreatedAt    time.Time
	CreatedAtRaw string
	Source       Source
}

// Source describes the dumped server. It never holds a URL, host or password.
type Source struct {
	RedisVersion string
	Role         string
	Mode         string
	Databases    []int
}

// Trailer is the metadata written after the keys.
type Trailer struct {
	KeysCount   int64
	KeysPerDB   map[int]int64
	CompletedAt time.Time
}

// StreamMeta is what a stream holds besides its entries.
type StreamMeta struct {
	LastID       []byte // last generated ID; may be beyond the last entry
	EntriesAdded int64  // -1 when unknown
	MaxDeletedID []byte // nil when unknown
	Groups       []StreamGroup
}

// StreamGroup is a consumer group of a stream.
type StreamGroup struct {
	Name            []byte
	LastDeliveredID []byte
	EntriesRead     int64 // -1 when unknown
}

// StreamEntry is one stream entry: its ID and field/value pairs in order
// (Fields[0] is a field, Fields[1] its value, ...).
type StreamEntry struct {
	ID     []byte
	Fields [][]byte
}

// KeyHeader opens one key in a Writer.
type KeyHeader struct {
	DB   int
	Key  []byte
	Type Type
	// PTTL is the remaining time to live in milliseconds when the key was
	// read; 0 means no expiry. ExpireAt is the absolute expiry in Unix
	// milliseconds (0 when none).
	PTTL     int64
	ExpireAt int64
	// HashAsPairs writes a hash value as an array of [field, value] pairs
	// instead of an object (for hashes read in chunks, where a field may
	// repeat).
	HashAsPairs bool
	// StringBase64 matters only for a string value written in parts with
	// Writer.WriteStringPart, which streams each part at once and so must
	// know the value's form in advance: set it to !IsText(whole value)
	// (a TextChecker over a first pass of the windows tells). The writer
	// checks the promise as the parts go by; see WriteStringPart.
	// WriteString ignores it and chooses the form itself.
	StringBase64 bool
	// Stream is required for TypeStream and ignored otherwise.
	Stream *StreamMeta
}

// Chunk is a piece of one key's value as handed out by a Reader. A key
// arrives as one or more chunks in order: the first has First set, the last
// has Last set (a small key is one chunk with both). Chunks of different keys
// never interleave.
type Chunk struct {
	DB    int
	Key   []byte
	Type  Type
	First bool
	Last  bool

	// Items holds the elements of this chunk:
	//   string: consecutive parts of the value (concatenate them);
	//   list, set: items; hash: field, value, field, value, ...;
	//   zset: member, score, member, score, ... (score as its text:
	//         a JSON number, or "inf" / "+inf" / "-inf").
	Items [][]byte
	// Entries holds the stream entries of this chunk.
	Entries []StreamEntry

	// Set on the Last chunk only.
	HasTTL   bool
	PTTL     int64 // milliseconds, > 0 when HasTTL
	ExpireAt int64 // Unix milliseconds; 0 when the archive did not record it
	Stream   *StreamMeta

	// Buffers kept for reuse by Reader.Release.
	data   []byte
	fields [][]byte
}
