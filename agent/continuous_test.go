package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/archiving"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/internal/redistest"
)

// archivingCfg is a Service configuration with archiving on, cutting
// segments every 200 ms.
func archivingCfg(redisURL, storage string) config.Config {
	cfg := config.Default()
	cfg.Redis.URL = redisURL
	cfg.Storage = storage
	cfg.Archiving = config.Archiving{Enabled: true, SegmentSeconds: 0.2}
	return cfg
}

// running is a Service's archive as the tests see it.
type running struct{ svc *Service }

// Status is the archiver's status (zero until it has started).
func (r running) Status() archiving.Status {
	st, _ := r.svc.ArchivingStatus()
	return st
}

// runArchiver runs the Service's continuous archive (RunArchiving, as
// serve does); the returned stop ends it and waits.
func runArchiver(t *testing.T, svc *Service) (running, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunArchiving(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("archiving: %v", err)
		}
	}
	t.Cleanup(stop)
	return running{svc}, stop
}

// replOffset is the server's master_repl_offset.
func replOffset(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	text, err := c.Info(context.Background(), "replication").Result()
	must(t, err)
	n, err := strconv.ParseInt(redistest.ParseInfo(text)["master_repl_offset"], 10, 64)
	must(t, err)
	return n
}

// caughtUp waits until the archiver has received everything the server
// has written so far (durable too, when durable is set).
func caughtUp(t *testing.T, a running, c *redis.Client, durable bool) {
	t.Helper()
	want := replOffset(t, c)
	redistest.WaitFor(t, fmt.Sprintf("the archiver to reach offset %d", want), func() bool {
		st := a.Status()
		if durable {
			return st.Connected && st.Durable >= want
		}
		return st.Connected && st.Received >= want
	})
}

// stateOf reads every key of databases 0-15 of c's server: its value's
// digest and whether it has a TTL (keys with less than a minute to live
// are left out).
func stateOf(t *testing.T, srv *redistest.Server) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for db := 0; db < 16; db++ {
		c := srv.Client(t, db)
		keys, err := c.Keys(ctx, "*").Result()
		must(t, err)
		for _, k := range keys {
			// Keys about to expire (the writer's 1 ms ones) are left out
			// on both sides: whether they are still there is a race.
			ttl, err := c.PTTL(ctx, k).Result()
			must(t, err)
			if ttl == -2 || ttl >= 0 && ttl < time.Minute { // go-redis: -2 (ns) is no key, -1 no TTL
				continue
			}
			d, err := c.Do(ctx, "DEBUG", "DIGEST-VALUE", k).Slice()
			must(t, err)
			out[fmt.Sprintf("%d/%s", db, k)] = fmt.Sprintf("%v ttl=%v", d, ttl > 0)
		}
	}
	return out
}

func diffStates(want, got map[string]string) []string {
	var d []string
	for k, v := range want {
		if got[k] != v {
			d = append(d, fmt.Sprintf("%s: want %q, got %q", k, v, got[k]))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: not wanted", k))
		}
	}
	sort.Strings(d)
	return d
}

// phase writes a seeded mix into the server: plain writes in several
// databases, MULTI/EXEC transfers, a Lua script, keys that expire at once
// (their DEL is in the stream), and, when flush is set, a FLUSHALL.
func phase(t *testing.T, srv *redistest.Server, rng *rand.Rand, i int, flush bool) {
	t.Helper()
	ctx := context.Background()
	dbs := []int{0, 1, 3}
	for n := 0; n < 200; n++ {
		c := srv.Client(t, dbs[rng.IntN(len(dbs))])
		k := fmt.Sprintf("k%d", rng.IntN(60))
		var err error
		switch rng.IntN(9) {
		case 0:
			err = c.Set(ctx, k, fmt.Sprintf("v%d.%d", i, n), 0).Err()
		case 1:
			err = c.Del(ctx, k).Err()
		case 2:
			err = c.HSet(ctx, "h"+k, fmt.Sprint(n), i).Err()
		case 3:
			err = c.RPush(ctx, "l"+k, n, i).Err()
		case 4:
			err = c.SAdd(ctx, "s"+k, n%7).Err()
		case 5:
			err = c.ZAdd(ctx, "z"+k, redis.Z{Score: float64(n), Member: i}).Err()
		case 6:
			_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.IncrBy(ctx, "acct:a", int64(n))
				p.DecrBy(ctx, "acct:b", int64(n))
				p.Set(ctx, "tx:last", n, 0)
				return nil
			})
		case 7:
			err = c.Eval(ctx, `redis.call('INCR', KEYS[1]); redis.call('SET', KEYS[2], ARGV[1]); return 1`, []string{"lua:n", "lua:v"}, n).Err()
		case 8:
			err = c.Set(ctx, "short"+k, n, time.Millisecond).Err()
			if err == nil {
				err = c.Set(ctx, "long"+k, n, time.Hour).Err()
			}
		}
		must(t, err)
	}
	must(t, srv.Client(t, 0).Set(ctx, "marker", i, 0).Err())
	if flush {
		must(t, srv.Client(t, 0).FlushAll(ctx).Err())
		must(t, srv.Client(t, 2).Set(ctx, "after-flush", i, 0).Err())
	}
}

// TestRestoreAtMarkers: with the archiver following a server that a
// writer changes in phases, a restore to the moment after each phase, into
// a fresh server, holds exactly the state the server had then (a FLUSHALL
// in one phase is undone by a restore to the moment before it).
func TestRestoreAtMarkers(t *testing.T) {
	for _, name := range []string{"redis-7.0", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := redistest.StartServer(t, name, "--repl-diskless-sync-delay", "0")
			c := src.Client(t, 0)
			rng := rand.New(rand.NewPCG(19, uint64(len(name))))
			phase(t, src, rng, 0, false) // in the base
			storage := filepath.Join(t.TempDir(), "backups")
			svc := newServiceCfg(t, archivingCfg(src.URL(0), storage))
			a, stop := runArchiver(t, svc)
			caughtUp(t, a, c, false)

			const phases = 8
			times := make([]time.Time, phases+1)
			states := make([]map[string]string, phases+1)
			for i := 1; i <= phases; i++ {
				phase(t, src, rng, i, i == 5)
				caughtUp(t, a, c, false)
				times[i] = time.Now()
				states[i] = stateOf(t, src)
				time.Sleep(3 * time.Millisecond) // the next phase's receive times are later
			}
			caughtUp(t, a, c, true)
			stop()

			for _, i := range []int{1, 4, 5, 8} {
				dst := redistest.StartServer(t, name)
				cfg := archivingCfg(dst.URL(0), storage)
				r := newServiceCfg(t, cfg)
				res, err := r.RestoreAt(ctx, times[i], RestoreOptions{})
				if err != nil {
					t.Fatalf("restore at phase %d: %v (%+v)", i, err, res)
				}
				if res.PointInTime == nil || res.PointInTime.Commands == 0 || res.PointInTime.Base == "" {
					t.Fatalf("phase %d: result %+v", i, res.PointInTime)
				}
				if d := diffStates(states[i], stateOf(t, dst)); len(d) > 0 {
					t.Fatalf("phase %d: %d differences, first: %s", i, len(d), strings.Join(d[:min(5, len(d))], "; "))
				}
			}
			// The state just before the FLUSHALL is phase 4's.
			if len(states[4]) < 50 || len(states[5]) > 5 {
				t.Fatalf("the phases did not write what the test needs: %d keys at 4, %d at 5", len(states[4]), len(states[5]))
			}
		})
	}
}

// TestArchiveContinuity: a killed replica connection is continued
// (PSYNC, no gap, no new base); an archiver that comes back after the
// server's backlog moved past it takes a new base and records the gap,
// which no restore claims to cover; both sides of it restore exactly.
func TestArchiveContinuity(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-backlog-size", "16384", "--repl-diskless-sync-delay", "0")
	c := src.Client(t, 0)
	rng := rand.New(rand.NewPCG(5, 6))
	storage := filepath.Join(t.TempDir(), "backups")
	svc := newServiceCfg(t, archivingCfg(src.URL(0), storage))
	a, stop := runArchiver(t, svc)
	phase(t, src, rng, 1, false)
	caughtUp(t, a, c, true)

	// 1. The connection killed: continued.
	killed, err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Int()
	must(t, err)
	if killed != 1 {
		t.Fatalf("killed %d replicas", killed)
	}
	for i := range 20 {
		must(t, c.Set(ctx, fmt.Sprint("after-kill", i), i, 0).Err())
	}
	caughtUp(t, a, c, false)
	t2, s2 := time.Now(), stateOf(t, src)
	caughtUp(t, a, c, true)
	if st := a.Status(); st.Resyncs != 1 || st.Gaps != 0 {
		t.Fatalf("after the kill: %d bases, %d gaps (want 1, 0)", st.Resyncs, st.Gaps)
	}
	stop()

	// 2. Down while the backlog (16 KiB) turns over: a new base, a gap.
	for i := range 100 {
		must(t, c.Set(ctx, fmt.Sprint("lost", i), strings.Repeat("z", 1024), 0).Err())
	}
	t3 := time.Now()
	time.Sleep(3 * time.Millisecond)
	a2, stop2 := runArchiver(t, svc)
	redistest.WaitFor(t, "the new base", func() bool { return a2.Status().Resyncs == 1 })
	phase(t, src, rng, 2, false)
	caughtUp(t, a2, c, false)
	t4, s4 := time.Now(), stateOf(t, src)
	caughtUp(t, a2, c, true)
	if st := a2.Status(); st.Gaps != 1 {
		t.Fatalf("after the backlog turned over: %d gaps, want 1", st.Gaps)
	}
	stop2()

	w, err := svc.Window(ctx)
	must(t, err)
	if len(w.Chains) != 2 || len(w.Gaps) != 1 || !strings.Contains(w.Gaps[0].Reason, "full resynchronisation") {
		t.Fatalf("window %+v", w)
	}
	for _, tc := range []struct {
		at   time.Time
		want map[string]string
	}{{t2, s2}, {t3, nil}, {t4, s4}} {
		dst := redistest.Start(t)
		r := newServiceCfg(t, archivingCfg(dst.URL(0), storage))
		res, err := r.RestoreAt(ctx, tc.at, RestoreOptions{})
		if tc.want == nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("restore into the gap: %v (%+v)", err, res.PointInTime)
			}
			if n := len(stateOf(t, dst)); n != 0 {
				t.Fatalf("a refused restore wrote %d keys", n)
			}
			continue
		}
		must(t, err)
		if d := diffStates(tc.want, stateOf(t, dst)); len(d) > 0 {
			t.Fatalf("at %s: %d differences, first: %s", tc.at, len(d), strings.Join(d[:min(5, len(d))], "; "))
		}
	}

	// Retention: the first base goes with its segments; the second chain
	// stays whole and restorable.
	first := len(w.Chains[0].Base) > 0
	dry, _, err := svc.Prune(ctx, retention.Policy{Last: 1}, true)
	must(t, err)
	if !first || dry.DeletedSegments != w.Chains[0].Segments || len(dry.Deleted) != 1 || dry.Deleted[0] != w.Chains[0].Base {
		t.Fatalf("dry run: %+v, first chain %+v", dry, w.Chains[0])
	}
	res, _, err := svc.Prune(ctx, retention.Policy{Last: 1}, false)
	must(t, err)
	if res.DeletedSegments != w.Chains[0].Segments {
		t.Fatalf("prune: %+v", res)
	}
	after, err := svc.Window(ctx)
	must(t, err)
	if len(after.Chains) != 1 || after.Chains[0] != w.Chains[1] || after.Orphans != 0 {
		t.Fatalf("after prune: %+v", after)
	}
	dst := redistest.Start(t)
	r := newServiceCfg(t, archivingCfg(dst.URL(0), storage))
	_, err = r.RestoreAt(ctx, t4, RestoreOptions{})
	must(t, err)
	if d := diffStates(s4, stateOf(t, dst)); len(d) > 0 {
		t.Fatalf("after prune: %d differences", len(d))
	}
}

// TestRestoreAtEncryptedAndDamaged: with backup.encrypt, bases and
// segments are age files that need the identity; a wrong or missing one,
// or one damaged byte of a segment, is refused before the target is
// touched.
func TestRestoreAtEncryptedAndDamaged(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	c := src.Client(t, 0)
	id, _ := newIdentity(t)
	other, _ := newIdentity(t)
	storage := filepath.Join(t.TempDir(), "backups")
	cfg := archivingCfg(src.URL(0), storage)
	cfg.Backup.Encrypt.Recipients = []string{id.Recipient().String()}
	svc := newServiceCfg(t, cfg)
	a, stop := runArchiver(t, svc)
	phase(t, src, rand.New(rand.NewPCG(1, 1)), 1, false)
	caughtUp(t, a, c, false)
	at, want := time.Now(), stateOf(t, src)
	must(t, c.Set(ctx, "later", 1, 0).Err())
	caughtUp(t, a, c, true)
	stop()

	w, err := svc.Window(ctx)
	must(t, err)
	if len(w.Chains) != 1 || !strings.HasSuffix(w.Chains[0].Base, ".age") {
		t.Fatalf("window %+v", w)
	}
	segs, err := filepath.Glob(filepath.Join(storage, "wal", "*.wal.gz.age"))
	must(t, err)
	if len(segs) == 0 || len(segs) != w.Chains[0].Segments {
		t.Fatalf("%d encrypted segment files, %d in the chain", len(segs), w.Chains[0].Segments)
	}
	dst := redistest.Start(t)
	r := newServiceCfg(t, archivingCfg(dst.URL(0), storage))
	for _, ids := range [][]age.Identity{nil, {other}} {
		if _, err := r.RestoreAt(ctx, at, RestoreOptions{Identities: ids}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("identities %v: %v", ids, err)
		}
		if n := dbsize(t, dst); n != 0 {
			t.Fatalf("a refused restore wrote %d keys", n)
		}
	}
	res, err := r.RestoreAt(ctx, at, RestoreOptions{Identities: []age.Identity{id}})
	must(t, err)
	if d := diffStates(want, stateOf(t, dst)); len(d) > 0 || res.PointInTime.Commands == 0 {
		t.Fatalf("%d differences (%+v): %v", len(d), res.PointInTime, d)
	}

	// One byte of the first segment flipped.
	b, err := os.ReadFile(segs[0])
	must(t, err)
	b[len(b)/2] ^= 0x40
	must(t, os.WriteFile(segs[0], b, 0o600))
	dst2 := redistest.Start(t)
	r2 := newServiceCfg(t, archivingCfg(dst2.URL(0), storage))
	if _, err := r2.RestoreAt(ctx, at, RestoreOptions{Identities: []age.Identity{id}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("damaged segment: %v", err)
	}
	if n := dbsize(t, dst2); n != 0 {
		t.Fatalf("a refused restore wrote %d keys", n)
	}
}

// TestArchiveFollowsFailover: the archiver reads a primary that hands its
// role to its replica (FAILOVER) and goes on as the new primary's
// replica: the stream continues under the new replication ID with the
// same offsets (+CONTINUE <new id>), so one chain, without a gap or a new
// base, restores both sides of the failover.
func TestArchiveFollowsFailover(t *testing.T) {
	ctx := context.Background()
	m := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	r := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	mc, rc := m.Client(t, 0), r.Client(t, 0)
	linked := func(c *redis.Client) func() bool {
		return func() bool {
			text, err := c.Info(ctx, "replication").Result()
			return err == nil && redistest.ParseInfo(text)["master_link_status"] == "up"
		}
	}
	must(t, rc.Do(ctx, "REPLICAOF", "127.0.0.1", m.Port).Err())
	redistest.WaitFor(t, "the replica's link", linked(rc))
	storage := filepath.Join(t.TempDir(), "backups")
	svc := newServiceCfg(t, archivingCfg(m.URL(0), storage))
	a, stop := runArchiver(t, svc)
	rng := rand.New(rand.NewPCG(8, 9))
	phase(t, m, rng, 1, false)
	caughtUp(t, a, mc, false)
	t1, s1 := time.Now(), stateOf(t, m)
	time.Sleep(3 * time.Millisecond)
	oldID := a.Status().ReplID

	must(t, mc.Do(ctx, "FAILOVER", "TO", "127.0.0.1", r.Port).Err())
	redistest.WaitFor(t, "the old primary to follow the new one", linked(mc))
	phase(t, r, rng, 2, false)
	caughtUp(t, a, rc, false)
	t2, s2 := time.Now(), stateOf(t, r)
	caughtUp(t, a, rc, true)
	st := a.Status()
	stop()
	if st.ReplID == oldID || st.Gaps != 0 || st.Resyncs != 1 {
		t.Fatalf("after the failover: replid %s (was %s), %d gaps, %d bases", st.ReplID, oldID, st.Gaps, st.Resyncs)
	}
	w, err := svc.Window(ctx)
	must(t, err)
	if len(w.Chains) != 1 || len(w.Gaps) != 0 {
		t.Fatalf("window %+v", w)
	}
	for _, tc := range []struct {
		at   time.Time
		want map[string]string
	}{{t1, s1}, {t2, s2}} {
		dst := redistest.Start(t)
		res, err := newServiceCfg(t, archivingCfg(dst.URL(0), storage)).RestoreAt(ctx, tc.at, RestoreOptions{})
		must(t, err)
		if d := diffStates(tc.want, stateOf(t, dst)); len(d) > 0 {
			t.Fatalf("at %s (%+v): %d differences, first: %s", tc.at, res.PointInTime, len(d), strings.Join(d[:min(5, len(d))], "; "))
		}
	}
}

// TestArchiveDroppedAtOutputLimit: a server whose replica output buffer
// limit is exceeded drops the archiver; with the backlog outrun as well,
// the archiver reconnects, takes a new base and records the gap, and the
// writes after it are archived.
func TestArchiveDroppedAtOutputLimit(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-backlog-size", "16384", "--repl-diskless-sync-delay", "0")
	c := src.Client(t, 0)
	svc := newServiceCfg(t, archivingCfg(src.URL(0), filepath.Join(t.TempDir(), "backups")))
	a, stop := runArchiver(t, svc)
	defer stop()
	caughtUp(t, a, c, true)
	must(t, c.Set(ctx, "before", 1, 0).Err())
	caughtUp(t, a, c, true)
	must(t, c.ConfigSet(ctx, "client-output-buffer-limit", "replica 16kb 16kb 0").Err())
	must(t, c.Set(ctx, "big", strings.Repeat("b", 256<<10), 0).Err())
	redistest.WaitFor(t, "the archiver to be dropped", func() bool { return a.Status().LastError != "" })
	must(t, c.ConfigSet(ctx, "client-output-buffer-limit", "replica 256mb 64mb 60").Err())
	redistest.WaitFor(t, "a new base", func() bool { return a.Status().Resyncs == 2 })
	must(t, c.Set(ctx, "after", 1, 0).Err())
	caughtUp(t, a, c, true)
	if st := a.Status(); st.Gaps != 1 {
		t.Fatalf("%d gaps, want 1 (%+v)", st.Gaps, st)
	}
	w, err := svc.Window(ctx)
	must(t, err)
	if len(w.Gaps) != 1 || len(w.Chains) != 2 {
		t.Fatalf("window %+v", w)
	}
}

// TestRestoreAtKeepsDatabaseNumbers: a base of one database (3) goes back
// into database 3, not the URL's 0, since the stream after it SELECTs by
// number.
func TestRestoreAtKeepsDatabaseNumbers(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	must(t, src.Client(t, 3).Set(ctx, "in3", "base", 0).Err())
	storage := filepath.Join(t.TempDir(), "backups")
	svc := newServiceCfg(t, archivingCfg(src.URL(0), storage))
	a, stop := runArchiver(t, svc)
	c := src.Client(t, 0)
	caughtUp(t, a, c, true)
	must(t, src.Client(t, 3).Incr(ctx, "n3").Err())
	caughtUp(t, a, c, false)
	at, want := time.Now(), stateOf(t, src)
	caughtUp(t, a, c, true)
	stop()
	dst := redistest.Start(t)
	_, err := newServiceCfg(t, archivingCfg(dst.URL(0), storage)).RestoreAt(ctx, at, RestoreOptions{})
	must(t, err)
	if d := diffStates(want, stateOf(t, dst)); len(d) > 0 || len(want) != 2 {
		t.Fatalf("%d keys wanted; differences: %v", len(want), d)
	}
}
