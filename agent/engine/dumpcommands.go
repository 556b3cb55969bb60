// Small keys read with commands (ReadCommands, and the keys whose DUMP
// payload is not decoded here): a script for type, PTTL, length and memory,
// then GET, HGETALL, LRANGE, SMEMBERS, ZRANGE WITHSCORES; keys of other types
// (modules) kept as their DUMP payload.

package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// metaScript returns, for each key: type, PTTL, length, and a memory
// estimate for collections of more than 32 elements.
const metaScript = `
local r = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local t = redis.call('TYPE', k).ok
  local n, m = 0, 0
  if t == 'string' then n = redis.call('STRLEN', k)
  elseif t == 'hash' then n = redis.call('HLEN', k)
  elseif t == 'list' then n = redis.call('LLEN', k)
  elseif t == 'set' then n = redis.call('SCARD', k)
  elseif t == 'zset' then n = redis.call('ZCARD', k)
  elseif t == 'stream' then n = redis.call('XLEN', k)
  end
  if t ~= 'string' and t ~= 'none' and n > 32 then
    m = redis.call('MEMORY', 'USAGE', k) or 0
  end
  r[#r+1] = t
  r[#r+1] = redis.call('PTTL', k)
  r[#r+1] = n
  r[#r+1] = m
end
return r
`

// inspectKeys runs the meta script over keys.
func inspectKeys(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) ([]keyMeta, error) {
	args := make([]any, 0, len(keys)+3)
	args = append(args, "EVALSHA", meta.Hash(), len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	raw, err := c.DoRaw(ctx, args...).Bytes()
	if err != nil {
		return nil, wrapRedis("EVALSHA", err)
	}
	n, off, err := parseArrayHeader(raw)
	if hasCode(err, "NOSCRIPT") {
		// The script cache was flushed (SCRIPT FLUSH, a restart): load again.
		if err := meta.Load(ctx, c).Err(); err != nil {
			return nil, wrapRedis("SCRIPT LOAD", err)
		}
		return inspectKeys(ctx, c, meta, keys)
	}
	if err != nil {
		return nil, wrapRedis("EVALSHA", err)
	}
	if n != 4*len(keys) {
		return nil, fmt.Errorf("redis EVALSHA: %d values for %d keys", n, len(keys))
	}
	out := make([]keyMeta, 0, len(keys))
	for i := range keys {
		var f [4][]byte
		for j := range f {
			v, _, used, err := parseBulk(raw[off:])
			if err != nil {
				return nil, wrapRedis("EVALSHA", err)
			}
			f[j] = v
			off += used
		}
		m := keyMeta{key: keys[i]}
		typ, ok := parseType(f[0])
		if !ok && string(f[0]) != "none" {
			// A type the engine does not model: kept as its DUMP payload.
			typ, m.redisType = codec.TypeRaw, string(f[0])
		}
		m.typ = typ
		m.pttl, _ = strconv.ParseInt(string(f[1]), 10, 64)
		m.length, _ = strconv.ParseInt(string(f[2]), 10, 64)
		m.mem, _ = strconv.ParseInt(string(f[3]), 10, 64)
		out = append(out, m)
	}
	return out, nil
}

func (d *Dumper) isBig(m keyMeta) bool {
	switch m.typ {
	case codec.TypeString:
		return m.length > d.opt.BigBytes
	case codec.TypeStream:
		return true // streams always take the windowed path (it reads their metadata)
	case codec.TypeRaw:
		return false // a DUMP payload is read whole
	}
	return m.length > d.opt.BigElements || m.mem > d.opt.BigBytes
}

func (d *Dumper) estimate(m keyMeta) int64 {
	if m.typ == codec.TypeString {
		return m.length + 64
	}
	if m.typ == codec.TypeRaw {
		return 64 << 10 // unknown: a module value is often large
	}
	if m.mem > 0 {
		return m.mem
	}
	return 64 + 64*m.length
}

// readBatchCommands reads the metadata of keys, then the values of the
// small ones, in pipelines of at most BatchBytes estimated bytes.
func (d *Dumper) readBatchCommands(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) (batchResult, error) {
	metas, err := inspectKeys(ctx, c, meta, keys)
	if err != nil {
		return batchResult{}, err
	}
	res := batchResult{readAt: d.opt.Now()}
	var pending []keyMeta
	var budget int64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		got, vanished, bytes, err := d.readValues(ctx, c, meta, pending)
		if err != nil {
			return err
		}
		res.small = append(res.small, got...)
		res.vanished += vanished
		res.bytes += bytes
		pending, budget = pending[:0], 0
		return nil
	}
	for _, m := range metas {
		if m.typ == 0 || m.pttl == -2 || m.pttl == 0 {
			res.vanished++ // gone, or expiring this millisecond
			continue
		}
		if d.isBig(m) {
			res.big = append(res.big, m)
			continue
		}
		est := d.estimate(m)
		if budget+est > d.opt.BatchBytes && len(pending) > 0 {
			if err := flush(); err != nil {
				return res, err
			}
		}
		pending = append(pending, m)
		budget += est
	}
	return res, flush()
}

// readValues reads small keys whole, one pipeline. A key that vanished is
// counted; one that changed type is inspected and read again.
func (d *Dumper) readValues(ctx context.Context, c *redis.Client, meta *redis.Script, metas []keyMeta) ([]readKey, int64, int64, error) {
	pipe := c.Pipeline()
	cmds := make([]*redis.RawCmd, len(metas))
	for i, m := range metas {
		switch m.typ {
		case codec.TypeString:
			cmds[i] = rawCmd(ctx, pipe, "GET", m.key)
		case codec.TypeHash:
			cmds[i] = rawCmd(ctx, pipe, "HGETALL", m.key)
		case codec.TypeList:
			cmds[i] = rawCmd(ctx, pipe, "LRANGE", m.key, 0, -1)
		case codec.TypeSet:
			cmds[i] = rawCmd(ctx, pipe, "SMEMBERS", m.key)
		case codec.TypeZSet:
			cmds[i] = rawCmd(ctx, pipe, "ZRANGE", m.key, 0, -1, "WITHSCORES")
		case codec.TypeRaw:
			cmds[i] = rawCmd(ctx, pipe, "DUMP", m.key)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, 0, wrapRedis("read values", err)
	}
	out := make([]readKey, 0, len(metas))
	var vanished, bytes int64
	var retry [][]byte
	for i, m := range metas {
		raw := cmds[i].Val()
		bytes += int64(len(raw))
		var items [][]byte
		var err error
		var ri *codec.RawInfo
		if m.typ == codec.TypeString || m.typ == codec.TypeRaw {
			v, ok, _, perr := parseBulk(raw)
			err = perr
			if err == nil && ok {
				items = [][]byte{v}
				if m.typ == codec.TypeRaw {
					ri = rawInfo(m.redisType, v)
				}
			}
			if err != nil && m.typ == codec.TypeRaw && !isWrongType(err) {
				return nil, 0, 0, fmt.Errorf("key %s of type %s can be kept only as its DUMP payload, and DUMP failed: %w", quoteKey(m.key), m.redisType, err)
			}
		} else {
			items, _, err = parseBulkArray(raw, make([][]byte, 0, 2*m.length))
		}
		if err != nil {
			if isWrongType(err) {
				retry = append(retry, m.key)
				continue
			}
			return nil, 0, 0, fmt.Errorf("read key %s: %w", quoteKey(m.key), err)
		}
		if len(items) == 0 {
			vanished++
			continue
		}
		out = append(out, readKey{meta: m, items: items, raw: ri})
	}
	if d.fieldTTLs {
		if err := d.readFieldTTLs(ctx, c, out); err != nil {
			return nil, 0, 0, err
		}
	}
	if len(retry) > 0 {
		// Keys replaced by another type between the two reads: once more.
		metas2, err := inspectKeys(ctx, c, meta, retry)
		if err != nil {
			return nil, 0, 0, err
		}
		var again []keyMeta
		for _, m := range metas2 {
			if m.typ == 0 || m.pttl == -2 || m.pttl == 0 || d.isBig(m) {
				vanished++ // gone, or now big: rare enough to leave to the next backup
				continue
			}
			again = append(again, m)
		}
		if len(again) > 0 {
			got, v2, b2, err := d.readValues(ctx, c, meta, again)
			if err != nil {
				return nil, 0, 0, err
			}
			out = append(out, got...)
			vanished += v2
			bytes += b2
		}
	}
	return out, vanished, bytes, nil
}

// rawInfo describes the DUMP payload of a key of a type the engine does not
// model.
func rawInfo(redisType string, payload []byte) *codec.RawInfo {
	return &codec.RawInfo{
		RedisType:  redisType,
		Module:     rdbvalue.ModuleName(payload),
		RDBVersion: max(0, rdbvalue.PayloadRDBVersion(payload)), // 0: unknown (too short to tell)
	}
}
