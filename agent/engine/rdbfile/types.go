package rdbfile

// RDB opcodes (src/rdb.h), written where a value type could be.
const (
	opSlotImport    = 0xF3 // Valkey 9: atomic slot migration in progress
	opSlotInfo      = 0xF4
	opFunction2     = 0xF5
	opFunctionPreGA = 0xF6
	opModuleAux     = 0xF7
	opIdle          = 0xF8
	opFreq          = 0xF9
	opAux           = 0xFA
	opResizeDB      = 0xFB
	opExpireTimeMs  = 0xFC
	opExpireTime    = 0xFD
	opSelectDB      = 0xFE
	opEOF           = 0xFF
)

// RDB object types.
const (
	tString           = 0
	tList             = 1
	tSet              = 2
	tZSet             = 3
	tHash             = 4
	tZSet2            = 5
	tModulePreGA      = 6
	tModule2          = 7
	tHashZipmap       = 9
	tListZiplist      = 10
	tSetIntset        = 11
	tZSetZiplist      = 12
	tHashZiplist      = 13
	tListQuicklist    = 14
	tStreamListpacks  = 15
	tHashListpack     = 16
	tZSetListpack     = 17
	tListQuicklist2   = 18
	tStreamListpacks2 = 19
	tSetListpack      = 20
	tStreamListpacks3 = 21
	// 22 and up differ between the dialects.
	tRedisHashMetadataPreGA   = 22 // Redis 7.4 RCs: per field TTL (absolute), field, value
	tRedisHashListpackExPreGA = 23 // Redis 7.4 RCs: listpack of field, value, TTL
	tRedisHashMetadata        = 24 // Redis 7.4+: min TTL, per field relative TTL, field, value
	tRedisHashListpackEx      = 25 // Redis 7.4+: min TTL, listpack of field, value, TTL
	tValkeyHash2              = 22 // Valkey 9: per field: field, value, expiry ms (-1 none)
)

// Module value opcodes (RDB_MODULE_OPCODE_*).
const (
	modOpEOF    = 0
	modOpSInt   = 1
	modOpUInt   = 2
	modOpFloat  = 3
	modOpDouble = 4
	modOpString = 5
)

// Quicklist 2 node containers.
const (
	qlPlain  = 1
	qlPacked = 2
)

// Stream listpack entry flags.
const (
	streamItemDeleted    = 1
	streamItemSameFields = 2
)

// typeInfo returns the data type and encoding name of RDB object type t
// in dialect d; ok is false for a byte that is no object type there.
func typeInfo(t byte, d Dialect) (typ Type, enc string, ok bool) {
	switch t {
	case tString:
		return TypeString, "string", true
	case tList:
		return TypeList, "list", true
	case tSet:
		return TypeSet, "set", true
	case tZSet:
		return TypeZSet, "zset", true
	case tHash:
		return TypeHash, "hash", true
	case tZSet2:
		return TypeZSet, "zset2", true
	case tModulePreGA:
		return TypeModule, "module-pre-ga", true
	case tModule2:
		return TypeModule, "module2", true
	case tHashZipmap:
		return TypeHash, "zipmap", true
	case tListZiplist:
		return TypeList, "ziplist", true
	case tSetIntset:
		return TypeSet, "intset", true
	case tZSetZiplist:
		return TypeZSet, "zset-ziplist", true
	case tHashZiplist:
		return TypeHash, "hash-ziplist", true
	case tListQuicklist:
		return TypeList, "quicklist", true
	case tStreamListpacks:
		return TypeStream, "stream", true
	case tHashListpack:
		return TypeHash, "hash-listpack", true
	case tZSetListpack:
		return TypeZSet, "zset-listpack", true
	case tListQuicklist2:
		return TypeList, "quicklist2", true
	case tStreamListpacks2:
		return TypeStream, "stream2", true
	case tSetListpack:
		return TypeSet, "set-listpack", true
	case tStreamListpacks3:
		return TypeStream, "stream3", true
	}
	if d == DialectValkey {
		if t == tValkeyHash2 {
			return TypeHash, "hash2", true
		}
		return 0, "", false
	}
	switch t {
	case tRedisHashMetadataPreGA:
		return TypeHash, "hash-metadata-pre-ga", true
	case tRedisHashListpackExPreGA:
		return TypeHash, "hash-listpack-ex-pre-ga", true
	case tRedisHashMetadata:
		return TypeHash, "hash-metadata", true
	case tRedisHashListpackEx:
		return TypeHash, "hash-listpack-ex", true
	}
	return 0, "", false
}

const moduleCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ModuleName returns the 9-character module type name encoded in a module
// type id (the id's top 54 bits, 6 bits a character; the low 10 bits are
// the encoding version).
func ModuleName(id uint64) string {
	id >>= 10
	var name [9]byte
	for i := 8; i >= 0; i-- {
		name[i] = moduleCharset[id&63]
		id >>= 6
	}
	return string(name[:])
}
