package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
		r.st.Warnings = append(r.st.Warnings, fmt.Sprintf("key %s: %s", quoteKey(key), msg))
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
	var shift int64
	if r.opt.TTL == TTLRelative && !r.opt.ArchiveTime.IsZero() {
		shift = now - r.opt.ArchiveTime.UnixMilli()
	}
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
			st.pipe.Do(ctx, args...)
			n++
		}
		args = append(args[:0], "HSET", st.tmp)
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
