package rdbfile

import "strconv"

// Event is one item of an RDB file, as Next returns it: one of the pointer
// types below. The Reader reuses them: an event, and every slice it holds,
// is valid only until the next call to Next (or the return of Walk's
// callback). Copy what must outlive that.
//
// Sequence: header items (Aux, ModuleAux, FunctionLibrary, SlotImport) in
// file order; then per database a SelectDB, usually a ResizeDB, and its
// keys; SlotInfo items may appear between keys (cluster mode); EOF last.
//
// A key is KeyStart, its value as zero or more chunk events, then KeyEnd:
//
//	string:          StringChunk... (at least one; concatenate the Data)
//	list, set:       Elements...
//	hash:            HashChunk...
//	sorted set:      ZSetChunk...
//	stream:          StreamEntries..., StreamMeta, then per consumer
//	                 group: StreamGroup, StreamPending..., then per
//	                 consumer: StreamConsumer, StreamConsumerPending...
//	module, or raw:  RawChunk... (see Reader.WantRaw)
//	skipped:         nothing (see Reader.SkipValue)
type Event interface{ event() }

// Aux is an auxiliary field of the header (redis-ver, ctime, used-mem,
// repl-id, ...). Integer-encoded values come as decimal text.
type Aux struct{ Key, Value []byte }

// SelectDB starts the keys of database DB.
type SelectDB struct{ DB int }

// ResizeDB is the size hint that follows SelectDB: the number of keys of
// the database and how many of them have an expiry.
type ResizeDB struct{ DBSize, ExpiresSize uint64 }

// SlotInfo is the per-slot size hint of cluster mode (Redis 7.4+, Valkey
// 8+), written before the keys of each slot.
type SlotInfo struct{ Slot, Size, ExpiresSize uint64 }

// SlotRange is an inclusive range of hash slots.
type SlotRange struct{ Start, End uint64 }

// SlotImport is an atomic slot migration in progress (Valkey 9): the job
// name and the slot ranges being imported.
type SlotImport struct {
	JobName []byte
	Ranges  []SlotRange
}

// FunctionLibrary is the code of a function library (FUNCTION LOAD).
type FunctionLibrary struct{ Code []byte }

// ModuleAux is the auxiliary data of a module type. Raw is everything
// after the opcode (module id, when-opcode, when, the opcode-tagged
// values up to their EOF), as a module would read it back.
type ModuleAux struct {
	ModuleID uint64 // 54-bit type id << 10 | encoding version
	Module   string // the 9-character type name encoded in ModuleID
	When     uint64 // REDISMODULE_AUX_BEFORE_RDB (1) or _AFTER_RDB (2)
	Raw      []byte
}

// Type is the data type of a key.
type Type uint8

// Types. The zero Type is no type.
const (
	TypeString Type = iota + 1
	TypeList
	TypeSet
	TypeZSet
	TypeHash
	TypeStream
	TypeModule
)

func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeList:
		return "list"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	case TypeHash:
		return "hash"
	case TypeStream:
		return "stream"
	case TypeModule:
		return "module"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// KeyStart starts a key.
type KeyStart struct {
	DB       int
	Key      []byte
	Type     Type
	RDBType  byte   // the RDB object type byte
	Encoding string // its name: "quicklist2", "hash-listpack", "stream3", ...

	HasExpire  bool
	ExpireAtMs int64 // absolute Unix time in ms, when HasExpire

	HasFreq bool
	Freq    uint8 // LFU counter (maxmemory-policy *-lfu), when HasFreq
	HasIdle bool
	Idle    uint64 // LRU idle time in seconds (*-lru policies), when HasIdle

	// For module values (Type == TypeModule): the module type id and name.
	ModuleID uint64
	Module   string
}

// KeyEnd ends the key KeyStart began.
type KeyEnd struct{ Key []byte }

// StringChunk is a piece of a string value, at Offset of its Total bytes
// (integer-encoded strings come as their decimal text).
type StringChunk struct {
	Data   []byte
	Offset int64
	Total  int64
}

// Elements are items of a list (head to tail) or members of a set.
type Elements struct{ Elems [][]byte }

// NoExpire is the HashChunk.ExpireAtMs value of a field without a TTL.
const NoExpire int64 = -1

// HashChunk holds fields of a hash and their values. ExpireAtMs is nil for
// hashes without field TTLs; for the encodings that carry them (Redis
// 7.4+, Valkey 9) it has one entry per field: the absolute expiry in Unix
// ms, or NoExpire.
type HashChunk struct {
	Fields, Values [][]byte
	ExpireAtMs     []int64
}

// ZSetChunk holds members of a sorted set and their scores. The order is
// the file's: ascending for listpack/ziplist encodings, usually descending
// for skiplists.
type ZSetChunk struct {
	Members [][]byte
	Scores  []float64
}

// StreamID is a stream entry ID.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// StreamEntry is one (not deleted) entry of a stream.
type StreamEntry struct {
	ID             StreamID
	Fields, Values [][]byte
}

// StreamEntries are entries of a stream, in ID order.
type StreamEntries struct{ Entries []StreamEntry }

// StreamMeta is the stream's state after its entries. FirstID,
// MaxDeletedID and EntriesAdded are only in the newer encodings
// (HasV2Meta: RDB type 19 and later, Redis 7.0+).
type StreamMeta struct {
	Length       uint64
	LastID       StreamID
	HasV2Meta    bool
	FirstID      StreamID
	MaxDeletedID StreamID
	EntriesAdded uint64
	Groups       uint64 // number of consumer groups that follow
}

// StreamGroup starts a consumer group.
type StreamGroup struct {
	Name   []byte
	LastID StreamID // last delivered ID
	// EntriesRead is the group's entries-read counter, -1 when not known
	// (RDB type 15, or the server's own "invalid" value).
	EntriesRead int64
	Pending     uint64 // PEL size (StreamPending entries that follow)
}

// PendingEntry is an entry of a group's PEL.
type PendingEntry struct {
	ID             StreamID
	DeliveryTimeMs int64
	DeliveryCount  uint64
}

// StreamPending holds entries of the current group's PEL.
type StreamPending struct{ Entries []PendingEntry }

// StreamConsumer is a consumer of the current group.
type StreamConsumer struct {
	Name       []byte
	Index      uint64 // 0-based position among the group's Count consumers
	Count      uint64 // consumers of the group
	SeenTimeMs int64
	// ActiveTimeMs is the last successful read (RDB type 21, Redis 7.2+,
	// Valkey), -1 when not in the file.
	ActiveTimeMs int64
	Pending      uint64 // entries of its PEL (StreamConsumerPending)
}

// StreamConsumerPending holds IDs of the current consumer's PEL (each one
// is an entry of the group's PEL, owned by this consumer).
type StreamConsumerPending struct{ IDs []StreamID }

// RawChunk is a piece of a value's serialized bytes: concatenated, a key's
// RawChunks are its RDB type byte then its value exactly as in the file
// (what DUMP returns, before the footer rdbvalue.AppendDumpFooter adds).
type RawChunk struct{ Data []byte }

// EOF ends the file. Checksum is the file's CRC-64 trailer; Verified
// reports that it was checked (it is 0, and not checked, when the server
// had rdbchecksum off; files before RDB 5 have none).
type EOF struct {
	Checksum uint64
	Verified bool
}

func (*Aux) event()                   {}
func (*SelectDB) event()              {}
func (*ResizeDB) event()              {}
func (*SlotInfo) event()              {}
func (*SlotImport) event()            {}
func (*FunctionLibrary) event()       {}
func (*ModuleAux) event()             {}
func (*KeyStart) event()              {}
func (*KeyEnd) event()                {}
func (*StringChunk) event()           {}
func (*Elements) event()              {}
func (*HashChunk) event()             {}
func (*ZSetChunk) event()             {}
func (*StreamEntries) event()         {}
func (*StreamMeta) event()            {}
func (*StreamGroup) event()           {}
func (*StreamPending) event()         {}
func (*StreamConsumer) event()        {}
func (*StreamConsumerPending) event() {}
func (*RawChunk) event()              {}
func (*EOF) event()                   {}
