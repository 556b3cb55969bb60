package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/scratch"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/sinks"
)

// A restore drill proves that an archive restores to what it records:
//
//  1. The archive is proven whole (as before a restore: its manifest's
//     SHA-256, or a full read).
//  2. It is restored into a scratch server (drill.redis_url, or a
//     throw-away server started from drill.server_binary), with relative
//     TTLs and the restore's clock held at the drill's start T0. As each
//     key goes by on its way to the server, it is digested (Diff's
//     digester, see agent/diff.go) into a record: database, key, type,
//     expiry (T0 + the recorded TTL) and a 128-bit digest of the value,
//     with hash field expiries moved as the restore moves them.
//  3. The scratch server is read back through the dump engine, each key
//     digested by the same digester into the same kind of record.
//  4. The two sets of records are compared as Diff compares (partitioned
//     spill files, bounded memory). Expiry times may differ by the
//     restore's duration plus a second (a relative TTL counts from when
//     its key was written). A key, or a hash field, whose expiry came
//     before the reading back ended is counted as expired during the
//     drill, not as a difference.
//  5. The key counts the server holds, per database and per type, are
//     compared with the counts the archive records (keys_per_db,
//     keys_per_type), less the keys that expired during the drill.
//
// The digests of both sides leave out the seen and active times of
// stream consumers, which no restore can set (they become the time of
// the restore), and the payloads of raw values (module types: a module
// rebuilds its value on RESTORE, a vector set's DUMP differs after; they
// are compared by type and TTL, and RESTORE checked each payload's own
// checksum); everything else a key holds is in them: the value
// byte-exact (zset scores by value), stream entries, groups, consumers by
// name and pending entries with their owners, delivery times and counts,
// hash field expiries. A drill fails when the restore refuses a key, when
// a key differs, or when a count does not match.

// DrillMarkerKey is the key, in database 0, that marks a server as a
// drill's scratch server: a drill into a server (drill.redis_url) that
// holds keys refuses it unless it holds this key, and leaves the server
// flushed with only this key after.
const DrillMarkerKey = "redback:drill:scratch"

const drillMarkerValue = "a redback drill scratch server: every drill flushes it"

// Drill results (DrillRecord.Result).
const (
	DrillPassed = "passed"
	DrillFailed = "failed"
)

// DrillOptions tune one drill. Empty fields take agent.yaml's drill
// section.
type DrillOptions struct {
	Identities   []age.Identity
	RedisURL     string
	ServerBinary string
	// MaxKeys drills the first MaxKeys keys only (0: drill.max_keys).
	MaxKeys int64
	// Limit is the number of differences listed (default 100); the
	// counts cover them all.
	Limit int
}

// DrillResult answers `redback drill --json` (and the scheduled drills'
// notifications). Success is true when the archive restored to what it
// records; Error says why not.
type DrillResult struct {
	Success         bool    `json:"success"`
	Filename        string  `json:"filename"`
	DrilledAt       string  `json:"drilled_at,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Server is the scratch server ("redis 7.2.4"); Scratch says which:
	// "started" (drill.server_binary, stopped after) or "redis_url".
	Server  string `json:"server,omitempty"`
	Scratch string `json:"scratch,omitempty"`
	// KeysCount is the archive's recorded key count; Restored the keys
	// written; Compared the keys found the same on both sides.
	KeysCount int64 `json:"keys_count"`
	Restored  int64 `json:"restored"`
	Compared  int64 `json:"compared"`
	// KeysPerDB and KeysPerType are what the scratch server held.
	KeysPerDB   map[string]int64 `json:"keys_per_db"`
	KeysPerType map[string]int64 `json:"keys_per_type"`
	// Mismatches are the counts that differ from the archive's records.
	Mismatches []string `json:"mismatches,omitempty"`
	// Differences are the first keys that differ (DiffResult's shape: A
	// the archive, B the scratch server); DifferencesCount counts them
	// all.
	Differences      []Difference `json:"differences,omitempty"`
	DifferencesCount int64        `json:"differences_count"`
	// RestoreErrors are the first keys the scratch server refused.
	RestoreErrors []string `json:"restore_errors,omitempty"`
	// ExpiredDuring counts keys (or keys with a hash field) whose expiry
	// came while the drill ran: not compared.
	ExpiredDuring int64 `json:"expired_during"`
	// Partial: only the first drill.max_keys keys were restored.
	Partial bool `json:"partial,omitempty"`
	// Recorded: the outcome is in the archive's manifest.
	Recorded bool     `json:"recorded"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// ErrDrillFailed is the error of a drill whose archive did not restore to
// what it records (or is damaged: then it wraps ErrInvalid too).
var ErrDrillFailed = errors.New("drill failed")

// scratchLocks serializes drills into one scratch URL within the process
// (several targets may share drill.redis_url).
var scratchLocks sync.Map // URL -> *sync.Mutex

// Drill restores archive ref (a name or Latest) into a scratch server and
// proves that it holds what the archive records (see the comment above).
// The production server is never touched. The outcome is recorded in the
// archive's manifest (when it has one) whether it passed or failed; an
// error that kept the drill from running at all (a scratch server that
// holds foreign keys, no server binary, a busy drill) is returned without
// a record.
func (s *Service) Drill(ctx context.Context, ref string, o DrillOptions) (res DrillResult, err error) {
	start := s.now()
	res.Filename = ref
	defer func() {
		res.DurationSeconds = roundSeconds(s.now().Sub(start))
		settle(&res.Success, &res.Error, err)
	}()
	if ref != Latest {
		if err := sinks.ValidateName(ref); err != nil {
			return res, translate(err)
		}
	}
	if !s.drillMu.TryLock() {
		return res, fmt.Errorf("%w: a drill is already running", ErrBusy)
	}
	defer s.drillMu.Unlock()
	a, release, err := s.resolve(ctx, ref, false)
	defer release()
	if err != nil {
		return res, err
	}
	res.Filename = a.Name
	res.DrilledAt = isoUTC(start)
	ran, err := s.drill(ctx, a, o, &res)
	if !ran {
		s.log.Error("drill could not run", "file", a.Name, "err", err)
		return res, err
	}
	rec := sinks.DrillRecord{DrilledAt: start.UTC(), Result: DrillPassed, Keys: res.Restored, Partial: res.Partial,
		DurationSeconds: roundSeconds(s.now().Sub(start)), Server: res.Server}
	if err != nil {
		rec.Result, rec.Error = DrillFailed, err.Error()
	}
	switch rerr := s.updateManifest(ctx, a.Name, func(m *sinks.Manifest) { m.Drill = &rec }); {
	case errors.Is(rerr, errNoManifest):
		res.Warnings = append(res.Warnings, "the outcome is not recorded: the archive has no manifest (copied in by hand; `redback verify` records one)")
	case rerr != nil:
		res.Warnings = append(res.Warnings, fmt.Sprintf("the outcome could not be recorded: %v", rerr))
		s.log.Warn("drill outcome not recorded", "file", a.Name, "err", rerr)
	default:
		res.Recorded = true
	}
	if err != nil {
		s.log.Error("drill failed", "file", a.Name, "err", err)
	} else {
		s.log.Info("drill passed", "file", a.Name, "keys", res.Restored, "server", res.Server, "partial", res.Partial,
			"expired_during", res.ExpiredDuring)
	}
	return res, err
}

// drill runs the drill of a. ran is false when it could not run (the
// error is then about the drill, not the archive); with ran set, a
// non-nil error is the archive's failure (it wraps ErrDrillFailed, or is
// the integrity check's).
func (s *Service) drill(ctx context.Context, a archive, o DrillOptions, res *DrillResult) (ran bool, err error) {
	if o.RedisURL == "" && o.ServerBinary == "" {
		o.RedisURL, o.ServerBinary = s.cfg.Drill.RedisURL, s.cfg.Drill.ServerBinary
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = s.cfg.Drill.MaxKeys
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if m := a.Info.Manifest; m != nil {
		res.KeysCount = m.KeysCount
	}
	if _, err := s.precheck(ctx, a, o.Identities); err != nil {
		if errors.Is(err, ErrInvalid) && !errors.Is(err, codec.ErrWrongKey) && !errors.Is(err, codec.ErrEncrypted) {
			// The archive is damaged: that is a finding.
			return true, fmt.Errorf("%w: %w", ErrDrillFailed, err)
		}
		return false, err
	}
	sa, sb, cleanup, err := newSpills("", "drill")
	if err != nil {
		return false, err
	}
	defer cleanup()

	var target *scratchTarget
	defer func() {
		if target != nil {
			target.close(context.WithoutCancel(ctx), s)
		}
	}()
	t0 := s.now()
	tap := &drillTap{sp: sa, limit: o.MaxKeys, t0: t0.UnixMilli(), perDB: map[int]int64{}, perType: map[codec.Type]int64{}}
	tap.d.restorable = true
	setupErr := error(nil)
	st, rerr := s.replayFrom(ctx, a, o.Identities, func(hdr codec.Header) (*redis.Options, engine.RestoreOptions, error) {
		dbs := 16
		for _, db := range hdr.Source.Databases {
			dbs = max(dbs, db+1)
		}
		target, setupErr = s.openScratch(ctx, o, hdr.Source.Server, dbs)
		if setupErr != nil {
			return nil, engine.RestoreOptions{}, setupErr
		}
		res.Server, res.Scratch = target.server, target.kind
		dbmap := map[int]int{}
		if hdr.FormatVersion == 0 {
			dbmap[0] = 0 // a seed archive's one database
		}
		tap.dbmap = dbmap
		if !hdr.CreatedAt.IsZero() {
			tap.d.fieldShift = t0.UnixMilli() - hdr.CreatedAt.UnixMilli()
		}
		tap.d.fieldsAlive = t0.UnixMilli()
		return target.opts, engine.RestoreOptions{
			TTL: engine.TTLRelative, DBMap: dbmap, Now: func() time.Time { return t0 },
		}, nil
	}, func(src engine.ChunkSource) engine.ChunkSource { tap.src = src; return tap })
	if setupErr != nil {
		return false, setupErr
	}
	restoreEnd := s.now()
	res.Restored, res.Partial = st.Restored, tap.partial
	res.RestoreErrors = st.Messages
	res.Warnings = append(res.Warnings, st.Warnings...)
	if tap.err != nil {
		return false, tap.err
	}
	if rerr != nil {
		if err := translate(rerr); errors.Is(err, ErrInvalid) || errors.Is(err, engine.ErrTooManyErrors) {
			// A damaged archive, or one whose keys the server keeps refusing.
			return true, fmt.Errorf("%w: %w", ErrDrillFailed, err)
		}
		return false, fmt.Errorf("drill: restore into the scratch server: %w", translate(rerr))
	}
	if tap.trailer != nil {
		res.KeysCount = tap.trailer.KeysCount
	}

	// Read the scratch server back.
	live := &liveDigest{sp: sb, perDB: map[int]int64{}, perType: map[codec.Type]int64{}}
	live.d.restorable = true
	if err := s.readScratch(ctx, target, live); err != nil {
		return false, err
	}
	readEnd := s.now()
	tol := restoreEnd.Sub(t0).Milliseconds() + 1000
	expired := map[[2]int]int64{} // (db, type) -> keys expired during the drill
	same, err := compareSpills(ctx, sa, sb, tol, func(d Difference) error {
		if d.soonest > 0 && d.soonest <= readEnd.UnixMilli()+tol && d.Change != "added" {
			res.ExpiredDuring++
			expired[[2]int{d.DB, int(typeOf(d.A.Type))}]++
			return nil
		}
		res.DifferencesCount++
		if len(res.Differences) < o.Limit {
			res.Differences = append(res.Differences, d)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	res.Compared = same
	if n := live.perType[codec.TypeRaw]; n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d keys of types redback does not model (raw DUMP payloads: module types) were compared by type and TTL only: a module rebuilds such a value on RESTORE (which checks the payload's checksum), so its payload differs after", n))
	}
	res.KeysPerDB = dbCounts(live.perDB)
	res.KeysPerType = typeCounts(live.perType)
	if !tap.partial {
		res.Mismatches = countMismatches(tap, live, expired)
	} else {
		res.Warnings = append(res.Warnings, fmt.Sprintf("a partial drill: the first %d keys only (drill.max_keys); the counts the archive records were not compared", o.MaxKeys))
	}
	return true, drillVerdict(res, st.Errors)
}

// drillVerdict is the drill's error when anything differed, nil else.
func drillVerdict(res *DrillResult, restoreErrors int64) error {
	var why []string
	if restoreErrors > 0 {
		why = append(why, fmt.Sprintf("%d keys were refused by the scratch server (the first: %s)", restoreErrors, first(res.RestoreErrors)))
	}
	if res.DifferencesCount > 0 {
		d := res.Differences[0]
		why = append(why, fmt.Sprintf("%d keys differ from the archive (the first: %s %d/%s %v)", res.DifferencesCount, d.Change, d.DB, d.Escaped, d.What))
	}
	if len(res.Mismatches) > 0 {
		why = append(why, fmt.Sprintf("%d counts differ from the archive's (%s)", len(res.Mismatches), strings.Join(res.Mismatches, "; ")))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s does not restore to what it records: %s", ErrDrillFailed, res.Filename, strings.Join(why, "; "))
}

// countMismatches compares the counts the archive records (its trailer)
// with those of the scratch server, less the keys that expired during the
// drill.
func countMismatches(tap *drillTap, live *liveDigest, expired map[[2]int]int64) []string {
	var out []string
	tr := tap.trailer
	if tr == nil {
		return []string{"the archive's trailer was not read"}
	}
	var total int64
	for _, n := range live.perDB {
		total += n
	}
	var gone int64
	goneDB, goneType := map[int]int64{}, map[codec.Type]int64{}
	for k, n := range expired {
		gone += n
		goneDB[k[0]] += n
		goneType[codec.Type(k[1])] += n
	}
	if want := tr.KeysCount - gone; total != want {
		out = append(out, fmt.Sprintf("the archive records %d keys (%d expired during the drill), the server holds %d", tr.KeysCount, gone, total))
	}
	recordedDB := map[int]int64{}
	for db, n := range tr.KeysPerDB {
		if to, ok := tap.dbmap[db]; ok {
			db = to
		}
		recordedDB[db] += n
	}
	for _, db := range unionKeys(recordedDB, live.perDB) {
		if want := recordedDB[db] - goneDB[db]; live.perDB[db] != want {
			out = append(out, fmt.Sprintf("database %d: the archive records %d keys, the server holds %d", db, recordedDB[db]-goneDB[db], live.perDB[db]))
		}
	}
	if tr.KeysPerType == nil {
		return out
	}
	for _, t := range unionKeys(tr.KeysPerType, live.perType) {
		if want := tr.KeysPerType[t] - goneType[t]; live.perType[t] != want {
			out = append(out, fmt.Sprintf("type %s: the archive records %d keys, the server holds %d", t, want, live.perType[t]))
		}
	}
	return out
}

func unionKeys[K int | codec.Type](a, b map[K]int64) []K {
	var out []K
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func typeCounts(m map[codec.Type]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for t, n := range m {
		out[t.String()] = n
	}
	return out
}

// typeOf is the codec type of a type name (0 when unknown).
func typeOf(name string) codec.Type {
	for t := codec.TypeString; t <= codec.TypeRaw; t++ {
		if t.String() == name {
			return t
		}
	}
	return 0
}

// drillTap passes a restore's chunks on to the restorer, and digests each
// key as it goes by into a record of the archive's side.
type drillTap struct {
	src   engine.ChunkSource
	sp    *spill
	d     digester
	dbmap map[int]int
	t0    int64 // the restore's clock, Unix ms
	// limit: keys after the first limit are read and left out (0: none).
	limit, n int64
	skip     bool
	partial  bool
	perDB    map[int]int64
	perType  map[codec.Type]int64
	trailer  *codec.Trailer
	err      error
}

func (t *drillTap) Next() (*codec.Chunk, error) {
	for {
		c, err := t.src.Next()
		if err == io.EOF {
			if tr, ok := t.src.(interface{ Trailer() codec.Trailer }); ok {
				x := tr.Trailer()
				t.trailer = &x
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if c.First {
			t.skip = t.limit > 0 && t.n >= t.limit
			if t.skip {
				t.partial = true
			} else {
				t.n++
				t.d.begin(c.Type, c.Raw)
			}
		}
		if t.skip {
			t.src.Release(c)
			continue
		}
		t.d.chunk(c)
		if c.Last {
			t.record(c)
		}
		return c, nil
	}
}

// record spills the record of the key whose last chunk is c.
func (t *drillTap) record(c *codec.Chunk) {
	t.d.meta(c.Stream)
	db := c.DB
	if to, ok := t.dbmap[db]; ok {
		db = to
	}
	r := keyRecord{db: db, key: c.Key, typ: c.Type, digest: t.d.end(), soonest: t.d.soonest}
	if c.HasTTL && c.PTTL > 0 {
		r.expireAt = t.t0 + c.PTTL
		if r.soonest == 0 || r.expireAt < r.soonest {
			r.soonest = r.expireAt
		}
	}
	t.perDB[db]++
	t.perType[c.Type]++
	if err := t.sp.add(&r); err != nil && t.err == nil {
		t.err = err
	}
}

func (t *drillTap) Release(c *codec.Chunk) { t.src.Release(c) }

// scratchTarget is the server a drill restores into.
type scratchTarget struct {
	opts *redis.Options
	srv  *scratch.Server // a started server; nil for drill.redis_url
	// unlock releases the process's hold on drill.redis_url.
	unlock func()
	// kind is "started" or "redis_url"; server the server's kind and
	// version.
	kind, server string
}

// openScratch starts the scratch server (o.ServerBinary, or the one of
// the archive's kind from PATH), or claims o.RedisURL: an empty server,
// or one that holds DrillMarkerKey (flushed then), is marked and taken; one
// that holds other keys is refused and left untouched.
func (s *Service) openScratch(ctx context.Context, o DrillOptions, kind string, dbs int) (*scratchTarget, error) {
	if o.RedisURL == "" {
		bin, err := drillBinary(o.ServerBinary, kind)
		if err != nil {
			return nil, err
		}
		srv, err := scratch.Start(ctx, bin, dbs)
		if err != nil {
			return nil, fmt.Errorf("drill: the scratch server: %w", err)
		}
		return &scratchTarget{opts: &redis.Options{Network: "unix", Addr: srv.Socket}, srv: srv, kind: "started",
			server: srv.Kind + " " + srv.Version}, nil
	}
	opts, err := engine.ParseURL(o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: drill.redis_url: %v", ErrInvalid, err)
	}
	if same := s.redis; same.Network == opts.Network && same.Addr == opts.Addr {
		return nil, fmt.Errorf("%w: drill.redis_url names the server that is backed up (%s): a drill never restores into it", ErrInvalid, opts.Addr)
	}
	opts.DB = 0
	mu, _ := scratchLocks.LoadOrStore(opts.Network+"|"+opts.Addr, &sync.Mutex{})
	lock := mu.(*sync.Mutex)
	if !lock.TryLock() {
		return nil, fmt.Errorf("%w: another drill of this agent is using the scratch server %s", ErrBusy, opts.Addr)
	}
	t := &scratchTarget{opts: opts, unlock: lock.Unlock, kind: "redis_url"}
	if err := claimScratch(ctx, opts); err != nil {
		lock.Unlock()
		return nil, err
	}
	facts, err := engine.Inspect(ctx, opts)
	if err != nil {
		lock.Unlock()
		return nil, fmt.Errorf("drill: the scratch server: %w", err)
	}
	t.server = facts.Server.String()
	return t, nil
}

// claimScratch checks that the server of opts may be flushed (it holds no
// key, or DrillMarkerKey in database 0), flushes it, and marks it. A
// server that holds other keys is refused and nothing is written to it.
func claimScratch(ctx context.Context, opts *redis.Options) error {
	facts, err := engine.Inspect(ctx, opts)
	if err != nil {
		return fmt.Errorf("drill: the scratch server: %w", err)
	}
	if facts.Mode == "cluster" || facts.Role != "master" {
		return fmt.Errorf("%w: drill.redis_url: the scratch server is a %s %s: a drill needs a standalone primary", ErrInvalid, facts.Mode, facts.Role)
	}
	c := redis.NewClient(scratchClient(opts))
	defer c.Close()
	var total int64
	for _, n := range facts.KeysPerDB {
		total += n
	}
	if total > 0 {
		v, err := c.Get(ctx, DrillMarkerKey).Result()
		if errors.Is(err, redis.Nil) || (err == nil && v != drillMarkerValue) {
			dbs := facts.Databases()
			sort.Ints(dbs)
			return fmt.Errorf("%w: drill.redis_url: the scratch server holds %d keys (databases %v) and no drill marker (the key %s in database 0): it may be in use, so it is left untouched; a drill takes an empty server, or one that a previous drill marked", ErrInvalid, total, dbs, DrillMarkerKey)
		}
		if err != nil {
			return fmt.Errorf("drill: the scratch server: %w", err)
		}
		if err := c.FlushAll(ctx).Err(); err != nil {
			return fmt.Errorf("drill: flush the scratch server: %w", err)
		}
	}
	if err := c.Set(ctx, DrillMarkerKey, drillMarkerValue, 0).Err(); err != nil {
		return fmt.Errorf("drill: mark the scratch server: %w", err)
	}
	return nil
}

// scratchClient is opts for one client of a drill's own commands: no
// retries (FLUSHALL is not to be sent twice by accident), database 0.
func scratchClient(opts *redis.Options) *redis.Options {
	o := *opts
	o.DB = 0
	o.MaxRetries = -1
	o.PoolSize = 1
	return &o
}

// close stops a started server, or flushes drill.redis_url and marks it
// again (its memory is not kept busy until the next drill).
func (t *scratchTarget) close(ctx context.Context, s *Service) {
	if t.srv != nil {
		t.srv.Stop()
		return
	}
	defer t.unlock()
	c := redis.NewClient(scratchClient(t.opts))
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.FlushAll(ctx).Err(); err != nil {
		s.log.Warn("drill: the scratch server could not be flushed", "err", err)
		return
	}
	if err := c.Set(ctx, DrillMarkerKey, drillMarkerValue, 0).Err(); err != nil {
		s.log.Warn("drill: the scratch server could not be marked", "err", err)
	}
}

// readScratch digests every key of the scratch server into live (the
// marker left out).
func (s *Service) readScratch(ctx context.Context, t *scratchTarget, live *liveDigest) error {
	facts, err := engine.Inspect(ctx, t.opts)
	if err != nil {
		return fmt.Errorf("drill: read the scratch server back: %w", err)
	}
	var skip [][]byte
	if t.srv == nil {
		skip = [][]byte{[]byte(DrillMarkerKey)}
	}
	dumper := engine.NewDumper(t.opts, engine.DumpOptions{
		Databases: facts.Databases(), ScanCount: s.cfg.Backup.ScanCount, Workers: s.cfg.Backup.Workers, SkipKeys: skip,
	})
	if _, err := dumper.Dump(ctx, facts, live); err != nil {
		return fmt.Errorf("drill: read the scratch server back: %w", err)
	}
	return nil
}

// drillBinary picks the server a drill starts.
func drillBinary(given, kind string) (string, error) {
	bin, err := exportBinary(given, kind)
	if err != nil {
		return "", fmt.Errorf("%w: drill: no scratch server: set drill.server_binary (a redis-server or valkey-server) or drill.redis_url", ErrInvalid)
	}
	return bin, nil
}

// LastDrill returns the start of the newest drill recorded in any
// archive's manifest (the zero time when none was), passed or failed: the
// drill scheduler's memory, which survives restarts as the storage does.
func (s *Service) LastDrill(ctx context.Context) (time.Time, error) {
	infos, err := s.sink.List(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("list archives: %w", translate(err))
	}
	var last time.Time
	for _, in := range infos {
		if m := in.Manifest; m != nil && m.Drill != nil && m.Drill.DrilledAt.After(last) {
			last = m.Drill.DrilledAt
		}
	}
	return last, nil
}
