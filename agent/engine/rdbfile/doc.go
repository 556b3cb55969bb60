// Package rdbfile reads RDB files (what SAVE, BGSAVE and a primary's full
// resynchronisation produce) as a stream of events, in bounded memory
// whatever the size of the file or of its keys.
//
// # Dialects and versions
//
// The magic tells the dialect: "REDIS" and four digits (Redis, and Valkey
// up to 8.x, RDB 1 to 12 accepted: Redis 7.0 writes 10, 7.2 and Valkey
// 7.2-8.x 11, 7.4-8.x 12), or "VALKEY" and three digits (Valkey 9+, RDB 80).
// Value types 22 and up mean different things in the two dialects (Redis
// 7.4's hashes with field TTLs, Valkey 9's). Anything newer is an error
// that names the version; an unknown opcode or type is an error that names
// it and its offset.
//
// # Events
//
//	r, err := rdbfile.NewReader(f, rdbfile.Options{})
//	h := r.Header() // dialect, RDB version
//	for {
//		ev, err := r.Next()
//		if err == io.EOF {
//			break
//		}
//		if err != nil {
//			return err
//		}
//		switch e := ev.(type) {
//		case *rdbfile.KeyStart: // e.DB, e.Key, e.Type, e.ExpireAtMs, ...
//		case *rdbfile.Elements: // list items, set members
//		case *rdbfile.HashChunk, *rdbfile.ZSetChunk, *rdbfile.StringChunk: ...
//		case *rdbfile.KeyEnd:
//		case *rdbfile.EOF: // checksum checked
//		}
//	}
//
// Next pulls events (through a coroutine, iter.Pull: call Close when
// stopping early); Walk pushes them to a callback, a little faster. See
// Event for the sequence. Events and everything they point to are reused:
// they are valid until the next event.
//
// Every value is delivered in chunks: at most Options.MaxChunkElems
// elements and about Options.MaxChunkBytes bytes each; strings in pieces
// of at most MaxChunkBytes, also when LZF-compressed (decompressed as a
// stream with the 8 KiB window LZF needs). What must be held whole is
// capped: one element (MaxElemBytes), one compact encoding blob —
// listpack, ziplist, intset, zipmap, compressed or not — (MaxBlobBytes),
// a key name, an aux field, a function library. Lengths read from the
// file never size an allocation before the data has arrived.
//
// # Raw values
//
// After a KeyStart, Reader.WantRaw makes that key's value arrive as
// RawChunk events: its type byte and serialized value exactly as in the
// file, which rdbvalue.AppendDumpFooter turns into a payload for RESTORE
// (the format DUMP produces). Options.Raw does it for every key. Module values
// (type 7, e.g. Redis 8's vector sets) always come raw: they cannot be
// parsed without their module, but they are walked (the module opcodes
// RDB_MODULE_OPCODE_*) to find their end. Raw and skipped values
// (Reader.SkipValue) are checked only for their framing (lengths,
// strings, opcodes), not for the content of their compact encodings.
//
// # Coverage
//
// Opcodes: AUX, SELECTDB, RESIZEDB, EXPIRETIME_MS, EXPIRETIME, FREQ,
// IDLE, MODULE_AUX, FUNCTION2, SLOT_INFO, SLOT_IMPORT (Valkey 9), EOF and
// its CRC-64 (checked unless zero; absent before RDB 5). FUNCTION (0xF6,
// Redis 7.0 release candidates) and module values of type 6 (Redis 4.0
// release candidates) are ErrUnsupported.
//
// Types: strings (raw, integer, LZF); lists (plain, ziplist, quicklist of
// ziplists, quicklist 2 of listpacks and plain nodes); sets (plain,
// intset, listpack); sorted sets (text scores, binary scores, ziplist,
// listpack); hashes (plain, zipmap, ziplist, listpack; with field TTLs:
// Redis 22-25, Valkey 22); streams (types 15, 19, 21: entries, metadata,
// consumer groups, PELs, consumers with seen and active times); modules
// (type 7, raw).
package rdbfile
