// Small keys read with DUMP (the default): pipelined PTTL and MEMORY USAGE,
// then DUMP, whose payloads are decoded here (rdbvalue).

package engine

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// kindType maps a decoded kind to the archive's type.
func kindType(k rdbvalue.Kind) codec.Type {
	switch k {
	case rdbvalue.KindString:
		return codec.TypeString
	case rdbvalue.KindHash:
		return codec.TypeHash
	case rdbvalue.KindList:
		return codec.TypeList
	case rdbvalue.KindSet:
		return codec.TypeSet
	case rdbvalue.KindZSet:
		return codec.TypeZSet
	}
	return 0
}

// isStreamPayload reports whether a DUMP payload holds a stream (RDB types
// 15, 19 and 21).
func isStreamPayload(p []byte) bool {
	return len(p) > 0 && (p[0] == 15 || p[0] == 19 || p[0] == 21)
}

// readBatchDump reads a batch with two pipelines: PTTL and MEMORY USAGE of
// every key, then DUMP of the small ones (TYPE of the big ones). Keys whose
// payload this package cannot decode are read again with commands.
func (d *Dumper) readBatchDump(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) (batchResult, bool, error) {
	pipe := c.Pipeline()
	pttls := make([]*redis.RawCmd, len(keys))
	mems := make([]*redis.RawCmd, len(keys))
	for i, k := range keys {
		pttls[i] = rawCmd(ctx, pipe, "PTTL", k)
		mems[i] = rawCmd(ctx, pipe, "MEMORY", "USAGE", k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return batchResult{}, false, wrapRedis("PTTL/MEMORY USAGE", err)
	}
	res := batchResult{readAt: d.opt.Now()}
	type probe struct {
		key  []byte
		pttl int64
		mem  int64
	}
	var small, big []probe
	for i, k := range keys {
		pv, _, _, err := parseBulk(pttls[i].Val())
		if err != nil {
			return res, false, wrapRedis("PTTL", err)
		}
		pttl, _ := strconv.ParseInt(string(pv), 10, 64)
		mv, ok, _, err := parseBulk(mems[i].Val())
		if err != nil {
			if isReply(err) {
				return res, true, nil // MEMORY refused: use commands
			}
			return res, false, wrapRedis("MEMORY USAGE", err)
		}
		if !ok || pttl == -2 || pttl == 0 {
			res.vanished++
			continue
		}
		mem, _ := strconv.ParseInt(string(mv), 10, 64)
		p := probe{key: k, pttl: pttl, mem: mem}
		if mem > d.opt.BigBytes {
			big = append(big, p)
		} else {
			small = append(small, p)
		}
	}

	// Then DUMP the small keys, in pipelines of at most BatchBytes, and
	// TYPE the big ones.
	var fallback [][]byte
	// One slab holds the element slices of the whole batch.
	slab := make([][]byte, 0, 16*len(small))
	for start := 0; start < len(small); {
		end, budget := start, int64(0)
		for end < len(small) && end-start < d.opt.PipelineKeys && (end == start || budget+small[end].mem <= d.opt.BatchBytes) {
			budget += small[end].mem
			end++
		}
		pipe := c.Pipeline()
		dumps := make([]*redis.RawCmd, end-start)
		for i := start; i < end; i++ {
			dumps[i-start] = rawCmd(ctx, pipe, "DUMP", small[i].key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return res, false, wrapRedis("DUMP", err)
		}
		for i := start; i < end; i++ {
			raw := dumps[i-start].Val()
			res.bytes += int64(len(raw))
			payload, ok, _, err := parseBulk(raw)
			if err != nil {
				if isReply(err) {
					return res, true, nil // DUMP refused: use commands
				}
				return res, false, wrapRedis("DUMP", err)
			}
			if !ok {
				res.vanished++
				continue
			}
			p := small[i]
			if isStreamPayload(payload) {
				res.big = append(res.big, keyMeta{key: p.key, typ: codec.TypeStream, pttl: p.pttl})
				continue
			}
			free := slab[len(slab):len(slab)]
			kind, items, err := rdbvalue.Decode(payload, free, nil)
			if err != nil || kindType(kind) == 0 || len(items) == 0 {
				// Hashes with field TTLs, module types, encodings this
				// package does not decode: read with commands.
				fallback = append(fallback, p.key)
				continue
			}
			if len(items) <= cap(free) {
				slab = slab[:len(slab)+len(items)] // items live in the slab
			}
			res.small = append(res.small, readKey{
				meta:  keyMeta{key: p.key, typ: kindType(kind), pttl: p.pttl},
				items: items,
			})
		}
		start = end
	}
	if len(big) > 0 {
		pipe := c.Pipeline()
		types := make([]*redis.RawCmd, len(big))
		for i, p := range big {
			types[i] = rawCmd(ctx, pipe, "TYPE", p.key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return res, false, wrapRedis("TYPE", err)
		}
		for i, p := range big {
			tv, _, _, err := parseBulk(types[i].Val())
			if err != nil {
				return res, false, wrapRedis("TYPE", err)
			}
			typ, ok := parseType(tv)
			if !ok {
				if string(tv) == "none" {
					res.vanished++
					continue
				}
				fallback = append(fallback, p.key) // a module type: kept raw there
				continue
			}
			res.big = append(res.big, keyMeta{key: p.key, typ: typ, pttl: p.pttl, mem: p.mem})
		}
	}
	if len(fallback) > 0 {
		more, err := d.readBatchCommands(ctx, c, meta, fallback)
		if err != nil {
			return res, false, err
		}
		res.small = append(res.small, more.small...)
		res.big = append(res.big, more.big...)
		res.vanished += more.vanished
		res.bytes += more.bytes
	}
	return res, false, nil
}
