// Hash field expiry times (Redis 7.4 and later, Valkey 9 and later), both
// ways: the dump reads them with HPEXPIRETIME, the restore writes them with
// HPEXPIREAT (a script for a small hash, queued writes for a big one).

package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
)

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

// queueFieldTTLs queues the writes of a hash chunk whose fields carry
// expiry times: HSET of the fields still alive, then HPEXPIREAT of each.
// With TTLRelative the expiry times move by the time since the backup, as
// key TTLs do. Fields whose expiry passed are dropped and counted.
func (r *Restorer) queueFieldTTLs(ctx context.Context, st *bigKey, c *codec.Chunk) int {
	now := r.opt.Now().UnixMilli()
	shift := r.fieldShift(now)
	type fieldTTL struct {
		field []byte
		at    int64
	}
	var ttls []fieldTTL
	n := 0
	const per = 2000
	args := make([]any, 0, 2+min(len(c.Items), per))
	args = append(args, "HSET", st.tmp)
	flush := func() {
		if len(args) > 2 {
			st.pipe.Do(ctx, args...) // the command keeps args: a new slice follows
			n++
		}
		args = make([]any, 0, 2+min(len(c.Items), per))
		args = append(args, "HSET", st.tmp)
	}
	for i := 0; i+1 < len(c.Items); i += 2 {
		if e := c.FieldExpire[i/2]; e > 0 {
			at := e + shift
			if at <= now {
				st.fieldsExpired++
				continue
			}
			ttls = append(ttls, fieldTTL{c.Items[i], at})
		}
		args = append(args, c.Items[i], c.Items[i+1])
		if len(args) >= per {
			flush()
		}
	}
	flush()
	for _, t := range ttls {
		st.pipe.Do(ctx, "HPEXPIREAT", st.tmp, t.at, "FIELDS", 1, t.field)
		n++
	}
	return n
}

// restoreHashScript writes one small hash whose fields carry expiry times,
// atomically: the fields, then each field's expiry, then the key's.
// KEYS[1] key. ARGV: overwrite (0/1), key expiry mode ("", PX, PXAT), its
// value, the number of pairs n, n field/value pairs, the number of field
// expiries m, m (Unix ms, field) pairs.
const restoreHashScript = `
local k = KEYS[1]
if ARGV[1] == '0' then
  if redis.call('EXISTS', k) == 1 then return 0 end
else
  redis.call('UNLINK', k)
end
local n = tonumber(ARGV[4])
redis.call('HSET', k, unpack(ARGV, 5, 4 + 2 * n))
local j = 5 + 2 * n
for i = 1, tonumber(ARGV[j]) do
  redis.call('HPEXPIREAT', k, ARGV[j + 2 * i - 1], 'FIELDS', 1, ARGV[j + 2 * i])
end
if ARGV[2] == 'PX' then redis.call('PEXPIRE', k, ARGV[3])
elseif ARGV[2] == 'PXAT' then redis.call('PEXPIREAT', k, ARGV[3]) end
return 1
`

var restoreHashLua = redis.NewScript(restoreHashScript)

// writeFieldTTLHashes writes small hashes whose fields carry expiry times,
// one script each, in one pipeline. On a server without field TTLs each is
// an error naming why; fields whose expiry passed are dropped and counted.
func (r *Restorer) writeFieldTTLHashes(ctx context.Context, db int, cl redis.UniversalClient, batch []*codec.Chunk) error {
	if !r.server.FieldTTLs() {
		for _, c := range batch {
			if err := r.record(c.Key, keyFailed, r.noFieldTTLs()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.loadScripts(ctx, db, cl); err != nil {
		return err
	}
	over := r.overwriteArg()
	now := r.opt.Now().UnixMilli()
	shift := r.fieldShift(now)
	pipe := cl.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		mode, val, _ := r.expiry(c)
		pairs := make([]any, 0, len(c.Items))
		var ttls []any
		dropped := 0
		for j := 0; j+1 < len(c.Items); j += 2 {
			if e := c.FieldExpire[j/2]; e > 0 {
				at := e + shift
				if at <= now {
					dropped++
					continue
				}
				ttls = append(ttls, at, c.Items[j])
			}
			pairs = append(pairs, c.Items[j], c.Items[j+1])
		}
		if len(pairs) == 0 {
			continue // every field expired: counted below
		}
		r.addStat(&r.st.FieldsExpired, dropped)
		args := make([]any, 0, 10+len(pairs)+len(ttls))
		args = append(args, "EVALSHA", restoreHashLua.Hash(), 1, c.Key, over, mode, val, len(pairs)/2)
		args = append(args, pairs...)
		args = append(args, len(ttls)/2)
		args = append(args, ttls...)
		cmds[i] = pipe.Do(ctx, args...)
	}
	execErr, err := execWrites(ctx, pipe)
	if err != nil {
		return err
	}
	for i, c := range batch {
		if cmds[i] == nil {
			if err := r.record(c.Key, keyExpired, nil); err != nil {
				return err
			}
			continue
		}
		if err := r.countScripted(c.Key, cmds[i], execErr); err != nil {
			return err
		}
	}
	return nil
}

// fieldShift is what field expiry times move by: with TTLRelative, the time
// since the backup (as key TTLs keep their remaining time), else nothing.
func (r *Restorer) fieldShift(now int64) int64 {
	if r.opt.TTL == TTLRelative && !r.opt.ArchiveTime.IsZero() {
		return now - r.opt.ArchiveTime.UnixMilli()
	}
	return 0
}

func (r *Restorer) noFieldTTLs() error {
	return fmt.Errorf("the archive keeps expiry times on fields of this hash, and %s has no hash field expiry (Redis 7.4 or later, Valkey 9 or later): not restored", r.server)
}
