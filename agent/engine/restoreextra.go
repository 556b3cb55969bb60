package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
)

// dbUsable checks once per target database that the server has it. derr is
// the per-key error of every key bound for a database it lacks (a cluster
// node has only database 0; a server may have fewer than the archive's);
// err is a failure that stops the restore (the server is gone).
func (r *Restorer) dbUsable(ctx context.Context, db int) (derr, err error) {
	r.mu.Lock()
	e, ok := r.dbErrs[db]
	r.mu.Unlock()
	if ok {
		return e, nil
	}
	// The connection's setup selects the database: a server without it
	// answers the PING with the SELECT's error.
	perr := r.client(db).Ping(ctx).Err()
	if perr != nil {
		if !isRedisReplyError(perr) {
			return nil, wrapRedis("PING", perr)
		}
		e = fmt.Errorf("database %d cannot be written on %s (%v): map it to another with --db %d:N", db, r.server, perr, db)
	} else if !r.opt.DryRun {
		if n := sweepTemp(ctx, r.client(db)); n > 0 {
			r.warn(nil, fmt.Sprintf("removed %d temporary keys left by an interrupted restore in database %d", n, db))
		}
	}
	r.mu.Lock()
	r.dbErrs[db] = e
	r.mu.Unlock()
	return e, nil
}

// warn records a note on a key that was restored with less than the archive
// holds.
func (r *Restorer) warn(key []byte, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.st.Warnings) < maxMessages {
		if key != nil {
			msg = fmt.Sprintf("key %s: %s", quoteKey(key), msg)
		}
		r.st.Warnings = append(r.st.Warnings, msg)
	}
}

// canLoadRawVersion reports whether a server loads DUMP payloads of RDB
// version v. Redis loads its own version and older; Valkey loads Redis's
// versions up to 11 (Redis 7.2, where they parted) and its own from 80 on.
func canLoadRawVersion(s Server, v int) bool {
	own := s.RDBVersion()
	if own == 0 {
		return true // unknown server: let it decide
	}
	if s.Kind == "valkey" {
		return v <= 11 || v >= 80 && v <= own
	}
	return v <= own
}

// canLoadRaw returns why the target cannot load a raw key's payload, or nil.
func (r *Restorer) canLoadRaw(ri *codec.RawInfo) error {
	if ri == nil {
		return errors.New("a raw value without its description in the archive")
	}
	if !canLoadRawVersion(r.server, ri.RDBVersion) {
		return fmt.Errorf("a %s value kept as a DUMP payload of RDB version %d, which %s (RDB version %d) cannot load: restore it into the server it came from, or a newer one of the same kind", ri.RedisType, ri.RDBVersion, r.server, r.server.RDBVersion())
	}
	return nil
}

// finishRaw restores a TypeRaw key with RESTORE (atomic: the key appears
// whole or not at all). c is its last chunk.
func (r *Restorer) finishRaw(ctx context.Context, st *bigKey, c *codec.Chunk) error {
	mode, val, expired := r.expiry(c)
	if expired {
		return r.count(false, false, true, st.key, nil)
	}
	ttl := int64(0)
	if mode != "" {
		ttl = val
	}
	args := []any{"RESTORE", st.key, ttl, st.raw}
	if r.opt.Overwrite {
		args = append(args, "REPLACE")
	}
	if mode == "PXAT" {
		args = append(args, "ABSTTL")
	}
	err := st.cl.Do(ctx, args...).Err()
	st.raw = nil
	switch {
	case err == nil:
		return r.count(true, false, false, st.key, nil)
	case strings.HasPrefix(err.Error(), "BUSYKEY"):
		return r.count(false, true, false, st.key, nil)
	case isFatal(err) || !isRedisReplyError(err):
		return wrapRedis("RESTORE", err)
	}
	what := "a " + c.Raw.RedisType + " value"
	if c.Raw.Module != "" {
		what += " of module " + c.Raw.Module
	}
	return r.count(false, false, false, st.key, fmt.Errorf("%s refused %s kept as a DUMP payload (is the module loaded there?): %v", r.server, what, err))
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

// restoreDelivery recreates a group's consumers and pending entries on the
// stream tmp: XGROUP CREATECONSUMER for each consumer, then XCLAIM ... TIME
// RETRYCOUNT FORCE JUSTID for each pending entry, which gives it its owner,
// delivery time and delivery count. It returns how many pending entries
// could not be restored (their stream entry was deleted: XCLAIM creates
// none for those). The consumers' seen and active times become the time of
// the restore: no command sets them.
func (r *Restorer) restoreDelivery(ctx context.Context, cl *redis.Client, tmp []byte, g codec.StreamGroup) (int, error) {
	if len(g.Consumers) == 0 && len(g.Pending) == 0 {
		return 0, nil
	}
	const per = 1000
	lost := 0
	pipe := cl.Pipeline()
	var claims []*redis.Cmd
	exec := func() error {
		if pipe.Len() == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		if err != nil {
			return err
		}
		for _, cmd := range claims {
			if ids, _ := cmd.Val().([]any); len(ids) == 0 {
				lost++
			}
		}
		claims = claims[:0]
		return nil
	}
	for _, cons := range g.Consumers {
		pipe.Do(ctx, "XGROUP", "CREATECONSUMER", tmp, g.Name, cons.Name)
		if pipe.Len() >= per {
			if err := exec(); err != nil {
				return 0, err
			}
		}
	}
	for _, p := range g.Pending {
		claims = append(claims, pipe.Do(ctx, "XCLAIM", tmp, g.Name, p.Consumer, 0, p.ID,
			"TIME", p.DeliveryTime, "RETRYCOUNT", p.DeliveryCount, "FORCE", "JUSTID"))
		if pipe.Len() >= per {
			if err := exec(); err != nil {
				return 0, err
			}
		}
	}
	if err := exec(); err != nil {
		return 0, err
	}
	return lost, nil
}

// ErrNoRoom is a target without the memory a restore needs.
var ErrNoRoom = errors.New("not enough memory on the target")

// CheckMemory refuses a restore that needs about need bytes (the source's
// dataset memory at backup time; 0 when unknown: nothing is checked) into
// a server that has less room: below its maxmemory, or, without one, below
// the machine's memory. A server that fills up under noeviction refuses
// every write, production's included, so this runs before the first one.
func CheckMemory(ctx context.Context, base *redis.Options, need int64) error {
	if need <= 0 {
		return nil
	}
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "memory")
	if err != nil {
		return err
	}
	used, _ := strconv.ParseInt(info["used_memory"], 10, 64)
	limit, _ := strconv.ParseInt(info["maxmemory"], 10, 64)
	what := "maxmemory"
	if limit == 0 {
		limit, _ = strconv.ParseInt(info["total_system_memory"], 10, 64)
		what = "the machine's memory"
	}
	if limit > 0 && used+need > limit {
		return fmt.Errorf("%w: the archive's data took about %s on its server, and the target uses %s of %s (%s): free memory or raise maxmemory first, or pass --ignore-memory", ErrNoRoom, mb(need), mb(used), mb(limit), what)
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// tempSuffix marks the keys a restore builds big keys under (tempName).
const tempSuffix = ":redback-restore-tmp"

// tempSafetyTTL is the TTL every flush of a big key's writes gives its
// temporary key, so that a killed restore leaves nothing for ever.
const tempSafetyTTL = time.Hour

// tempStaleAfter: a temporary key not written for this long belongs to a
// restore that is gone (a live one refreshes tempSafetyTTL at every flush).
const tempStaleAfter = 15 * time.Minute

// isTempKey reports whether key is one a restore builds under: it ends in
// tempSuffix, or tempSuffix and "-N" (see tempName).
func isTempKey(key []byte) bool {
	i := bytes.LastIndex(key, []byte(tempSuffix))
	if i < 0 {
		return false
	}
	rest := key[i+len(tempSuffix):]
	if len(rest) == 0 {
		return true
	}
	if rest[0] != '-' || len(rest) == 1 {
		return false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// sweepTemp deletes the temporary keys that killed restores left in one
// database: those named by tempName whose safety TTL shows no write for
// tempStaleAfter. It returns how many it deleted; errors only end the sweep
// (debris is not worth failing a restore for).
func sweepTemp(ctx context.Context, cl *redis.Client) int {
	n := 0
	var cursor uint64
	for {
		keys, next, err := cl.Scan(ctx, cursor, "*"+tempSuffix+"*", 1000).Result()
		if err != nil {
			return n
		}
		if len(keys) > 0 {
			pipe := cl.Pipeline()
			ttls := make([]*redis.DurationCmd, len(keys))
			for i, k := range keys {
				ttls[i] = pipe.PTTL(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return n
			}
			for i, k := range keys {
				d := ttls[i].Val()
				if isTempKey([]byte(k)) && d > 0 && d <= tempSafetyTTL-tempStaleAfter {
					if cl.Del(ctx, k).Val() == 1 {
						n++
					}
				}
			}
		}
		cursor = next
		if cursor == 0 {
			return n
		}
	}
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
func (r *Restorer) writeFieldTTLHashes(ctx context.Context, db int, cl *redis.Client, batch []*codec.Chunk) error {
	if !r.server.FieldTTLs() {
		for _, c := range batch {
			if err := r.count(false, false, false, c.Key, r.noFieldTTLs()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.loadScripts(ctx, db, cl); err != nil {
		return err
	}
	over := "0"
	if r.opt.Overwrite {
		over = "1"
	}
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
		r.mu.Lock()
		r.st.FieldsExpired += int64(dropped)
		r.mu.Unlock()
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
			if err := r.count(false, false, true, c.Key, nil); err != nil {
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

// hasNegativeZero reports whether a zset chunk's scores (every second item)
// hold -0.
func hasNegativeZero(items [][]byte) bool {
	for i := 1; i < len(items); i += 2 {
		s := items[i]
		if len(s) > 0 && s[0] == '-' {
			if f, err := strconv.ParseFloat(string(s), 64); err == nil && f == 0 {
				return true
			}
		}
	}
	return false
}

// skiplistPad returns a random member longer than any
// zset-max-listpack-value (64 bytes by default) would keep in a listpack.
func skiplistPad() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return []byte("redback-skiplist-pad-" + hex.EncodeToString(b) + strings.Repeat("-", 600))
}

// execWrites sends a pipeline of writes (nothing when it is empty). A
// server's reply to one command comes back as execErr, for the commands to
// be counted one by one (a command left without a reply never ran: see
// writeSmall); any other failure is err, which stops the restore.
func execWrites(ctx context.Context, pipe redis.Pipeliner) (execErr, err error) {
	if pipe.Len() == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if !isRedisReplyError(err) {
			return nil, wrapRedis("write", err)
		}
		return err, nil
	}
	return nil, nil
}
