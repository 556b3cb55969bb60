// The restore: its options and stats, and its orchestration: the archive is
// read here, small keys go in batches to the writers, big keys and streams to
// one goroutine; every key's outcome is recorded here.

package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
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
	clients map[int]redis.UniversalClient
	loaded  map[int]bool

	// rdbVersion is the RDB version of RESTORE payloads for the target (0:
	// RESTORE is not used); restoreRefused is set when the server refuses it.
	rdbVersion     int
	restoreRefused atomic.Bool
	// limits are the target's compact-encoding thresholds (payloads are
	// written in the encodings it would keep).
	limits rdbvalue.Limits
	st     RestoreStats
	// server is the target's kind and version (read at the start).
	server Server
	// seeds are the addresses of a cluster target's primaries (nil for a
	// server that is not a cluster's node).
	seeds []string
	// dbErrs holds, per target database, why it cannot be written (a
	// database the server does not have), or nil once it was checked.
	dbErrs map[int]error
}

// NewRestorer returns a Restorer for the server base points at.
func NewRestorer(base *redis.Options, opt RestoreOptions) *Restorer {
	opt.defaults()
	return &Restorer{base: base, opt: opt, clients: map[int]redis.UniversalClient{}, loaded: map[int]bool{}, dbErrs: map[int]error{}}
}

// loadScripts loads the restore scripts once per database connection pool.
func (r *Restorer) loadScripts(ctx context.Context, db int, cl redis.UniversalClient) error {
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

func (r *Restorer) client(db int) redis.UniversalClient {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[db]
	if !ok {
		if r.seeds != nil {
			c = newClusterWriteClient(r.base, r.seeds, db, r.opt.Workers+2)
		} else {
			c = newWriteClient(r.base, db, r.opt.Workers+2)
		}
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
	r.clients = map[int]redis.UniversalClient{}
}

// clusterSeeds returns the primaries' addresses when base names a node of
// a cluster, nil otherwise.
func clusterSeeds(ctx context.Context, base *redis.Options) ([]string, error) {
	c := newClient(base, base.DB, 1)
	info, err := serverInfo(ctx, c, "server")
	c.Close()
	if err != nil {
		return nil, err
	}
	if modeOf(info) != ModeCluster {
		return nil, nil
	}
	topo, err := DiscoverCluster(ctx, base)
	if err != nil {
		return nil, err
	}
	seeds := []string{}
	for _, sh := range topo.Shards {
		seeds = append(seeds, sh.Primary.Addr)
	}
	return seeds, nil
}

// Restore writes every key of src. On a node of a cluster, every key goes
// to the primary of its slot, pipelined per node (go-redis's cluster
// client); a MOVED or ASK reply (a resharding or failover during the
// restore) sends the command to the node named, which is safe because it
// did not run; nothing else is sent twice. It stops at the first read error (a
// corrupt or truncated archive), a lost connection, ctx's end, or too many
// failed keys; the stats say what was done until then. A key is never left
// half-written: small keys are written by one atomic command each, big keys
// are built under a temporary name and renamed.
func (r *Restorer) Restore(ctx context.Context, src ChunkSource) (st RestoreStats, err error) {
	defer recoverTo(&err)
	defer r.close()
	if r.seeds, err = clusterSeeds(ctx, r.base); err != nil {
		return RestoreStats{}, err
	}
	info, err := serverInfo(ctx, r.client(r.base.DB), "server")
	if err != nil {
		return RestoreStats{}, err
	}
	r.server = serverOf(info)
	if r.opt.WriteMode == WriteAuto {
		r.rdbVersion = rdbvalue.RDBVersionFor(info["redis_version"])
		r.limits = compactLimits(ctx, r.client(r.base.DB))
	}

	var lim *rate.Limiter
	if r.opt.KeysPerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(r.opt.KeysPerSecond), max(int(r.opt.KeysPerSecond), r.opt.BatchKeys))
	}

	// The writers: small keys in batches, and one goroutine for the keys
	// of several chunks. The first one's error cancels the others and the
	// reading of the archive.
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan []*codec.Chunk, r.opt.Workers)
	for i := 0; i < r.opt.Workers; i++ {
		g.Go(guard(func() error {
			for batch := range jobs {
				if err := r.writeSmall(gctx, batch, src); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	big := make(chan *codec.Chunk, 4)
	g.Go(guard(func() error { return r.runBig(gctx, big, src) }))
	readErr := r.feed(gctx, src, jobs, big, lim)
	close(jobs)
	close(big)
	werr := g.Wait()
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

// outcome is what became of one key of the archive.
type outcome uint8

const (
	keyRestored outcome = iota // written (in a dry run: would be)
	keySkipped                 // it existed and overwrite is off
	keyExpired                 // its expiry passed since the backup (a skipped key too)
	keyFailed                  // not written: a per-key error says why
)

// restoredIf is keyRestored when written, else keySkipped (the key existed).
func restoredIf(written bool) outcome {
	if written {
		return keyRestored
	}
	return keySkipped
}

// record counts the outcome of one key; err is why a keyFailed key failed
// (nil for the others). It returns an error only when the restore must stop:
// MaxErrors keys have failed.
func (r *Restorer) record(key []byte, o outcome, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Total++
	switch o {
	case keyFailed:
		r.st.Errors++
		if len(r.st.Messages) < maxMessages {
			r.st.Messages = append(r.st.Messages, fmt.Sprintf("key %s: %v", quoteKey(key), explainScriptACL(err)))
		}
		if r.opt.MaxErrors > 0 && r.st.Errors >= int64(r.opt.MaxErrors) {
			return fmt.Errorf("%w (%d); the first: %s", ErrTooManyErrors, r.st.Errors, r.st.Messages[0])
		}
	case keyExpired:
		r.st.Skipped++
		r.st.Expired++
	case keySkipped:
		r.st.Skipped++
	case keyRestored:
		r.st.Restored++
	}
	return nil
}

// addStat adds n to a counter of r.st (FieldsExpired, PendingLost).
func (r *Restorer) addStat(p *int64, n int) {
	r.mu.Lock()
	*p += int64(n)
	r.mu.Unlock()
}

// overwriteArg is the scripts' overwrite argument: "1" with Overwrite,
// else "0".
func (r *Restorer) overwriteArg() string {
	if r.opt.Overwrite {
		return "1"
	}
	return "0"
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
		if !failsOneKey(perr) {
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
