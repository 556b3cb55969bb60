package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/fidelity"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestRandomizedRoundTrip runs rounds of dump and restore with drawn data
// and drawn thresholds until its time is up: each round draws the dump's
// and the restore's options (ScanCount, Workers, BigElements, BigBytes,
// Window, StringWindow, BatchBytes, read and write modes, TTL mode,
// overwrite, database mapping, batch sizes, the archive reader's chunk
// limits) and the servers' encoding limits, then data whose sizes sit on
// those thresholds (one less, equal, one more, and multiples), writes it,
// dumps, restores into a second server (with keys already there in some
// rounds) and compares the two states value by value (internal/fidelity)
// and digest by digest.
//
// REDBACK_SEED sets the seed (else the clock does; it is logged);
// REDBACK_RANDOM_SECONDS the time per server (default 20);
// REDBACK_RANDOM_MATRIX=1 runs on every server of the matrix at once (give
// go test -parallel 6 for them all to run together),
// REDBACK_RANDOM_SERVERS=name,... on those; else it runs on redis-7.0.
// Round i runs with seed+i: a failure names the seed (and server) that
// replays its round first. `make test-matrix` runs it on the whole matrix
// for 300 s.
func TestRandomizedRoundTrip(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("REDBACK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("REDBACK_SEED=%q: %v", s, err)
		}
		seed = v
	}
	budget := 20 * time.Second
	if s := os.Getenv("REDBACK_RANDOM_SECONDS"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			t.Fatalf("REDBACK_RANDOM_SECONDS=%q: want a positive number of seconds", s)
		}
		budget = time.Duration(v * float64(time.Second))
	}
	servers := []string{"redis-7.0"}
	if os.Getenv("REDBACK_RANDOM_MATRIX") == "1" {
		servers = redistest.Matrix
	}
	if s := os.Getenv("REDBACK_RANDOM_SERVERS"); s != "" {
		servers = strings.Split(s, ",")
	}
	t.Logf("seed %d (REDBACK_SEED=%d replays this run), %v on each of %v", seed, seed, budget, servers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: replay with REDBACK_SEED=%d (the failing round names its own seed)", seed, seed)
		}
	})
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			if len(servers) > 1 {
				t.Parallel()
			}
			ctx := context.Background()
			src := redistest.StartServer(t, name)
			dst := redistest.StartServer(t, name)
			cl := clientPool(t)
			caps, err := fidelity.Probe(ctx, cl(src, 0))
			if err != nil {
				t.Fatal(err)
			}
			wantCaps(t, name, caps)
			deadline := time.Now().Add(budget)
			var rounds, keys int
			for i := uint64(0); i == 0 || time.Now().Before(deadline); i++ {
				r := newRound(seed+i, caps)
				began := time.Now()
				n, err := r.run(ctx, t, cl, src, dst)
				if took := time.Since(began); took > budget/4 && err == nil {
					t.Logf("%s: round %d (seed %d, %d keys) took %v:\n%s", name, i, r.seed, n, took.Round(time.Millisecond), r)
				}
				if err != nil {
					t.Fatalf("%s, seed %d (REDBACK_SEED=%d REDBACK_RANDOM_SERVERS=%s replays this round first), round %d: %v\n%s", name, r.seed, r.seed, name, i, err, r)
				}
				rounds++
				keys += n
			}
			t.Logf("%s: %d rounds, %d keys, seeds %d to %d", name, rounds, keys, seed, seed+uint64(rounds)-1)
		})
	}
}

var errArchiveTooBig = errors.New("the archive outgrew its cap: a runaway dump")

// cappedBuffer is a bytes.Buffer that refuses to grow past max bytes, so
// that a dump stuck in a loop fails instead of eating the machine's memory.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		return 0, errArchiveTooBig
	}
	return c.Buffer.Write(p)
}

// clientPool returns a function that gives one client per server and
// database for the whole test (a round does not open new connections).
func clientPool(t *testing.T) func(*redistest.Server, int) *redis.Client {
	type key struct {
		s  *redistest.Server
		db int
	}
	m := map[key]*redis.Client{}
	return func(s *redistest.Server, db int) *redis.Client {
		c, ok := m[key{s, db}]
		if !ok {
			c = s.Client(t, db)
			m[key{s, db}] = c
		}
		return c
	}
}

// round is one drawn round.
type round struct {
	seed   uint64
	rnd    *rand.Rand
	caps   fidelity.Caps
	dump   DumpOptions
	rest   RestoreOptions
	reader codec.ReaderOptions
	srcCfg []string // name, value, ...
	dstCfg []string
	dbs    []int
	dbMap  map[int]int
	shapes []string // what was drawn, for the failure message
	bytes  int      // about how many bytes were written
	// cost estimates the round trips the round takes (windows read, chunks
	// written): a round stops drawing keys at maxCost, so that tiny
	// windows and chunks do not meet thousands of big keys.
	cost int
	// times is how long each step took, for the log of a slow round.
	times []string
	last  time.Time
}

// step records the time since the previous step.
func (r *round) step(name string) {
	now := time.Now()
	if !r.last.IsZero() {
		r.times = append(r.times, fmt.Sprintf("%s %v", name, now.Sub(r.last).Round(time.Millisecond)))
	}
	r.last = now
}

const maxCost = 20000

// collection adds the cost of a collection of n elements.
func (r *round) collection(n int) {
	r.cost += 1 + n/r.dump.Window + n/r.reader.MaxChunkItems
}

func (r *round) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  dump options: ScanCount %d, Workers %d, BigElements %d, BigBytes %d, Window %d, StringWindow %d, BatchBytes %d, PipelineKeys %d, ReadMode %d\n",
		r.dump.ScanCount, r.dump.Workers, r.dump.BigElements, r.dump.BigBytes, r.dump.Window, r.dump.StringWindow, r.dump.BatchBytes, r.dump.PipelineKeys, r.dump.ReadMode)
	fmt.Fprintf(&b, "  restore options: Overwrite %v, DryRun %v, TTL %d, BatchKeys %d, Workers %d, WriteMode %d, DBMap %v; reader MaxChunkItems %d, MaxChunkBytes %d\n",
		r.rest.Overwrite, r.rest.DryRun, r.rest.TTL, r.rest.BatchKeys, r.rest.Workers, r.rest.WriteMode, r.dbMap, r.reader.MaxChunkItems, r.reader.MaxChunkBytes)
	fmt.Fprintf(&b, "  steps: %s; about %d round trips, %d bytes\n", strings.Join(r.times, ", "), r.cost, r.bytes)
	fmt.Fprintf(&b, "  source config %q; target config %q; databases %v\n", r.srcCfg, r.dstCfg, r.dbs)
	shapes := r.shapes
	if len(shapes) > 60 {
		shapes = append(shapes[:60:60], fmt.Sprintf("... and %d more", len(r.shapes)-60))
	}
	fmt.Fprintf(&b, "  shapes (%d):\n    %s", len(r.shapes), strings.Join(shapes, "\n    "))
	return b.String()
}

func (r *round) intn(lo, hi int) int { return lo + r.rnd.IntN(hi-lo+1) }

// logInt draws from [lo, hi] evenly on a log scale.
func (r *round) logInt(lo, hi int64) int64 {
	v := int64(math.Exp(math.Log(float64(lo)) + r.rnd.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
	return min(max(v, lo), hi)
}

func pick[T any](r *round, xs ...T) T { return xs[r.rnd.IntN(len(xs))] }

// around is n-1, n or n+1 (at least lo).
func (r *round) around(n, lo int) int { return max(lo, n+r.intn(-1, 1)) }

func newRound(seed uint64, caps fidelity.Caps) *round {
	r := &round{seed: seed, rnd: rand.New(rand.NewPCG(seed, 0x7265646261636b)), caps: caps}
	r.dump = DumpOptions{
		ScanCount:   pick(r, 1, 2, 3, r.intn(4, 100), r.intn(100, 2000)),
		Workers:     r.intn(1, 4),
		BigElements: int64(pick(r, 1, 2, r.intn(3, 50), r.intn(50, 300))),
		BigBytes:    r.logInt(64, 256<<10),
		Window:      pick(r, 1, 2, r.intn(3, 40), r.intn(40, 300)),
		BatchBytes:  r.logInt(1, 1<<20),
		ReadMode:    pick(r, ReadAuto, ReadCommands),
	}
	r.dump.PipelineKeys = pick(r, 1, 2, r.intn(3, 40), r.intn(40, 300))
	// At most some 50 GETRANGE windows for a string around BigBytes.
	r.dump.StringWindow = r.logInt(max(1, r.dump.BigBytes/50), 2*r.dump.BigBytes)
	r.rest = RestoreOptions{
		Overwrite: r.rnd.IntN(3) == 0,
		DryRun:    r.rnd.IntN(8) == 0,
		TTL:       pick(r, TTLRelative, TTLAbsolute),
		BatchKeys: pick(r, 1, 2, r.intn(3, 64), r.intn(64, 600)),
		Workers:   r.intn(1, 4),
		MaxErrors: -1,
		WriteMode: pick(r, WriteAuto, WriteScript),
	}
	r.reader = codec.ReaderOptions{
		MaxChunkItems: pick(r, 1, 2, r.intn(3, 64), r.intn(64, 2000)),
		MaxChunkBytes: int(r.logInt(64, 2<<20)),
	}
	r.srcCfg, r.dstCfg = r.config(), r.config()
	r.dbs = []int{0}
	for range r.intn(0, 2) {
		if db := r.intn(1, 9); !slices.Contains(r.dbs, db) {
			r.dbs = append(r.dbs, db)
		}
	}
	if r.rnd.IntN(5) == 0 {
		from := pick(r, r.dbs...)
		r.dbMap = map[int]int{from: r.intn(10, 15)}
		r.rest.DBMap = r.dbMap
	}
	return r
}

// config draws the encoding limits of a server.
func (r *round) config() []string {
	cfg := []string{
		"list-compress-depth", strconv.Itoa(r.intn(0, 3)),
		"list-max-listpack-size", strconv.Itoa(pick(r, -2, -1, -3, 1, 2, r.intn(3, 128))),
		"hash-max-listpack-entries", strconv.Itoa(pick(r, 0, 1, r.intn(2, 64), 128, 512)),
		"hash-max-listpack-value", strconv.Itoa(pick(r, 0, 8, 64)),
		"zset-max-listpack-entries", strconv.Itoa(pick(r, 0, 1, r.intn(2, 64), 128)),
		"zset-max-listpack-value", strconv.Itoa(pick(r, 0, 8, 64)),
		"set-max-intset-entries", strconv.Itoa(pick(r, 1, r.intn(2, 64), 512)),
		"stream-node-max-entries", strconv.Itoa(pick(r, 1, 2, r.intn(3, 100), 100)),
		"stream-node-max-bytes", strconv.Itoa(pick(r, 0, 256, 4096)),
	}
	if r.caps.ListpackSets {
		cfg = append(cfg, "set-max-listpack-entries", strconv.Itoa(pick(r, 0, 1, r.intn(2, 64), 128)),
			"set-max-listpack-value", strconv.Itoa(pick(r, 0, 8, 64)))
	}
	return cfg
}

func configure(ctx context.Context, c *redis.Client, cfg []string) error {
	for i := 0; i+1 < len(cfg); i += 2 {
		if err := c.ConfigSet(ctx, cfg[i], cfg[i+1]).Err(); err != nil {
			return fmt.Errorf("CONFIG SET %s %s: %w", cfg[i], cfg[i+1], err)
		}
	}
	return nil
}

// run writes the round's data, dumps, restores and compares. It returns
// the number of keys.
func (r *round) run(ctx context.Context, t *testing.T, cl func(*redistest.Server, int) *redis.Client, src, dst *redistest.Server) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	sc, dc := cl(src, 0), cl(dst, 0)
	r.step("")
	for _, c := range []*redis.Client{sc, dc} {
		if err := c.FlushAll(ctx).Err(); err != nil {
			return 0, err
		}
	}
	if err := configure(ctx, sc, r.srcCfg); err != nil {
		return 0, err
	}
	if err := configure(ctx, dc, r.dstCfg); err != nil {
		return 0, err
	}
	for _, db := range r.dbs {
		if err := r.fill(ctx, cl(src, db), db); err != nil {
			return 0, fmt.Errorf("fill database %d: %w", db, err)
		}
	}
	r.step("fill")
	want, err := fidelity.Snapshot(ctx, sc)
	if err != nil {
		return 0, fmt.Errorf("snapshot the source: %w", err)
	}
	r.step("snapshot")
	total := want.Keys()

	// Keys already on the target: replaced with Overwrite, else kept.
	junk, err := r.junk(ctx, func(db int) *redis.Client { return cl(dst, db) }, want)
	if err != nil {
		return 0, fmt.Errorf("write keys on the target: %w", err)
	}
	expect := want
	kept := 0
	var before fidelity.State
	if len(junk) > 0 || r.rest.DryRun {
		before, err = fidelity.Snapshot(ctx, dc)
		if err != nil {
			return 0, err
		}
		if !r.rest.Overwrite {
			expect = fidelity.State{DBs: map[int]map[string]*fidelity.Value{}}
			for db, keys := range want.DBs {
				expect.DBs[db] = maps.Clone(keys)
			}
			for _, k := range junk {
				expect.DBs[k.DB][k.Key] = before.DBs[r.target(k.DB)][k.Key]
				kept++
			}
		}
	}

	// Dump, into a buffer that fails a dump running away.
	base := opts(t, src, 0)
	facts, err := Inspect(ctx, base)
	if err != nil {
		return 0, err
	}
	buf := &cappedBuffer{max: 64<<20 + 16*r.bytes}
	w := codec.NewWriter(buf, codec.Header{Timestamp: "20260101_000000", CreatedAt: time.Now().UTC()})
	started := time.Now()
	st, err := NewDumper(base, r.dump).Dump(ctx, facts, w)
	if err != nil {
		return 0, fmt.Errorf("dump: %w", err)
	}
	if _, err := w.Close(); err != nil {
		return 0, fmt.Errorf("dump: close the archive: %w", err)
	}
	r.step("dump")
	if st.Keys != int64(total) || st.Vanished != 0 {
		return 0, fmt.Errorf("dump stats %+v: the source holds %d keys", st, total)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		return 0, fmt.Errorf("the archive is not JSON: %v", err)
	}
	if errs := orderErrors(buf.Bytes(), r.reader); len(errs) > 0 {
		return 0, fmt.Errorf("the archive is out of order:\n  %s", strings.Join(errs, "\n  "))
	}

	// Restore.
	rest := r.rest
	rest.ArchiveTime = started
	rd := codec.NewReaderOptions(bytes.NewReader(buf.Bytes()), r.reader)
	rs, err := NewRestorer(opts(t, dst, 0), rest).Restore(ctx, rd)
	if err != nil {
		return 0, fmt.Errorf("restore: %w (stats %+v)", err, rs)
	}
	r.step("restore")
	if rs.Total != int64(total) || rs.Restored != int64(total-kept) || rs.Skipped != int64(kept) || rs.Errors != 0 ||
		rs.PendingLost != 0 || rs.FieldsExpired != 0 || len(rs.Warnings) != 0 {
		return 0, fmt.Errorf("restore stats %+v: want %d restored, %d skipped (existing), nothing else", rs, total-kept, kept)
	}

	// Compare.
	got, err := fidelity.Snapshot(ctx, dc)
	if err != nil {
		return 0, fmt.Errorf("snapshot the target: %w", err)
	}
	r.step("snapshot")
	if r.rest.DryRun {
		// A dry run writes nothing.
		if d := fidelity.Diff(before, got, diffOptions(TTLRelative, before.TakenAt)); len(d) > 0 {
			return 0, fmt.Errorf("the dry run changed the target (%d differences):\n  %s", len(d), strings.Join(d, "\n  "))
		}
		return total, nil
	}
	dopt := diffOptions(r.rest.TTL, want.TakenAt)
	dopt.DBMap, dopt.MaxDiffs = r.dbMap, 30
	if d := fidelity.Diff(expect, got, dopt); len(d) > 0 {
		return 0, fmt.Errorf("the restored state differs (%d differences):\n  %s", len(d), strings.Join(d, "\n  "))
	}
	if kept == 0 {
		for _, db := range r.dbs {
			diffs, err := redistest.Compare(ctx, cl(src, db), cl(dst, r.target(db)), time.Since(want.TakenAt)+5*time.Second)
			if err != nil {
				return 0, err
			}
			diffs = slices.DeleteFunc(diffs, func(d string) bool { return r.zeroSignOnly(ctx, cl(src, db), cl(dst, r.target(db)), d) })
			if len(diffs) > 0 {
				for _, d := range diffs {
					if k, ok := digestKey(d); ok {
						diffs = append(diffs, fmt.Sprintf("%q as the servers render it: %s", k, renderDiff(ctx, cl(src, db), cl(dst, r.target(db)), k)))
					}
				}
				return 0, fmt.Errorf("database %d: digests differ:\n  %s", db, strings.Join(diffs, "\n  "))
			}
		}
	}
	return total, nil
}

// zeroSignOnly reports whether the digest difference d (from
// redistest.Compare) is a sorted set that the target holds as a listpack
// and whose scores differ only in the sign of zero: every server turns -0
// into 0 in listpacks, and the target's encoding limits (drawn apart from
// the source's) may make a listpack of a source's skiplist. fidelity.Diff
// takes -0 for 0 anyway; the digests tell them apart.
func (r *round) zeroSignOnly(ctx context.Context, a, b *redis.Client, d string) bool {
	key, ok := digestKey(d)
	if !ok || b.ObjectEncoding(ctx, key).Val() != "listpack" {
		return false
	}
	x, err1 := a.Do(ctx, "ZRANGE", key, 0, -1, "WITHSCORES").StringSlice()
	y, err2 := b.Do(ctx, "ZRANGE", key, 0, -1, "WITHSCORES").StringSlice()
	if err1 != nil || err2 != nil || len(x) != len(y) {
		return false
	}
	signs := 0
	for i := range x {
		if x[i] != y[i] {
			if i%2 == 0 || x[i] != "-0" || y[i] != "0" {
				return false
			}
			signs++
		}
	}
	if signs > 0 {
		r.shapes = append(r.shapes, fmt.Sprintf("(tolerated: %s lost the sign of %d zero scores)", strconv.Quote(key), signs))
	}
	return signs > 0
}

// digestKey returns the key of a digest difference of redistest.Compare.
func digestKey(d string) (string, bool) {
	rest, ok := strings.CutPrefix(d, "key ")
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil || !strings.HasPrefix(rest[len(q):], ": digest") {
		return "", false
	}
	key, err := strconv.Unquote(q)
	return key, err == nil
}

// renderDiff shows where two keys differ as the servers render them (the
// first differing element of the reply), with their encodings.
func renderDiff(ctx context.Context, a, b *redis.Client, key string) string {
	typ := a.Type(ctx, key).Val()
	read := map[string][]any{
		"string": {"GET", key}, "list": {"LRANGE", key, 0, -1}, "set": {"SMEMBERS", key},
		"zset": {"ZRANGE", key, 0, -1, "WITHSCORES"}, "hash": {"HGETALL", key}, "stream": {"XRANGE", key, "-", "+"},
	}[typ]
	if read == nil {
		return "a " + typ
	}
	enc := a.ObjectEncoding(ctx, key).Val() + "/" + b.ObjectEncoding(ctx, key).Val()
	x := fmt.Sprint(a.Do(ctx, read...).Val())
	y := fmt.Sprint(b.Do(ctx, read...).Val())
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	from := max(0, i-40)
	return fmt.Sprintf("%s %s: ...%q vs ...%q", typ, enc, x[from:min(len(x), i+40)], y[from:min(len(y), i+40)])
}

func (r *round) target(db int) int {
	if to, ok := r.dbMap[db]; ok {
		return to
	}
	return db
}

// junk writes, in some rounds, keys of the archive on the target first,
// with other types, values and TTLs.
func (r *round) junk(ctx context.Context, dst func(db int) *redis.Client, want fidelity.State) ([]fidelity.KeyRef, error) {
	if r.rnd.IntN(3) != 0 {
		return nil, nil
	}
	var all []fidelity.KeyRef
	for _, db := range slices.Sorted(maps.Keys(want.DBs)) {
		for _, k := range slices.Sorted(maps.Keys(want.DBs[db])) {
			all = append(all, fidelity.KeyRef{DB: db, Key: k})
		}
	}
	r.rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	all = all[:min(len(all), r.intn(1, 10))]
	for _, k := range all {
		c := dst(r.target(k.DB))
		var err error
		switch r.rnd.IntN(4) {
		case 0:
			err = c.Set(ctx, k.Key, "junk", time.Duration(r.intn(2, 40))*time.Hour).Err()
		case 1:
			err = c.RPush(ctx, k.Key, "junk", "x").Err()
		case 2:
			err = c.ZAdd(ctx, k.Key, redis.Z{Score: 1, Member: "junk"}).Err()
		default:
			err = c.HSet(ctx, k.Key, "junk", "1", "other", "2").Err()
			if err == nil && r.caps.FieldTTLs {
				err = c.Do(ctx, "HPEXPIRE", k.Key, 7200000, "FIELDS", 1, "junk").Err()
			}
		}
		if err != nil {
			return nil, err
		}
		r.shapes = append(r.shapes, fmt.Sprintf("on the target already: %s", k))
	}
	return all, nil
}

// Data.

// filling queues the commands of one database.
type filling struct {
	ctx  context.Context
	c    *redis.Client
	pipe redis.Pipeliner
	db   int
}

func (f *filling) cmd(args ...any) error {
	f.pipe.Do(f.ctx, args...)
	if f.pipe.Len() >= 200 {
		return f.flush()
	}
	return nil
}

func (f *filling) flush() error {
	if f.pipe.Len() == 0 {
		return nil
	}
	cmds, err := f.pipe.Exec(f.ctx)
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("%.200v: %w", c.Args(), c.Err())
			}
		}
		return err
	}
	return nil
}

// fill writes the round's keys of one database.
func (r *round) fill(ctx context.Context, c *redis.Client, db int) error {
	f := &filling{ctx: ctx, c: c, pipe: c.Pipeline(), db: db}
	keys := pick(r, r.intn(1, 40), min(400, r.around(r.dump.ScanCount, 1)))
	if db == 0 && r.rnd.IntN(3) == 0 {
		// A SCAN batch of a big key and more than BatchBytes of small ones.
		if err := r.burst(f); err != nil {
			return err
		}
	}
	for i := 0; i < keys && r.bytes < 24<<20 && r.cost < maxCost; i++ {
		key := r.keyName(f, i)
		var err error
		kinds := []string{"string", "string", "list", "set", "zset", "hash", "stream"}
		if r.caps.FieldTTLs {
			kinds = append(kinds, "hash-field-ttls")
		}
		if r.caps.VectorSets && r.rnd.IntN(3) == 0 {
			kinds = append(kinds, "vectorset")
		}
		switch kind := pick(r, kinds...); kind {
		case "string":
			err = r.str(f, key)
		case "list":
			err = r.list(f, key)
		case "set":
			err = r.set(f, key)
		case "zset":
			err = r.zset(f, key)
		case "hash":
			err = r.hash(f, key, false)
		case "hash-field-ttls":
			err = r.hash(f, key, true)
		case "stream":
			err = r.stream(f, key)
		case "vectorset":
			err = r.vectorSet(f, key)
		}
		if err != nil {
			return err
		}
		if r.rnd.IntN(4) == 0 {
			if err := f.cmd("PEXPIRE", key, r.ttl()); err != nil {
				return err
			}
		}
	}
	return f.flush()
}

func (r *round) ttl() int64 { return 3600000 + r.rnd.Int64N(47*3600000) }

func (r *round) keyName(f *filling, i int) string {
	switch r.rnd.IntN(10) {
	case 0:
		return fmt.Sprintf("\x00bin\xff%s:%d", r.bin(r.intn(0, 8)), i)
	case 1:
		return fmt.Sprintf("{tag}:%d", i)
	case 2:
		return fmt.Sprintf("a}b{%d", i) // '}' and no hash tag
	case 3:
		if i == 0 {
			return "" // the empty key name
		}
	}
	return fmt.Sprintf("k:%d:%d", f.db, i)
}

// bin returns n random bytes.
func (r *round) bin(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.rnd.UintN(256))
	}
	return string(b)
}

// elem draws a collection element: mostly short, sometimes empty,
// integer-like, binary, multi-byte UTF-8, or long.
func (r *round) elem(i int) string {
	switch r.rnd.IntN(8) {
	case 0:
		return strconv.FormatInt(r.rnd.Int64()>>r.intn(0, 62), 10)
	case 1:
		return r.bin(r.intn(0, 12))
	case 2:
		return strings.Repeat("ü€", r.intn(1, 20))
	case 3:
		if r.rnd.IntN(4) == 0 {
			return strings.Repeat("L", r.intn(65, 3000)) // over the listpack value limit
		}
	}
	return fmt.Sprintf("e%d", i)
}

// count draws an element count on the thresholds.
func (r *round) count() int {
	n := pick(r,
		r.around(int(r.dump.BigElements), 1),
		r.around(int(r.dump.BigElements)+1, 1),
		r.around(r.dump.Window, 1),
		r.around(2*r.dump.Window, 1),
		r.around(r.reader.MaxChunkItems, 1),
		r.around(r.rest.BatchKeys, 1),
		r.intn(1, 5),
		r.intn(1, 3*int(r.dump.BigElements)+3),
	)
	return min(n, 3000)
}

// length draws a string length on the thresholds.
func (r *round) length() int {
	n := pick(r,
		0, r.intn(1, 64),
		r.around(int(r.dump.BigBytes), 1),
		r.around(int(r.dump.StringWindow), 1),
		r.around(2*int(r.dump.StringWindow), 1),
		r.around(r.reader.MaxChunkBytes, 1),
		r.intn(0, 3*int(r.dump.BigBytes)),
	)
	// A string over BigBytes is read in GETRANGE windows, twice, and
	// restored with an APPEND per chunk of MaxChunkBytes: some 300 windows
	// and 100 chunks at most (the reader scans what it holds of a string
	// for each part: tiny parts of a long string cost it dearly).
	return min(n, 3<<20, max(int(r.dump.BigBytes)+1, 300*int(r.dump.StringWindow)), 100*r.reader.MaxChunkBytes)
}

func (r *round) str(f *filling, key string) error {
	n := r.length()
	var v string
	switch r.rnd.IntN(4) {
	case 0:
		v = r.bin(n)
	case 1:
		// Multi-byte UTF-8 that straddles the windows.
		v = strings.Repeat("ü€\U0001D11E", n/9+1)[:n]
	case 2:
		if n < 20 {
			v = strconv.Itoa(r.rnd.IntN(1 << 20)) // int-encoded
			break
		}
		fallthrough
	default:
		v = strings.Repeat("abcdefghij", n/10+1)[:n]
	}
	r.bytes += len(v)
	r.cost += 1 + 2*len(v)/int(r.dump.StringWindow) + len(v)/r.reader.MaxChunkBytes
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: string of %d bytes", f.db, key, len(v)))
	return f.cmd("SET", key, v)
}

// many queues cmd key elems... in commands of at most 500 elements.
func (r *round) many(f *filling, cmd, key string, elems []any) error {
	for start := 0; start < len(elems); start += 500 {
		args := append([]any{cmd, key}, elems[start:min(start+500, len(elems))]...)
		if err := f.cmd(args...); err != nil {
			return err
		}
	}
	return nil
}

func (r *round) list(f *filling, key string) error {
	n := r.count()
	r.collection(n)
	// Sometimes items sized so that the list's memory is about BigBytes.
	sized := 0
	if r.rnd.IntN(4) == 0 {
		sized = max(1, int(r.dump.BigBytes)/n+r.intn(-1, 1))
	}
	elems := make([]any, n)
	for i := range elems {
		e := r.elem(i)
		if sized > 0 {
			e = strings.Repeat("s", sized)
		}
		r.bytes += len(e)
		elems[i] = e
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: list of %d (items of %d bytes)", f.db, key, n, sized))
	return r.many(f, "RPUSH", key, elems)
}

func (r *round) set(f *filling, key string) error {
	n := r.count()
	r.collection(n)
	ints := r.rnd.IntN(2) == 0
	elems := make([]any, n)
	for i := range elems {
		if ints {
			elems[i] = strconv.FormatInt(int64(i)*pick(r, int64(1), 70000, 1<<40)-int64(n/2), 10)
		} else {
			e := fmt.Sprintf("%d:%s", i, r.elem(i))
			r.bytes += len(e)
			elems[i] = e
		}
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: set of %d (integers %v)", f.db, key, n, ints))
	return r.many(f, "SADD", key, elems)
}

var randomScores = []string{"+inf", "-inf", "-0", "0", "5e-324", "-5e-324", "1.7976931348623157e308", "0.1", "1", "1", "1", "-2.5", "1e21"}

func (r *round) zset(f *filling, key string) error {
	n := r.count()
	r.collection(n)
	elems := make([]any, 0, 2*n)
	for i := range n {
		var s string
		switch r.rnd.IntN(3) {
		case 0:
			s = pick(r, randomScores...)
		case 1:
			s = strconv.Itoa(r.intn(0, 3)) // ties
		default:
			s = strconv.FormatFloat(r.rnd.NormFloat64()*1e6, 'g', -1, 64)
		}
		m := fmt.Sprintf("%s%d", r.elem(i), i)
		r.bytes += len(m) + 8
		elems = append(elems, s, m)
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: zset of %d", f.db, key, n))
	return r.many(f, "ZADD", key, elems)
}

func (r *round) hash(f *filling, key string, fieldTTLs bool) error {
	n := r.count()
	r.collection(n)
	elems := make([]any, 0, 2*n)
	for i := range n {
		field := fmt.Sprintf("f%d%s", i, r.bin(r.intn(0, 3)))
		v := r.elem(i)
		r.bytes += len(field) + len(v)
		elems = append(elems, field, v)
	}
	if err := r.many(f, "HSET", key, elems); err != nil {
		return err
	}
	withTTL := 0
	if fieldTTLs {
		every := r.intn(1, 4)
		for i := 0; i < n; i += every {
			if err := f.cmd("HPEXPIRE", key, r.ttl(), "FIELDS", 1, elems[2*i]); err != nil {
				return err
			}
			withTTL++
		}
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: hash of %d, %d fields with TTLs", f.db, key, n, withTTL))
	return nil
}

// maxStreamID is the last ID a stream can have.
const maxStreamID = "18446744073709551615-18446744073709551615"

func (r *round) stream(f *filling, key string) error {
	n := r.count()
	if r.rnd.IntN(8) == 0 {
		n = 0 // an empty stream, with groups
	}
	maxID := n > 0 && r.rnd.IntN(4) == 0 // the last entry at the last possible ID
	if maxID && r.rnd.IntN(2) == 0 {
		n = min(3000, pick(r, 1, 2)*r.dump.Window) // the last entry ends an XRANGE window
	}
	r.collection(n)
	ids := make([]string, 0, n)
	ms := int64(r.intn(1, 1<<30))
	for i := range n {
		var id string
		switch {
		case maxID && i == n-1:
			id = maxStreamID
		case maxID && i == n-2:
			id = "18446744073709551615-5"
		case r.rnd.IntN(3) == 0:
			ms += int64(r.intn(1, 1000))
			id = fmt.Sprintf("%d-0", ms)
		default:
			id = fmt.Sprintf("%d-%d", ms, i)
		}
		ids = append(ids, id)
		args := []any{"XADD", key, id}
		for j := range r.intn(1, 4) {
			field := pick(r, "f", "g", fmt.Sprint("f", j))
			v := r.elem(j)
			r.bytes += len(field) + len(v)
			args = append(args, field, v)
		}
		if err := f.cmd(args...); err != nil {
			return err
		}
	}
	// Deletions and trims, before any entry is delivered (a pending entry
	// whose entry is gone cannot be restored: that is tested elsewhere).
	deleted := 0
	if n > 2 && r.rnd.IntN(3) == 0 {
		for i := 0; i < n-1; i += r.intn(2, 10) {
			if err := f.cmd("XDEL", key, ids[i]); err != nil {
				return err
			}
			deleted++
		}
	}
	if n > 4 && r.rnd.IntN(4) == 0 {
		if err := f.cmd("XTRIM", key, "MAXLEN", "=", n/2); err != nil {
			return err
		}
	}
	if n == 0 {
		if err := f.cmd("XGROUP", "CREATE", key, "g0", "$", "MKSTREAM"); err != nil {
			return err
		}
	}
	groups := r.intn(0, 3)
	for g := range groups {
		name := fmt.Sprintf("grp%d%s", g, r.bin(r.intn(0, 2)))
		start := pick(r, "0", "$")
		if n > 0 && r.rnd.IntN(4) == 0 {
			start = ids[r.rnd.IntN(len(ids))]
		}
		if err := f.cmd("XGROUP", "CREATE", key, name, start); err != nil {
			return err
		}
		if err := f.flush(); err != nil {
			return err
		}
		for c := range r.intn(0, 3) {
			consumer := fmt.Sprintf("c%d%s", c, r.bin(r.intn(0, 2)))
			res, err := f.c.Do(f.ctx, "XREADGROUP", "GROUP", name, consumer, "COUNT", r.intn(1, n+1), "STREAMS", key, ">").Result()
			if err != nil && err != redis.Nil {
				return fmt.Errorf("XREADGROUP: %w", err)
			}
			got := readIDs(res)
			for _, id := range got {
				switch r.rnd.IntN(4) {
				case 0:
					err = f.cmd("XACK", key, name, id)
				case 1:
					err = f.cmd("XCLAIM", key, name, consumer+"x", 0, id, "TIME", time.Now().Add(-time.Duration(r.intn(0, 3600))*time.Second).UnixMilli(),
						"RETRYCOUNT", r.intn(0, 9), "JUSTID")
				}
				if err != nil {
					return err
				}
			}
		}
		if r.rnd.IntN(2) == 0 {
			if err := f.cmd("XGROUP", "CREATECONSUMER", key, name, "idle"); err != nil {
				return err
			}
		}
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: stream of %d entries (%d deleted, last at the last possible ID %v), %d groups", f.db, key, n, deleted, maxID, groups))
	return f.flush()
}

// readIDs returns the entry IDs of an XREADGROUP reply.
func readIDs(res any) []string {
	var ids []string
	streams, _ := res.([]any)
	for _, s := range streams {
		pair, _ := s.([]any)
		if len(pair) != 2 {
			continue
		}
		entries, _ := pair[1].([]any)
		for _, e := range entries {
			if ep, _ := e.([]any); len(ep) > 0 {
				id, _ := ep[0].(string)
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func (r *round) vectorSet(f *filling, key string) error {
	n := min(r.count(), 300)
	r.cost += n
	dim := r.intn(2, 16)
	quant := pick(r, "", "NOQUANT", "BIN")
	for i := range n {
		args := []any{"VADD", key, "VALUES", dim}
		for range dim {
			args = append(args, strconv.FormatFloat(r.rnd.Float64()*2-1, 'g', 6, 32))
		}
		args = append(args, fmt.Sprintf("v%d%s", i, r.bin(r.intn(0, 2))))
		if quant != "" {
			args = append(args, quant)
		}
		if r.rnd.IntN(3) == 0 {
			args = append(args, "SETATTR", fmt.Sprintf(`{"i":%d}`, i))
		}
		if err := f.cmd(args...); err != nil {
			return err
		}
	}
	r.bytes += n * dim * 4
	r.shapes = append(r.shapes, fmt.Sprintf("db %d %q: vector set of %d, dimension %d, %q", f.db, key, n, dim, quant))
	return nil
}

// burst writes one big key and more than BatchBytes of small strings, so
// that a SCAN batch (with a ScanCount large enough) holds both.
func (r *round) burst(f *filling) error {
	size := min(r.intn(1, 4096), int(r.dump.BigBytes)) // small keys
	n := min(3000, int(r.dump.BatchBytes)/size+r.intn(1, 10))
	v := strings.Repeat("b", size)
	for i := range n {
		if err := f.cmd("SET", fmt.Sprintf("burst:%d", i), v); err != nil {
			return err
		}
	}
	r.bytes += n * size
	r.cost += n / r.dump.ScanCount
	r.collection(int(r.dump.BigElements) + 1)
	big := int(r.dump.BigElements) + 1
	elems := make([]any, big)
	for i := range elems {
		elems[i] = fmt.Sprintf("%d:%s", i, strings.Repeat("x", r.intn(0, 200)))
	}
	r.shapes = append(r.shapes, fmt.Sprintf("db %d: %d strings of %d bytes and a list of %d (a batch over BatchBytes with a big key)", f.db, n, size, big))
	if r.dump.ScanCount < n {
		r.dump.ScanCount = pick(r, r.dump.ScanCount, n+10) // often: all in one batch
	}
	return r.many(f, "RPUSH", "burst:big-list", elems)
}

// TestStreamEndingAtLastPossibleID: a stream whose last entry has the last
// possible ID (18446744073709551615-18446744073709551615, which XADD
// accepts) and whose length is a multiple of Window. The dump must write it
// once and stop.
func TestStreamEndingAtLastPossibleID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	must(t, c.Do(ctx, "XADD", "s", "1-1", "a", "1").Err())
	must(t, c.Do(ctx, "XADD", "s", maxStreamID, "a", "2").Err())
	base := opts(t, src, 0)
	facts, err := Inspect(ctx, base)
	must(t, err)
	for _, window := range []int{1, 2} {
		buf := &cappedBuffer{max: 1 << 20}
		w := codec.NewWriter(buf, codec.Header{Timestamp: "20260101_000000"})
		st, err := NewDumper(base, DumpOptions{Window: window}).Dump(ctx, facts, w)
		if err != nil {
			t.Fatalf("window %d: dump of a 2-entry stream ending at %s: %v (%d bytes written)", window, maxStreamID, err, buf.Len())
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st.Keys != 1 {
			t.Fatalf("window %d: stats %+v", window, st)
		}
		dst := redistest.Start(t)
		rs := restoreAll(t, ctx, dst, buf.Bytes(), RestoreOptions{})
		if rs.Restored != 1 || rs.Errors != 0 {
			t.Fatalf("window %d: restore stats %+v", window, rs)
		}
		mustCompare(t, ctx, c, dst.Client(t, 0))
	}
}
