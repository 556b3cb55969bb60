// Big keys, streams and raw keys: written chunk by chunk under a temporary
// name, then moved into place by the finish script (raw keys: one RESTORE).

package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
)

// finishScript moves a key built under a temporary name into place.
// KEYS[1] temporary name, KEYS[2] key. ARGV: overwrite, expiry mode, value.
const finishScript = `
if ARGV[1] == '0' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
if ARGV[2] == 'PX' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
elseif ARGV[2] == 'PXAT' then redis.call('PEXPIREAT', KEYS[1], ARGV[3])
else redis.call('PERSIST', KEYS[1]) end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
`

var finishLua = redis.NewScript(finishScript)

// bigKey is the state of the key that runBig is writing.
type bigKey struct {
	key     []byte
	cl      redis.UniversalClient
	tmp     []byte
	skip    bool  // existed (overwrite off), or a dry run: drain only
	exists  bool  // for the count of a skipped key
	failed  error // a per-key write error: drain, then count it
	wrote   bool
	pipe    redis.Pipeliner
	pending []*codec.Chunk
	bytes   int
	// raw accumulates the payload of a TypeRaw key (RESTORE needs it whole).
	raw []byte
	// fieldsExpired counts hash fields dropped because their expiry passed.
	fieldsExpired int
	// pad is a member added to a sorted set being built so that it is a
	// skiplist from before its first score of -0 (a listpack stores -0 as
	// 0); it is removed before the key is moved into place.
	pad []byte
}

// runBig writes the keys that arrive in several chunks (and streams), in
// its own goroutine so that reading the archive never waits for Redis. Each
// key is built under a temporary name in the same hash slot, with a safety
// TTL so that a crash leaves no permanent debris, then moved into place
// atomically; chunks are pipelined several at a time.
func (r *Restorer) runBig(ctx context.Context, in <-chan *codec.Chunk, src ChunkSource) error {
	var st *bigKey
	var ferr error
	for c := range in {
		if ferr != nil {
			src.Release(c)
			continue
		}
		if c.First {
			st, ferr = r.startBig(ctx, c)
		}
		if ferr == nil && st != nil {
			ferr = r.addBig(ctx, st, c, src)
		}
	}
	return ferr
}

func (r *Restorer) startBig(ctx context.Context, c *codec.Chunk) (*bigKey, error) {
	st := &bigKey{key: append([]byte(nil), c.Key...)}
	db := r.targetDB(c.DB)
	st.cl = r.client(db)
	if derr, err := r.dbUsable(ctx, db); err != nil {
		return nil, err
	} else if derr != nil {
		st.failed = derr
		return st, nil
	}
	if c.Type == codec.TypeRaw {
		if err := r.canLoadRaw(c.Raw); err != nil {
			st.failed = err
			return st, nil
		}
	}
	if r.opt.DryRun || !r.opt.Overwrite {
		n, err := st.cl.Exists(ctx, string(st.key)).Result()
		if err != nil {
			return nil, wrapRedis("EXISTS", err)
		}
		st.exists = n == 1
		if st.exists || r.opt.DryRun {
			st.skip = true
			return st, nil
		}
	}
	st.tmp = tempName(st.key)
	st.pipe = st.cl.Pipeline()
	st.pipe.Del(ctx, string(st.tmp))
	return st, nil
}

// addBig queues one chunk and, at the key's last chunk, finishes the key.
// It returns only errors that must stop the restore.
func (r *Restorer) addBig(ctx context.Context, st *bigKey, c *codec.Chunk, src ChunkSource) error {
	if c.FieldExpire != nil && !r.server.FieldTTLs() && st.failed == nil {
		if st.pipe != nil && !st.skip {
			r.cleanup(ctx, st)
		}
		st.failed = r.noFieldTTLs()
	}
	if st.skip || st.failed != nil {
		if !c.Last {
			src.Release(c)
			return nil
		}
		defer src.Release(c)
		_, _, expired := r.expiry(c)
		switch {
		case st.failed != nil:
			return r.record(st.key, keyFailed, st.failed)
		case expired:
			return r.record(st.key, keyExpired, nil)
		case r.opt.DryRun:
			// As the real run: an existing key is replaced with overwrite,
			// else skipped.
			return r.record(st.key, restoredIf(!st.exists || r.opt.Overwrite), nil)
		}
		return r.record(st.key, keySkipped, nil)
	}
	if c.Type == codec.TypeRaw {
		for _, p := range c.Items {
			st.raw = append(st.raw, p...)
		}
		if !c.Last {
			src.Release(c)
			return nil
		}
		defer src.Release(c)
		return r.finishRaw(ctx, st, c)
	}
	n, err := r.queueChunk(ctx, st, c)
	if err != nil {
		return err
	}
	if n > 0 {
		st.wrote = true
	}
	st.pending = append(st.pending, c)
	for _, it := range c.Items {
		st.bytes += len(it)
	}
	// flushBig releases the chunks it sent (all but a last one): c must
	// not be touched after it unless it is the last.
	last := c.Last
	if st.bytes >= 2<<20 || len(st.pending) >= 8 || last {
		if err := r.flushBig(ctx, st, src); err != nil {
			return err
		}
	}
	if !last {
		return nil
	}
	defer src.Release(c)
	if st.failed != nil {
		return r.record(st.key, keyFailed, st.failed)
	}
	return r.finishBig(ctx, st, c)
}

// flushBig sends the queued writes of st and releases their chunks, except
// the last one (finishBig reads its TTL and stream metadata).
func (r *Restorer) flushBig(ctx context.Context, st *bigKey, src ChunkSource) error {
	defer func() {
		last := st.pending[len(st.pending)-1]
		for _, c := range st.pending[:len(st.pending)-1] {
			src.Release(c)
		}
		if !last.Last {
			src.Release(last)
		}
		st.pending = st.pending[:0]
		st.bytes = 0
	}()
	if st.pipe.Len() == 0 {
		return nil
	}
	st.pipe.PExpire(ctx, string(st.tmp), tempSafetyTTL)
	_, err := st.pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	r.cleanup(ctx, st)
	if !failsOneKey(err) {
		return wrapRedis("write", err)
	}
	st.failed = err
	return nil
}

func (r *Restorer) cleanup(ctx context.Context, st *bigKey) {
	_ = st.cl.Del(context.WithoutCancel(ctx), string(st.tmp)).Err()
}

// finishBig sets the TTL (and a stream's metadata) and moves the key into
// place. c is the key's last chunk; its writes are already sent.
func (r *Restorer) finishBig(ctx context.Context, st *bigKey, c *codec.Chunk) error {
	mode, val, expired := r.expiry(c)
	if expired {
		r.cleanup(ctx, st)
		return r.record(st.key, keyExpired, nil)
	}
	if c.Type == codec.TypeStream {
		if err := r.finishStream(ctx, st.cl, st.tmp, c, st.wrote); err != nil {
			r.cleanup(ctx, st)
			if !failsOneKey(err) {
				return err
			}
			return r.record(st.key, keyFailed, err)
		}
		st.wrote = true
	}
	if !st.wrote {
		r.cleanup(ctx, st)
		if st.fieldsExpired > 0 {
			return r.record(st.key, keyExpired, nil) // every field expired
		}
		return r.record(st.key, keyFailed, errors.New("empty value in archive"))
	}
	if st.fieldsExpired > 0 {
		r.addStat(&r.st.FieldsExpired, st.fieldsExpired)
	}
	over := r.overwriteArg()
	if st.pad != nil {
		if err := st.cl.ZRem(ctx, string(st.tmp), st.pad).Err(); err != nil {
			r.cleanup(ctx, st)
			if !failsOneKey(err) {
				return wrapRedis("finish", err)
			}
			return r.record(st.key, keyFailed, err)
		}
	}
	res, err := finishLua.Run(ctx, st.cl, []string{string(st.tmp), string(st.key)}, over, mode, val).Int64()
	if err != nil {
		r.cleanup(ctx, st)
		if !failsOneKey(err) {
			return wrapRedis("finish", err)
		}
		return r.record(st.key, keyFailed, err)
	}
	return r.record(st.key, restoredIf(res == 1), nil)
}

// queueChunk queues the writes of one chunk to the key's temporary name and
// returns how many.
func (r *Restorer) queueChunk(ctx context.Context, st *bigKey, c *codec.Chunk) (int, error) {
	pipe, tmp := st.pipe, st.tmp
	if c.Type == codec.TypeHash && c.FieldExpire != nil {
		return r.queueFieldTTLs(ctx, st, c), nil
	}
	switch c.Type {
	case codec.TypeString:
		n := 0
		for _, p := range c.Items {
			pipe.Do(ctx, "APPEND", tmp, p)
			n++
		}
		if c.First && n == 0 {
			pipe.Do(ctx, "SET", tmp, "")
			n++
		}
		return n, nil
	case codec.TypeStream:
		for _, e := range c.Entries {
			args := make([]any, 0, 3+len(e.Fields))
			args = append(args, "XADD", tmp, e.ID)
			for _, f := range e.Fields {
				args = append(args, f)
			}
			pipe.Do(ctx, args...)
		}
		return len(c.Entries), nil
	}
	if len(c.Items) == 0 {
		return 0, nil
	}
	n := 0
	if c.Type == codec.TypeZSet && st.pad == nil && hasNegativeZero(c.Items) {
		st.pad = skiplistPad()
		pipe.Do(ctx, "ZADD", tmp, 0, st.pad)
		n++
	}
	// Split so that no command carries more than ~2000 arguments.
	const per = 2000
	for start := 0; start < len(c.Items); start += per {
		end := min(start+per, len(c.Items))
		part := codec.Chunk{Type: c.Type, Items: c.Items[start:end]}
		args := make([]any, 0, 2+end-start)
		args = append(args, writeCommand(c.Type), tmp)
		args = appendElems(args, &part)
		pipe.Do(ctx, args...)
		n++
	}
	return n, nil
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
		return r.record(st.key, keyExpired, nil)
	}
	err := st.cl.Do(ctx, r.restoreArgs(st.key, st.raw, mode, val)...).Err()
	st.raw = nil
	switch {
	case err == nil:
		return r.record(st.key, keyRestored, nil)
	case hasCode(err, "BUSYKEY"):
		return r.record(st.key, keySkipped, nil)
	case !failsOneKey(err):
		return wrapRedis("RESTORE", err)
	}
	what := "a " + c.Raw.RedisType + " value"
	if c.Raw.Module != "" {
		what += " of module " + c.Raw.Module
	}
	return r.record(st.key, keyFailed, fmt.Errorf("%s refused %s kept as a DUMP payload (is the module loaded there?): %v", r.server, what, err))
}
