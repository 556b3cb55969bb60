// Package codec reads and writes redback archives: the JSON document of
// docs/FORMAT.md, optionally wrapped in gzip and age. It knows nothing of
// Redis or of storage; it moves byte strings between an io.Writer/io.Reader
// and typed, chunked records.
//
// Create and Open own a whole archive stream (the layers, the buffering
// towards storage, the goroutine that runs gzip and age beside the JSON);
// Writer, Reader, NewEncoder and NewDecoder are its parts, for callers that
// need one layer alone. Decrypt removes only the age layer.
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
	// TypeRaw is a value of a type the engine does not model (a module type
	// such as a Redis 8 vector set, RedisJSON, Bloom, TimeSeries): the
	// server's DUMP payload, restorable with RESTORE where the target can
	// load it. Format version 2.
	TypeRaw
)

// FormatVersion is the archive format version this package writes and the
// newest it reads.
const FormatVersion = 2

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
	// Filter, when set, says the archive holds only the keys its patterns
	// selected (backup.include and backup.exclude): it is partial.
	Filter *Filter
}

// Filter is the selection of keys a partial backup was taken with
// (FORMAT.md "filter"): a key was kept when it matched one of Include (or
// Include is empty) and none of Exclude. The patterns are raw Redis glob
// patterns (byte strings).
type Filter struct {
	Include, Exclude [][]byte
}

// Source describes the dumped server. It never holds a URL, host or password.
type Source struct {
	RedisVersion string
	Role         string
	Mode         string
	Databases    []int
	// Server is "redis" or "valkey" ("" when unknown: older archives).
	Server string
	// ServerVersion is the server's own version (valkey_version for
	// Valkey, whose redis_version is a fixed compatibility value).
	ServerVersion string
	// RDBVersion is the RDB version of the server's DUMP payloads (0 when
	// unknown).
	RDBVersion int
	// Snapshot, when set, says the archive is a point-in-time image (the
	// replication protocol's RDB, or an imported RDB file), not a SCAN.
	Snapshot *Snapshot
	// Cluster, when set, is the topology a cluster's archive was read
	// from (FORMAT.md, "source.cluster"). Written, not read back (readers
	// skip it: it is informational).
	Cluster *ClusterSource
}

// ClusterSource is the shards a cluster backup read.
type ClusterSource struct {
	Shards []ClusterShard
}

// ClusterShard is one shard: its slot ranges (inclusive), its primary's
// node ID and the node ID of the node read (the primary or a replica).
type ClusterShard struct {
	Slots    [][2]int
	Primary  string
	ReadFrom string
}

// Snapshot describes a point-in-time archive (FORMAT.md, "source.snapshot").
type Snapshot struct {
	// Method is "replica" (a full resynchronisation's RDB) or "rdb" (an
	// RDB file imported).
	Method string
	// ReplID and Offset place a replica snapshot in the server's
	// replication stream (+FULLRESYNC <replid> <offset>); empty and 0 for
	// a file.
	ReplID string
	Offset int64
	// RDBCreatedAt is the RDB's own creation time (its ctime AUX field),
	// zero when it has none.
	RDBCreatedAt time.Time
}

// RawInfo describes a TypeRaw value: what is needed to judge where its
// payload can be restored.
type RawInfo struct {
	// RedisType is the server's TYPE for the key ("vectorset", "ReJSON-RL").
	RedisType string
	// Module is the module name recorded in the payload ("" when the payload
	// is not of the RDB module type).
	Module string
	// RDBVersion is the payload's RDB version (its trailer).
	RDBVersion int
}

// Trailer is the metadata written after the keys.
type Trailer struct {
	KeysCount int64
	KeysPerDB map[int]int64
	// KeysPerType is the archive's keys_per_type as recorded (nil when the
	// archive has none: seed and older archives). A Reader does not check
	// it against the keys it read (FORMAT.md: informational); `redback
	// drill` compares it with the types the restored server holds.
	KeysPerType map[Type]int64
	CompletedAt time.Time
	// Checksum is the document's own SHA-256 (its "sha256" member, 64
	// lowercase hex digits; FORMAT.md "Integrity"): the one written, from
	// a Writer; the one found, from a Reader ("" when the document has
	// none: seed and version 1 archives).
	Checksum string
	// Verified is set by a Reader when the document carried a checksum and
	// it matched the document's content. A Reader never returns io.EOF for
	// a document whose checksum does not match, nor for a version 2
	// document without one; so at io.EOF, Verified false means a seed or
	// version 1 archive whose integrity the document itself cannot prove.
	Verified bool
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
	// Consumers and Pending are the group's delivery state (format
	// version 2; nil in older archives).
	Consumers []StreamConsumer
	Pending   []StreamPending
}

// StreamConsumer is one consumer of a group.
type StreamConsumer struct {
	Name []byte
	// SeenTime is the last time the consumer tried to read (Unix ms);
	// ActiveTime the last time it read or claimed successfully (Unix ms, -1
	// when never or unknown: before Redis 7.2).
	SeenTime   int64
	ActiveTime int64
}

// StreamPending is one entry of a group's pending entries list: delivered
// to Consumer and not acknowledged.
type StreamPending struct {
	ID            []byte
	Consumer      []byte
	DeliveryTime  int64 // Unix ms of the last delivery
	DeliveryCount int64
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
	// FieldTTLs says that fields of a hash may carry an expiry, written with
	// Writer.WriteFieldExpire; the value is then written as an array of
	// [field, value] or [field, value, expire_at] entries (it implies
	// HashAsPairs).
	FieldTTLs bool
	// Raw is required for TypeRaw and ignored otherwise; the payload is
	// written with WriteString or WriteStringPart.
	Raw *RawInfo
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
	// FieldExpire, for a hash, holds the expiry of each field/value pair of
	// Items (FieldExpire[i] belongs to Items[2i]), Unix milliseconds, 0 for
	// none; nil when no pair of the chunk has one.
	FieldExpire []int64
	// Raw is set on every chunk of a TypeRaw key; Items then holds the
	// payload's parts (concatenate them).
	Raw *RawInfo

	// Set on the Last chunk only.
	HasTTL   bool
	PTTL     int64 // milliseconds, > 0 when HasTTL
	ExpireAt int64 // Unix milliseconds; 0 when the archive did not record it
	Stream   *StreamMeta

	// Buffers kept for reuse by Reader.Release.
	data   []byte
	fields [][]byte
}
