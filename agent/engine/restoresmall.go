// Small keys written in pipelines: SET for strings, RESTORE of a payload
// built here for the other types, a script where the server refuses RESTORE
// or a payload; and the dry run's checks.

package engine

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// restoreScript writes one small non-string key atomically.
// KEYS[1] key. ARGV: overwrite (0/1), command, expiry mode ("", PX, PXAT),
// expiry value, then the command's arguments. The command ZADD-PAD is ZADD
// of a sorted set with a score of -0: its first argument is a member that
// makes the key a skiplist first (a listpack stores -0 as 0), removed at
// the end.
const restoreScript = `
local k = KEYS[1]
if ARGV[1] == '0' then
  if redis.call('EXISTS', k) == 1 then return 0 end
else
  redis.call('UNLINK', k)
end
if ARGV[2] == 'ZADD-PAD' then
  redis.call('ZADD', k, 0, ARGV[5])
  redis.call('ZADD', k, unpack(ARGV, 6))
  redis.call('ZREM', k, ARGV[5])
else
  redis.call(ARGV[2], k, unpack(ARGV, 5))
end
if ARGV[3] == 'PX' then redis.call('PEXPIRE', k, ARGV[4])
elseif ARGV[3] == 'PXAT' then redis.call('PEXPIREAT', k, ARGV[4]) end
return 1
`

var restoreLua = redis.NewScript(restoreScript)

// writeSmall writes a batch of single-chunk keys of one database in one
// pipeline: strings with SET, other types with RESTORE of a payload built
// here (one atomic native command each; BUSYKEY means the key exists), or,
// where the server refuses RESTORE or a payload, with a script.
func (r *Restorer) writeSmall(ctx context.Context, batch []*codec.Chunk, src ChunkSource) error {
	defer func() {
		for _, c := range batch {
			src.Release(c)
		}
	}()
	db := r.targetDB(batch[0].DB)
	cl := r.client(db)
	if derr, err := r.dbUsable(ctx, db); err != nil {
		return err
	} else if derr != nil {
		for _, c := range batch {
			if err := r.record(c.Key, keyFailed, derr); err != nil {
				return err
			}
		}
		return nil
	}
	if r.opt.DryRun {
		return r.dryRun(ctx, cl, batch)
	}
	useRestore := r.rdbVersion > 0 && !r.restoreRefused.Load()
	pipe := cl.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	viaRestore := make([]bool, len(batch))
	// One buffer holds every payload of the batch; sized up front so that
	// Encode never copies what it holds.
	est := 0
	for _, c := range batch {
		if c.Type != codec.TypeString {
			est += 20
			for _, it := range c.Items {
				est += len(it) + 9
			}
		}
	}
	payloads := make([]byte, 0, est)
	enc := rdbvalue.Encoder{Limits: r.limits}
	var scripted []*codec.Chunk  // keys for the script path
	var fieldTTLs []*codec.Chunk // hashes whose fields carry expiry times
	for i, c := range batch {
		mode, val, expired := r.expiry(c)
		if expired || len(c.Items) == 0 {
			continue // counted below
		}
		if c.Type == codec.TypeString {
			args := make([]any, 0, 6)
			args = append(args, "SET", c.Key, c.Items[0])
			if mode != "" {
				args = append(args, mode, val)
			}
			if !r.opt.Overwrite {
				args = append(args, "NX")
			}
			cmds[i] = pipe.Do(ctx, args...)
			continue
		}
		if c.FieldExpire != nil {
			fieldTTLs = append(fieldTTLs, c) // counted there
			continue
		}
		if !useRestore {
			scripted = append(scripted, c)
			continue
		}
		start := len(payloads)
		var err error
		payloads, _, err = enc.EncodeNative(payloads, rdbKind(c.Type), c.Items, r.rdbVersion)
		if err != nil {
			scripted = append(scripted, c) // e.g. a repeated member: the script copes
			continue
		}
		cmds[i] = pipe.Do(ctx, r.restoreArgs(c.Key, payloads[start:len(payloads):len(payloads)], mode, val)...)
		viaRestore[i] = true
	}
	execErr, err := execWrites(ctx, pipe)
	if err != nil {
		return err
	}
	for i, c := range batch {
		if cmds[i] == nil {
			var err error
			_, _, expired := r.expiry(c)
			switch {
			case expired:
				err = r.record(c.Key, keyExpired, nil)
			case c.Type != codec.TypeString && len(c.Items) > 0:
				continue // on the script or field TTL path
			default:
				err = r.record(c.Key, keyFailed, errors.New("empty value in archive"))
			}
			if err != nil {
				return err
			}
			continue
		}
		v, err := writeReply(cmds[i], execErr)
		if err != nil && err != redis.Nil {
			switch {
			case viaRestore[i] && hasCode(err, "BUSYKEY"):
				if cerr := r.record(c.Key, keySkipped, nil); cerr != nil {
					return cerr
				}
				continue
			case viaRestore[i] && (errMessageIs(err, "unknown command") || redis.IsPermissionError(err)):
				r.restoreRefused.Store(true) // use the script from now on
				scripted = append(scripted, c)
				continue
			case viaRestore[i] && (errMessageIs(err, "Bad data format") || errMessageIs(err, "DUMP payload version")):
				scripted = append(scripted, c)
				continue
			case isFatal(err):
				return wrapRedis("write", err)
			}
			if cerr := r.record(c.Key, keyFailed, err); cerr != nil {
				return cerr
			}
			continue
		}
		done := err == nil && (v == "OK" || v == int64(1))
		if cerr := r.record(c.Key, restoredIf(done), nil); cerr != nil {
			return cerr
		}
	}
	if len(fieldTTLs) > 0 {
		if err := r.writeFieldTTLHashes(ctx, db, cl, fieldTTLs); err != nil {
			return err
		}
	}
	if len(scripted) > 0 {
		return r.writeScripted(ctx, db, cl, scripted)
	}
	return nil
}

// writeScripted writes small non-string keys with the restore script.
func (r *Restorer) writeScripted(ctx context.Context, db int, cl redis.UniversalClient, batch []*codec.Chunk) error {
	if err := r.loadScripts(ctx, db, cl); err != nil {
		return err
	}
	over := r.overwriteArg()
	pipe := cl.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		mode, val, _ := r.expiry(c)
		args := make([]any, 0, 8+len(c.Items))
		cmd := writeCommand(c.Type)
		var pad []byte
		if c.Type == codec.TypeZSet && hasNegativeZero(c.Items) {
			cmd, pad = "ZADD-PAD", skiplistPad()
		}
		args = append(args, "EVALSHA", restoreLua.Hash(), 1, c.Key, over, cmd, mode, val)
		if pad != nil {
			args = append(args, pad)
		}
		args = appendElems(args, c)
		cmds[i] = pipe.Do(ctx, args...)
	}
	execErr, err := execWrites(ctx, pipe)
	if err != nil {
		return err
	}
	for i, c := range batch {
		if err := r.countScripted(c.Key, cmds[i], execErr); err != nil {
			return err
		}
	}
	return nil
}

// countScripted records the outcome of one restore script (1: written, 0:
// the key existed). execErr is the pipeline's error (see writeReply). It
// returns only errors that stop the restore.
func (r *Restorer) countScripted(key []byte, cmd *redis.Cmd, execErr error) error {
	v, err := writeReply(cmd, execErr)
	if err != nil {
		if isFatal(err) {
			return wrapRedis("write", err)
		}
		return r.record(key, keyFailed, err)
	}
	done := v == int64(1)
	return r.record(key, restoredIf(done), nil)
}

func rdbKind(t codec.Type) rdbvalue.Kind {
	switch t {
	case codec.TypeHash:
		return rdbvalue.KindHash
	case codec.TypeList:
		return rdbvalue.KindList
	case codec.TypeSet:
		return rdbvalue.KindSet
	case codec.TypeZSet:
		return rdbvalue.KindZSet
	}
	return rdbvalue.KindString
}

func (r *Restorer) dryRun(ctx context.Context, cl redis.UniversalClient, batch []*codec.Chunk) error {
	pipe := cl.Pipeline()
	cmds := make([]*redis.IntCmd, len(batch))
	for i, c := range batch {
		cmds[i] = pipe.Exists(ctx, string(c.Key))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return wrapRedis("EXISTS", err)
	}
	for i, c := range batch {
		_, _, expired := r.expiry(c)
		exists := cmds[i].Val() == 1
		var err error
		switch {
		case c.FieldExpire != nil && !r.server.FieldTTLs():
			err = r.record(c.Key, keyFailed, r.noFieldTTLs())
		case expired:
			err = r.record(c.Key, keyExpired, nil)
		case exists && !r.opt.Overwrite:
			err = r.record(c.Key, keySkipped, nil)
		default:
			err = r.record(c.Key, keyRestored, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// execWrites sends a pipeline of writes (nothing when it is empty). A
// server's reply to one command comes back as execErr, for the commands to
// be counted one by one (see writeReply); any other failure is err, which
// stops the restore.
func execWrites(ctx context.Context, pipe redis.Pipeliner) (execErr, err error) {
	if pipe.Len() == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if !failsOneKey(err) {
			return nil, wrapRedis("write", err)
		}
		return err, nil
	}
	return nil, nil
}

// writeReply returns the reply of one command of a pipeline that execWrites
// sent; execErr is what execWrites returned. go-redis reports a failed
// connection setup (SELECT) as the pipeline's error and leaves every
// command without a reply: none of them ran, and each gets that error.
func writeReply(cmd *redis.Cmd, execErr error) (any, error) {
	v, err := cmd.Result()
	if err == nil && v == nil && execErr != nil {
		err = execErr
	}
	return v, err
}

// restoreArgs is RESTORE key ttl payload [REPLACE] [ABSTTL], for a key
// whose expiry r.expiry gave as mode and val.
func (r *Restorer) restoreArgs(key, payload []byte, mode string, val int64) []any {
	ttl := int64(0)
	if mode != "" {
		ttl = val
	}
	args := make([]any, 0, 6)
	args = append(args, "RESTORE", key, ttl, payload)
	if r.opt.Overwrite {
		args = append(args, "REPLACE")
	}
	if mode == "PXAT" {
		args = append(args, "ABSTTL")
	}
	return args
}
