package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// rawInfo describes the DUMP payload of a key of a type the engine does not
// model.
func rawInfo(redisType string, payload []byte) *codec.RawInfo {
	return &codec.RawInfo{
		RedisType:  redisType,
		Module:     rdbvalue.ModuleName(payload),
		RDBVersion: max(0, rdbvalue.PayloadRDBVersion(payload)), // 0: unknown (too short to tell)
	}
}

// readFieldTTLs reads the expiry times of the fields of the hashes in keys
// (one pipeline of HPEXPIRETIME), on servers that keep them. A field that
// is gone by then (expired or deleted since it was read) is dropped: it must
// not come back without its expiry.
func (d *Dumper) readFieldTTLs(ctx context.Context, c *redis.Client, keys []readKey) error {
	pipe := c.Pipeline()
	cmds := make([]*redis.RawCmd, len(keys))
	for i, k := range keys {
		if k.meta.typ != codec.TypeHash || len(k.items) < 2 {
			continue
		}
		cmds[i] = rawCmd(ctx, pipe, fieldTTLArgs(k.meta.key, k.items)...)
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrapRedis("HPEXPIRETIME", err)
	}
	for i := range keys {
		if cmds[i] == nil {
			continue
		}
		k := &keys[i]
		exp, err := parseFieldTTLs(cmds[i].Val(), len(k.items)/2)
		if err != nil {
			return fmt.Errorf("key %s: %w", quoteKey(k.meta.key), err)
		}
		k.items, k.fieldExpire = applyFieldTTLs(k.items, exp)
	}
	return nil
}

// fieldTTLArgs is HPEXPIRETIME key FIELDS n field... for the pairs of items.
func fieldTTLArgs(key []byte, items [][]byte) []any {
	n := len(items) / 2
	args := make([]any, 0, 4+n)
	args = append(args, "HPEXPIRETIME", key, "FIELDS", n)
	for i := 0; i+1 < len(items); i += 2 {
		args = append(args, items[i])
	}
	return args
}

// parseFieldTTLs parses HPEXPIRETIME's reply: per field, the absolute expiry
// in Unix ms, -1 for none, -2 for a field that does not exist.
func parseFieldTTLs(raw []byte, n int) ([]int64, error) {
	vals, _, err := parseBulkArray(raw, make([][]byte, 0, n))
	if err != nil {
		return nil, wrapRedis("HPEXPIRETIME", err)
	}
	if len(vals) != n {
		return nil, fmt.Errorf("redis HPEXPIRETIME: %d answers for %d fields", len(vals), n)
	}
	out := make([]int64, n)
	for i, v := range vals {
		t, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis HPEXPIRETIME: bad answer %q", v)
		}
		out[i] = t
	}
	return out, nil
}

// applyFieldTTLs drops the pairs whose field is gone (-2) and returns the
// remaining pairs with their expiry (0 for none), or a nil expiry slice when
// no field has one.
func applyFieldTTLs(items [][]byte, exp []int64) ([][]byte, []int64) {
	any := false
	kept := items[:0]
	var out []int64
	for i, t := range exp {
		if t == -2 {
			continue
		}
		if t < 0 {
			t = 0
		}
		if t > 0 {
			any = true
		}
		kept = append(kept, items[2*i], items[2*i+1])
		out = append(out, t)
	}
	if !any {
		return kept, nil
	}
	return kept, out
}
