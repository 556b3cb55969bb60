package rdbvalue

import "errors"

// The compact encodings Redis stores as one RDB string (a blob): listpack,
// ziplist, intset and zipmap, each read by an iterator (Listpack, Ziplist,
// Intset, Zipmap) that both Decode and the RDB file reader use.
//
// Their contract: they never read outside the blob, whatever its bytes;
// string entries are sub-slices of the blob whose capacity is their
// length; integer entries come as int64 (the caller formats them); they
// check the structure (header, entry framing, end marker, declared count)
// but not what Redis's deep sanitization also checks (sorted ziplists,
// unique intset members, backlen and prevlen values). Their errors are
// plain descriptions ("truncated listpack entry"), without sentinel or
// position: the caller wraps them with its own context.

var (
	errLPTrunc = errors.New("truncated listpack entry")
	errZLTrunc = errors.New("truncated ziplist entry")
	errZMTrunc = errors.New("truncated zipmap")
)
