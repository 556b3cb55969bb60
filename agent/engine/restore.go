package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
	"github.com/redback-dev/redback/codec"
)

// ChunkSource yields the chunks of an archive. *codec.Reader satisfies it.
// Next returns io.EOF after the last chunk of a complete archive.
type ChunkSource interface {
	Next() (*codec.Chunk, error)
	Release(c *codec.Chunk)
}

// TTLMode says how recorded expiry times are restored.
type TTLMode int

const (
	// TTLRelative restores the time to live as recorded (the seed's promise):
	// a key that had 60 s left has 60 s left after the restore.
	TTLRelative TTLMode = iota
	// TTLAbsolute restores the absolute expiry time and skips keys whose
	// expiry passed since the backup.
	TTLAbsolute
)

// ParseTTLMode parses "relative" or "absolute".
func ParseTTLMode(s string) (TTLMode, error) {
	switch strings.ToLower(s) {
	case "", "relative":
		return TTLRelative, nil
	case "absolute":
		return TTLAbsolute, nil
	}
	return 0, fmt.Errorf("ttl mode %q: want relative or absolute", s)
}

// WriteMode says how small non-string keys are written.
type WriteMode int

const (
	// WriteAuto writes them with RESTORE and a payload built here, falling
	// back to WriteScript when the server refuses it.
	WriteAuto WriteMode = iota
	// WriteScript writes them with a script (EXISTS or UNLINK, then HSET,
	// RPUSH, SADD or ZADD, then the TTL, atomically).
	WriteScript
)

// RestoreOptions tune a restore. Zero values take the defaults.
type RestoreOptions struct {
	// Overwrite replaces existing keys (each atomically). Without it an
	// existing key is skipped and never modified.
	Overwrite bool
	// DryRun reads the whole archive and checks which keys exist, writing
	// nothing.
	DryRun bool
	TTL    TTLMode
	// DBMap maps an archive's database to the target database; databases
	// not in the map keep their number.
	DBMap map[int]int
	// ArchiveTime is when the backup was taken; with TTLAbsolute it dates
	// keys whose archive did not record an absolute expiry (seed archives).
	ArchiveTime time.Time
	// BatchKeys is the number of small keys written in one pipeline.
	BatchKeys int
	// Workers is the number of pipelines in flight.
	Workers int
	// MaxErrors stops the restore after that many failed keys (0: 1000;
	// negative: never).
	MaxErrors int
	// KeysPerSecond caps the write rate (0: no cap).
	KeysPerSecond float64
	// WriteMode says how small keys are written.
	WriteMode WriteMode
	// Progress, when set, is called after every batch.
	Progress func(Progress)
	// Now is the clock (tests).
	Now func() time.Time
}

func (o *RestoreOptions) defaults() {
	if o.BatchKeys <= 0 {
		o.BatchKeys = 500
	}
	if o.Workers <= 0 {
		o.Workers = 3
	}
	if o.MaxErrors == 0 {
		o.MaxErrors = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// RestoreStats is what a restore did. The first four are the seed's counts.
type RestoreStats struct {
	Restored int64    // keys written (or, in a dry run, that would be)
	Skipped  int64    // keys that existed (overwrite off) or had expired
	Errors   int64    // keys that failed
	Total    int64    // keys in the archive
	Expired  int64    // of Skipped: expired since the backup (TTLAbsolute)
	Messages []string // the first error messages
	// Warnings are the first notes on keys restored with less than the
	// archive holds (pending entries whose stream entry was deleted).
	Warnings []string
	// PendingLost counts stream pending entries not restored because their
	// entry is no longer in the stream (XCLAIM cannot create those).
	PendingLost int64
	// FieldsExpired counts hash fields not restored because their expiry
	// passed.
	FieldsExpired int64
}

const maxMessages = 10

// ErrTooManyErrors stops a restore whose keys keep failing.
var ErrTooManyErrors = errors.New("too many keys failed")

// Restorer writes archive keys into one Redis server.
type Restorer struct {
	base *redis.Options
	opt  RestoreOptions

	mu      sync.Mutex
	clients map[int]*redis.Client
	loaded  map[int]bool

	// rdbVersion is the RDB version of RESTORE payloads for the target (0:
	// RESTORE is not used); restoreRefused is set when the server refuses it.
	rdbVersion     int
	restoreRefused atomic.Bool
	st             RestoreStats
	// server is the target's kind and version (read at the start).
	server Server
	// dbErrs holds, per target database, why it cannot be written (a
	// database the server does not have), or nil once it was checked.
	dbErrs map[int]error
}

// NewRestorer returns a Restorer for the server base points at.
func NewRestorer(base *redis.Options, opt RestoreOptions) *Restorer {
	opt.defaults()
	return &Restorer{base: base, opt: opt, clients: map[int]*redis.Client{}, loaded: map[int]bool{}, dbErrs: map[int]error{}}
}

// loadScripts loads the restore scripts once per database connection pool.
func (r *Restorer) loadScripts(ctx context.Context, db int, cl *redis.Client) error {
	r.mu.Lock()
	done := r.loaded[db]
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := restoreLua.Load(ctx, cl).Err(); err != nil {
		return wrapRedis("SCRIPT LOAD", err)
	}
	if r.server.FieldTTLs() {
		if err := restoreHashLua.Load(ctx, cl).Err(); err != nil {
			return wrapRedis("SCRIPT LOAD", err)
		}
	}
	r.mu.Lock()
	r.loaded[db] = true
	r.mu.Unlock()
	return nil
}

func (r *Restorer) client(db int) *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[db]
	if !ok {
		c = newWriteClient(r.base, db, r.opt.Workers+2)
		r.clients[db] = c
	}
	return c
}

func (r *Restorer) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		_ = c.Close()
	}
	r.clients = map[int]*redis.Client{}
}

// CheckTarget refuses targets on which a restore would fail or do harm: a
// read-only replica, or a server with a maxmemory that evicts keys when
// full (allkeys-*, and volatile-*, which evicts the keys that have a TTL): a
// restore would silently evict production keys. allowEviction skips the
// second test.
func CheckTarget(ctx context.Context, base *redis.Options, allowEviction bool) error {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "replication", "memory")
	if err != nil {
		return err
	}
	if info["role"] == "slave" {
		return errors.New("the target Redis is a read-only replica: restore into its primary")
	}
	policy := info["maxmemory_policy"]
	if !allowEviction && info["maxmemory"] != "0" && (strings.HasPrefix(policy, "allkeys-") || strings.HasPrefix(policy, "volatile-")) {
		return fmt.Errorf("the target Redis has maxmemory-policy %s: a restore could evict existing keys; set it to noeviction first (and make room), or pass --allow-eviction", policy)
	}
	return nil
}

// Restore writes every key of src. It stops at the first read error (a
// corrupt or truncated archive), a lost connection, ctx's end, or too many
// failed keys; the stats say what was done until then. A key is never left
// half-written: small keys are written by one atomic command each, big keys
// are built under a temporary name and renamed.
func (r *Restorer) Restore(ctx context.Context, src ChunkSource) (st RestoreStats, err error) {
	defer recoverTo(&err)
	defer r.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	info, err := serverInfo(ctx, r.client(r.base.DB), "server")
	if err != nil {
		return RestoreStats{}, err
	}
	r.server = serverOf(info)
	if r.opt.WriteMode == WriteAuto {
		r.rdbVersion = rdbvalue.RDBVersionFor(info["redis_version"])
	}

	var lim *rate.Limiter
	if r.opt.KeysPerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(r.opt.KeysPerSecond), max(int(r.opt.KeysPerSecond), r.opt.BatchKeys))
	}

	jobs := make(chan []*codec.Chunk, r.opt.Workers)
	errc := make(chan error, r.opt.Workers+2)
	var wg sync.WaitGroup
	for i := 0; i < r.opt.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range jobs {
				if err := guard(func() error { return r.writeSmall(ctx, batch, src) })(); err != nil {
					errc <- err
					cancel()
					// keep draining so the reader never blocks
					for range jobs {
					}
					return
				}
			}
		}()
	}

	big := make(chan *codec.Chunk, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := guard(func() error { return r.runBig(ctx, big, src) })(); err != nil {
			errc <- err
			cancel()
			for range big {
			}
		}
	}()
	readErr := r.feed(ctx, src, jobs, big, lim)
	close(jobs)
	close(big)
	wg.Wait()
	close(errc)
	var werrs []error
	for e := range errc {
		werrs = append(werrs, e)
	}
	werr := rootCause(werrs...)
	st = r.stats()
	switch {
	case werr != nil:
		return st, werr
	case readErr != nil:
		return st, readErr
	}
	return st, nil
}

func (r *Restorer) stats() RestoreStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Messages = append([]string(nil), r.st.Messages...)
	st.Warnings = append([]string(nil), r.st.Warnings...)
	return st
}

func (r *Restorer) targetDB(db int) int {
	if to, ok := r.opt.DBMap[db]; ok {
		return to
	}
	return db
}

// feed reads the archive: small keys go to the workers in batches, big keys
// are written here, chunk by chunk, as they arrive.
func (r *Restorer) feed(ctx context.Context, src ChunkSource, jobs chan<- []*codec.Chunk, big chan<- *codec.Chunk, lim *rate.Limiter) error {
	batch := make([]*codec.Chunk, 0, r.opt.BatchKeys)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if lim != nil {
			if err := lim.WaitN(ctx, len(batch)); err != nil {
				return err
			}
		}
		select {
		case jobs <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch = make([]*codec.Chunk, 0, r.opt.BatchKeys)
		r.report()
		return nil
	}
	for {
		c, err := src.Next()
		if err == io.EOF {
			return send()
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.First && c.Last && c.Type != codec.TypeStream && c.Type != codec.TypeRaw {
			if len(batch) > 0 && batch[0].DB != c.DB {
				if err := send(); err != nil {
					return err
				}
			}
			batch = append(batch, c)
			if len(batch) >= r.opt.BatchKeys {
				if err := send(); err != nil {
					return err
				}
			}
			continue
		}
		if c.First {
			if err := send(); err != nil {
				return err
			}
		}
		select {
		case big <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *Restorer) report() {
	if r.opt.Progress == nil {
		return
	}
	st := r.stats()
	r.opt.Progress(Progress{KeysDone: st.Total, KeysTotal: -1})
}

// count records the outcome of one key. err is a per-key failure.
func (r *Restorer) count(restored, skipped, expired bool, key []byte, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Total++
	switch {
	case err != nil:
		r.st.Errors++
		if len(r.st.Messages) < maxMessages {
			r.st.Messages = append(r.st.Messages, fmt.Sprintf("key %s: %v", quoteKey(key), err))
		}
		if r.opt.MaxErrors > 0 && r.st.Errors >= int64(r.opt.MaxErrors) {
			return fmt.Errorf("%w (%d); the first: %s", ErrTooManyErrors, r.st.Errors, r.st.Messages[0])
		}
	case expired:
		r.st.Skipped++
		r.st.Expired++
	case skipped:
		r.st.Skipped++
	case restored:
		r.st.Restored++
	}
	return nil
}

// expiry returns how the key's TTL is written: mode "" (none), "PX" or
// "PXAT", and the value; expired is true for a key to skip.
func (r *Restorer) expiry(c *codec.Chunk) (mode string, val int64, expired bool) {
	if !c.HasTTL || c.PTTL <= 0 {
		return "", 0, false
	}
	if r.opt.TTL == TTLRelative {
		return "PX", c.PTTL, false
	}
	at := c.ExpireAt
	if at == 0 {
		if r.opt.ArchiveTime.IsZero() {
			return "PX", c.PTTL, false
		}
		at = r.opt.ArchiveTime.UnixMilli() + c.PTTL
	}
	if at <= r.opt.Now().UnixMilli() {
		return "", 0, true
	}
	return "PXAT", at, false
}

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

var (
	restoreLua = redis.NewScript(restoreScript)
	finishLua  = redis.NewScript(finishScript)
)

func writeCommand(t codec.Type) string {
	switch t {
	case codec.TypeHash:
		return "HSET"
	case codec.TypeList:
		return "RPUSH"
	case codec.TypeSet:
		return "SADD"
	case codec.TypeZSet:
		return "ZADD"
	}
	return ""
}

// appendElems appends a chunk's elements as command arguments (for ZADD:
// score before member).
func appendElems(args []any, c *codec.Chunk) []any {
	if c.Type == codec.TypeZSet {
		for i := 0; i+1 < len(c.Items); i += 2 {
			args = append(args, c.Items[i+1], c.Items[i])
		}
		return args
	}
	for _, it := range c.Items {
		args = append(args, it)
	}
	return args
}

// isFatal reports errors after which no further write can succeed.
func isFatal(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "READONLY") || strings.HasPrefix(msg, "NOPERM") ||
		strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "LOADING") ||
		strings.HasPrefix(msg, "MASTERDOWN")
}

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
			if err := r.count(false, false, false, c.Key, derr); err != nil {
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
	cmds := make([]redis.Cmder, len(batch))
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
		payloads, err = rdbvalue.Encode(payloads, rdbKind(c.Type), c.Items, r.rdbVersion)
		if err != nil {
			scripted = append(scripted, c) // e.g. a repeated member: the script copes
			continue
		}
		args := make([]any, 0, 7)
		ttl := int64(0)
		if mode != "" {
			ttl = val
		}
		args = append(args, "RESTORE", c.Key, ttl, payloads[start:len(payloads):len(payloads)])
		if r.opt.Overwrite {
			args = append(args, "REPLACE")
		}
		if mode == "PXAT" {
			args = append(args, "ABSTTL")
		}
		cmds[i] = pipe.Do(ctx, args...)
		viaRestore[i] = true
	}
	execErr, err := execWrites(ctx, pipe)
	if err != nil {
		return err
	}
	for i, c := range batch {
		if cmds[i] == nil {
			if c.Type != codec.TypeString && len(c.Items) > 0 {
				if _, _, expired := r.expiry(c); !expired {
					continue // on the script path
				}
			}
			var err error
			if _, _, expired := r.expiry(c); expired {
				err = r.count(false, false, true, c.Key, nil)
			} else {
				err = r.count(false, false, false, c.Key, errors.New("empty value in archive"))
			}
			if err != nil {
				return err
			}
			continue
		}
		v, err := cmds[i].(*redis.Cmd).Result()
		if err == nil && v == nil && execErr != nil {
			// go-redis reports a failed connection setup (SELECT) as the
			// pipeline's error and leaves every command without a reply:
			// none of them ran.
			err = execErr
		}
		if err != nil && err != redis.Nil {
			msg := err.Error()
			switch {
			case viaRestore[i] && strings.HasPrefix(msg, "BUSYKEY"):
				if cerr := r.count(false, true, false, c.Key, nil); cerr != nil {
					return cerr
				}
				continue
			case viaRestore[i] && (strings.Contains(msg, "unknown command") || strings.HasPrefix(msg, "NOPERM")):
				r.restoreRefused.Store(true) // use the script from now on
				scripted = append(scripted, c)
				continue
			case viaRestore[i] && (strings.Contains(msg, "Bad data format") || strings.Contains(msg, "payload version")):
				scripted = append(scripted, c)
				continue
			case isFatal(err):
				return wrapRedis("write", err)
			}
			if cerr := r.count(false, false, false, c.Key, err); cerr != nil {
				return cerr
			}
			continue
		}
		done := err == nil && (v == "OK" || v == int64(1))
		if cerr := r.count(done, !done, false, c.Key, nil); cerr != nil {
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
func (r *Restorer) writeScripted(ctx context.Context, db int, cl *redis.Client, batch []*codec.Chunk) error {
	if err := r.loadScripts(ctx, db, cl); err != nil {
		return err
	}
	over := "0"
	if r.opt.Overwrite {
		over = "1"
	}
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
// the key existed). execErr is the pipeline's error: a command without a
// reply never ran (see writeSmall). It returns only errors that stop the
// restore.
func (r *Restorer) countScripted(key []byte, cmd *redis.Cmd, execErr error) error {
	v, err := cmd.Result()
	if err == nil && v == nil && execErr != nil {
		err = execErr
	}
	if err != nil {
		if isFatal(err) {
			return wrapRedis("write", err)
		}
		return r.count(false, false, false, key, err)
	}
	done := v == int64(1)
	return r.count(done, !done, false, key, nil)
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

// isRedisReplyError reports whether err is a server's reply to one command
// (pipelines return the first of those; the others are on their commands).
func isRedisReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !isFatal(err)
}

func (r *Restorer) dryRun(ctx context.Context, cl *redis.Client, batch []*codec.Chunk) error {
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
			err = r.count(false, false, false, c.Key, r.noFieldTTLs())
		case expired:
			err = r.count(false, false, true, c.Key, nil)
		case exists && !r.opt.Overwrite:
			err = r.count(false, true, false, c.Key, nil)
		default:
			err = r.count(true, false, false, c.Key, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bigKey is the state of the key that runBig is writing.
type bigKey struct {
	key     []byte
	cl      *redis.Client
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
			return r.count(false, false, false, st.key, st.failed)
		case r.opt.DryRun:
			// As the real run: an existing key is replaced with overwrite,
			// else skipped.
			write := !expired && (!st.exists || r.opt.Overwrite)
			return r.count(write, !expired && !write, expired, st.key, nil)
		}
		return r.count(false, !expired, expired, st.key, nil)
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
		return r.count(false, false, false, st.key, st.failed)
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
	if isFatal(err) || !isRedisReplyError(err) {
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
		return r.count(false, false, true, st.key, nil)
	}
	if c.Type == codec.TypeStream {
		if err := r.finishStream(ctx, st.cl, st.tmp, c, st.wrote); err != nil {
			r.cleanup(ctx, st)
			if isFatal(err) || !isRedisReplyError(err) {
				return err
			}
			return r.count(false, false, false, st.key, err)
		}
		st.wrote = true
	}
	if !st.wrote {
		r.cleanup(ctx, st)
		if st.fieldsExpired > 0 {
			return r.count(false, false, true, st.key, nil) // every field expired
		}
		return r.count(false, false, false, st.key, errors.New("empty value in archive"))
	}
	if st.fieldsExpired > 0 {
		r.mu.Lock()
		r.st.FieldsExpired += int64(st.fieldsExpired)
		r.mu.Unlock()
	}
	over := "0"
	if r.opt.Overwrite {
		over = "1"
	}
	if st.pad != nil {
		if err := st.cl.ZRem(ctx, string(st.tmp), st.pad).Err(); err != nil {
			r.cleanup(ctx, st)
			if isFatal(err) || !isRedisReplyError(err) {
				return wrapRedis("finish", err)
			}
			return r.count(false, false, false, st.key, err)
		}
	}
	res, err := finishLua.Run(ctx, st.cl, []string{string(st.tmp), string(st.key)}, over, mode, val).Int64()
	if err != nil {
		r.cleanup(ctx, st)
		if isFatal(err) || !isRedisReplyError(err) {
			return wrapRedis("finish", err)
		}
		return r.count(false, false, false, st.key, err)
	}
	return r.count(res == 1, res == 0, false, st.key, nil)
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

// finishStream sets a stream's last ID and consumer groups on tmp. An empty
// stream is created first.
func (r *Restorer) finishStream(ctx context.Context, cl *redis.Client, tmp []byte, c *codec.Chunk, hasEntries bool) error {
	m := c.Stream
	if m == nil {
		m = &codec.StreamMeta{EntriesAdded: -1}
	}
	if !hasEntries {
		// XADD with MAXLEN 0 creates the stream and leaves it empty.
		if err := cl.Do(ctx, "XADD", tmp, "MAXLEN", "0", "0-1", "redback", "empty").Err(); err != nil {
			return err
		}
		if err := cl.PExpire(ctx, string(tmp), tempSafetyTTL).Err(); err != nil {
			return err
		}
	}
	if len(m.LastID) > 0 {
		args := []any{"XSETID", tmp, m.LastID}
		if m.EntriesAdded >= 0 {
			args = append(args, "ENTRIESADDED", m.EntriesAdded)
			if len(m.MaxDeletedID) > 0 {
				args = append(args, "MAXDELETEDID", m.MaxDeletedID)
			}
		}
		err := cl.Do(ctx, args...).Err()
		if err != nil && m.EntriesAdded >= 0 && strings.Contains(err.Error(), "syntax") {
			// Before Redis 7: no ENTRIESADDED.
			err = cl.Do(ctx, "XSETID", tmp, m.LastID).Err()
		}
		if err != nil {
			return err
		}
	}
	for _, g := range m.Groups {
		args := []any{"XGROUP", "CREATE", tmp, g.Name, g.LastDeliveredID}
		if g.EntriesRead >= 0 {
			args = append(args, "ENTRIESREAD", g.EntriesRead)
		}
		err := cl.Do(ctx, args...).Err()
		if err != nil && g.EntriesRead >= 0 && strings.Contains(err.Error(), "syntax") {
			err = cl.Do(ctx, "XGROUP", "CREATE", tmp, g.Name, g.LastDeliveredID).Err()
		}
		if err != nil {
			return err
		}
		lost, err := r.restoreDelivery(ctx, cl, tmp, g)
		if err != nil {
			return err
		}
		if lost > 0 {
			r.warn(c.Key, fmt.Sprintf("%d pending entries of group %s refer to entries no longer in the stream and were not restored", lost, strconv.Quote(string(g.Name))))
			r.mu.Lock()
			r.st.PendingLost += int64(lost)
			r.mu.Unlock()
		}
	}
	return nil
}

// tempName returns a name for building key that hashes to key's cluster slot
// and is recognisable as redback's.
func tempName(key []byte) []byte {
	suffix := tempSuffix
	if tag := hashTag(key); tag != nil {
		// The tag decides the slot; appending after it keeps the slot.
		return append(append([]byte(nil), key...), suffix...)
	}
	// No tag: the whole key is hashed. "{key}suffix" has the tag "key" when
	// key holds no '}'.
	if len(key) > 0 && !strings.ContainsRune(string(key), '}') {
		t := make([]byte, 0, len(key)+len(suffix)+2)
		t = append(t, '{')
		t = append(t, key...)
		t = append(t, '}')
		return append(t, suffix...)
	}
	// Rare: a key with '}' and no valid tag. Search a suffix with the slot.
	want := slot(key)
	for i := 0; ; i++ {
		t := append(append([]byte(nil), key...), suffix+"-"+strconv.Itoa(i)...)
		if hashTag(t) == nil && slot(t) == want {
			return t
		}
	}
}

// hashTag returns the hash tag of key ({...}), or nil.
func hashTag(key []byte) []byte {
	s := strings.IndexByte(string(key), '{')
	if s < 0 {
		return nil
	}
	e := strings.IndexByte(string(key[s+1:]), '}')
	if e <= 0 {
		return nil
	}
	return key[s+1 : s+1+e]
}

// slot returns the Redis Cluster hash slot of key.
func slot(key []byte) uint16 {
	if tag := hashTag(key); tag != nil {
		key = tag
	}
	return crc16(key) % 16384
}

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
