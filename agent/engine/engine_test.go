package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

func opts(t *testing.T, s *redistest.Server, db int) *redis.Options {
	t.Helper()
	o, err := ParseURL(s.SocketURL(db))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// small thresholds so that the windowed paths run on small data.
var smallDump = DumpOptions{ScanCount: 100, BigElements: 200, BigBytes: 64 << 10, Window: 77, StringWindow: 100 << 10, BatchBytes: 256 << 10}

func dumpAll(t *testing.T, ctx context.Context, s *redistest.Server, o DumpOptions) ([]byte, DumpStats) {
	t.Helper()
	base := opts(t, s, 0)
	facts, err := Inspect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := codec.NewWriter(&buf, codec.Header{Timestamp: "20260101_000000", CreatedAt: time.Now().UTC()})
	st, err := NewDumper(base, o).Dump(ctx, facts, w)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), st
}

func restoreAll(t *testing.T, ctx context.Context, s *redistest.Server, archive []byte, o RestoreOptions) RestoreStats {
	t.Helper()
	rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 50, MaxChunkBytes: 32 << 10})
	st, err := NewRestorer(opts(t, s, 0), o).Restore(ctx, rd)
	if err != nil {
		t.Fatalf("restore: %v (stats %+v)", err, st)
	}
	return st
}

// mustCompare checks b against a. TTLs are restored as recorded, so on b
// they run later by the time since the dump read them (a few seconds at
// most on a loaded machine).
func mustCompare(t *testing.T, ctx context.Context, a, b *redis.Client) {
	t.Helper()
	diffs, err := redistest.Compare(ctx, a, b, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("restored data differs:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestRoundTripEveryTypeAndDatabase(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 1500, BigString: 600 << 10, Streams: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := datagen.Fill(ctx, src.Client(t, 3), datagen.Spec{Keys: 400, TTLPercent: 50, Binary: true, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	// Edge cases by hand: empty string, NUL-led key, a huge-score zset, an
	// empty stream with a group, a key with braces.
	c0 := src.Client(t, 0)
	must(t, c0.Set(ctx, "", "empty-name", 0).Err())
	must(t, c0.Set(ctx, "empty-value", "", 0).Err())
	must(t, c0.Set(ctx, "\x00nul-led", "\x00\x01\xff", 0).Err())
	must(t, c0.Set(ctx, "a}b{", "braces", time.Hour).Err())
	must(t, c0.Do(ctx, "XGROUP", "CREATE", "empty-stream", "g", "$", "MKSTREAM").Err())
	must(t, c0.ZAdd(ctx, "z-extremes", redis.Z{Score: 1.7976931348623157e308, Member: "max"}, redis.Z{Score: 5e-324, Member: "tiny"}).Err())

	for _, mode := range []ReadMode{ReadAuto, ReadCommands} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			roundTrip(t, ctx, src, mode)
		})
	}
}

func roundTrip(t *testing.T, ctx context.Context, src *redistest.Server, mode ReadMode) {
	dst := redistest.Start(t)
	o := smallDump
	o.ReadMode = mode
	archive, st := dumpAll(t, ctx, src, o)
	if st.BigKeys < 5 {
		t.Errorf("big keys read in windows: %d, want at least 5", st.BigKeys)
	}
	var doc map[string]any
	if err := json.Unmarshal(archive, &doc); err != nil {
		t.Fatalf("archive is not standard JSON: %v", err)
	}
	want := mustDBSize(t, ctx, src.Client(t, 0)) + mustDBSize(t, ctx, src.Client(t, 3))
	if st.Keys != want {
		t.Fatalf("dumped %d keys, server holds %d", st.Keys, want)
	}

	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{BatchKeys: 64, WriteMode: WriteMode(mode)})
	if rs.Restored != want || rs.Errors != 0 || rs.Skipped != 0 {
		t.Fatalf("restore stats %+v, want %d restored", rs, want)
	}
	mustCompare(t, ctx, src.Client(t, 0), dst.Client(t, 0))
	mustCompare(t, ctx, src.Client(t, 3), dst.Client(t, 3))
	// No temporary key is left behind.
	if n, _ := dst.Client(t, 0).Keys(ctx, "*redback-restore-tmp*").Result(); len(n) > 0 {
		t.Fatalf("temporary keys left: %q", n)
	}
}

func TestRestoreWithoutOverwriteLeavesExistingKeys(t *testing.T) {
	for _, mode := range []WriteMode{WriteAuto, WriteScript} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) { restoreExisting(t, mode) })
	}
}

func restoreExisting(t *testing.T, mode WriteMode) {
	ctx := context.Background()
	src := redistest.Start(t)
	dst := redistest.Start(t)
	cs, cd := src.Client(t, 0), dst.Client(t, 0)
	must(t, datagen.Fill(ctx, cs, datagen.Spec{Keys: 500, TTLPercent: 10, BigElements: 400, Seed: 3}))
	archive, st := dumpAll(t, ctx, src, smallDump)

	// The target already holds some of the keys, with other values and types.
	keys, err := cs.Keys(ctx, "key:1*").Result()
	must(t, err)
	keys = append(keys, "big:hash", "big:list")
	before := map[string]string{}
	for i, k := range keys {
		if i%2 == 0 {
			must(t, cd.Set(ctx, k, "existing", 0).Err())
		} else {
			must(t, cd.SAdd(ctx, k, "existing").Err())
		}
		d, err := redistest.Digest(ctx, cd, k)
		must(t, err)
		before[k] = d
	}
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{WriteMode: mode})
	if rs.Skipped != int64(len(keys)) || rs.Restored != st.Keys-int64(len(keys)) || rs.Errors != 0 {
		t.Fatalf("stats %+v; want %d skipped of %d", rs, len(keys), st.Keys)
	}
	for k, d := range before {
		got, err := redistest.Digest(ctx, cd, k)
		must(t, err)
		if got != d {
			t.Fatalf("existing key %q was modified", k)
		}
		if ttl := cd.PTTL(ctx, k).Val(); ttl != -1 {
			t.Fatalf("existing key %q got a TTL %v", k, ttl)
		}
	}

	// With overwrite every key becomes the archive's.
	rs = restoreAll(t, ctx, dst, archive, RestoreOptions{Overwrite: true, WriteMode: mode})
	if rs.Restored != st.Keys || rs.Errors != 0 {
		t.Fatalf("overwrite stats %+v", rs)
	}
	mustCompare(t, ctx, cs, cd)
}

func TestDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	dst := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 300, BigElements: 300, Streams: 1, Seed: 4}))
	archive, st := dumpAll(t, ctx, src, smallDump)
	must(t, dst.Client(t, 0).Set(ctx, "big:hash", "x", 0).Err())
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{DryRun: true})
	if rs.Restored != st.Keys-1 || rs.Skipped != 1 {
		t.Fatalf("dry run stats %+v, want %d/1", rs, st.Keys-1)
	}
	if n := mustDBSize(t, ctx, dst.Client(t, 0)); n != 1 {
		t.Fatalf("dry run wrote: %d keys", n)
	}
}

func TestAbsoluteTTLSkipsExpiredKeys(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	dst := redistest.Start(t)
	c := src.Client(t, 0)
	must(t, c.Set(ctx, "short", "v", 3*time.Second).Err())
	must(t, c.HSet(ctx, "long", "f", "v").Err())
	must(t, c.Expire(ctx, "long", time.Hour).Err())
	must(t, c.Set(ctx, "forever", "v", 0).Err())
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	later := func() time.Time { return time.Now().Add(10 * time.Second) }
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{TTL: TTLAbsolute, Now: later})
	if rs.Restored != 2 || rs.Expired != 1 {
		t.Fatalf("stats %+v: want 2 restored, 1 expired", rs)
	}
	d := dst.Client(t, 0)
	if d.Exists(ctx, "short").Val() != 0 {
		t.Fatal("an expired key came back")
	}
	if ttl := d.PTTL(ctx, "long").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("long ttl %v", ttl)
	}
	if d.PTTL(ctx, "forever").Val() != -1 {
		t.Fatal("persistent key got a TTL")
	}
}

func TestSkipKeys(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	must(t, c.Set(ctx, "redback:lease", "agent-1", time.Minute).Err())
	must(t, c.Set(ctx, "kept", "v", 0).Err())
	_, st := dumpAll(t, ctx, src, DumpOptions{SkipKeys: [][]byte{[]byte("redback:lease")}})
	if st.Keys != 1 {
		t.Fatalf("dumped %d keys, want only the one that is not the lease", st.Keys)
	}
}

func TestDBMap(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	dst := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 100, Seed: 5}))
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	restoreAll(t, ctx, dst, archive, RestoreOptions{DBMap: map[int]int{0: 7}})
	if mustDBSize(t, ctx, dst.Client(t, 0)) != 0 {
		t.Fatal("db 0 written")
	}
	mustCompare(t, ctx, src.Client(t, 0), dst.Client(t, 7))
}

// vanishingWriter deletes every key of the database when the first key is
// written: the rest of the dump finds keys gone.
// TestKeysVanishingMidDumpAreSkipped: keys that SCAN returned and that are
// gone by the time they are dumped are counted as vanished and left out,
// and the archive stays whole. The database is flushed when the scanner
// looks at its first key (the Select hook runs between SCAN and DUMP), so
// every key of that SCAN batch vanishes whatever the timing: the writer
// used to flush at the first key written, by which time, on a loaded
// machine, the single worker had sometimes dumped every key already.
func TestKeysVanishingMidDumpAreSkipped(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	must(t, datagen.Fill(ctx, c, datagen.Spec{Keys: 5000, BigElements: 500, Seed: 6}))
	base := opts(t, src, 0)
	facts, err := Inspect(ctx, base)
	must(t, err)
	var buf bytes.Buffer
	w := codec.NewWriter(&buf, codec.Header{})
	var once sync.Once
	flush := func([]byte) bool {
		once.Do(func() { must(t, c.FlushDB(ctx).Err()) })
		return true
	}
	st, err := NewDumper(base, DumpOptions{ScanCount: 100, Workers: 1, BigElements: 200, Select: flush}).Dump(ctx, facts, w)
	must(t, err)
	tr, err := w.Close()
	must(t, err)
	if st.Vanished == 0 || st.Keys != 0 || tr.KeysCount != st.Keys {
		t.Fatalf("stats %+v, trailer %d: want every scanned key vanished, none written", st, tr.KeysCount)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("archive is not JSON: %v", err)
	}
}

// killingWriter kills the server after n keys.
type killingWriter struct {
	*codec.Writer
	s *redistest.Server
	n int
}

func (k *killingWriter) BeginKey(h codec.KeyHeader) error {
	if k.n--; k.n == 0 {
		k.s.Kill()
	}
	return k.Writer.BeginKey(h)
}

func TestRedisGoingAwayFailsTheDump(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 20000, Seed: 7}))
	base := opts(t, src, 0)
	base.MaxRetries = -1
	facts, err := Inspect(ctx, base)
	must(t, err)
	w := &killingWriter{Writer: codec.NewWriter(&bytes.Buffer{}, codec.Header{}), s: src, n: 500}
	done := make(chan error, 1)
	go func() {
		_, err := NewDumper(base, DumpOptions{ScanCount: 200}).Dump(ctx, facts, w)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("dump succeeded although the server died")
		}
		t.Logf("error (expected): %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("dump hangs after the server died")
	}
}

func TestRestoreRefusesReplicaAndEvictingTargets(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t)
	c := s.Client(t, 0)
	must(t, c.ConfigSet(ctx, "maxmemory", "100mb").Err())
	must(t, c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	err := CheckTarget(ctx, opts(t, s, 0), false)
	if err == nil || !strings.Contains(err.Error(), "allkeys-lru") {
		t.Fatalf("evicting target: %v", err)
	}
	must(t, CheckTarget(ctx, opts(t, s, 0), true))
	primary := redistest.Start(t)
	must(t, c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	must(t, c.Do(ctx, "REPLICAOF", "127.0.0.1", primary.Port).Err())
	err = CheckTarget(ctx, opts(t, s, 0), false)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("replica target: %v", err)
	}
}

func TestRestoreCountsFailedKeys(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	dst := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 200, Seed: 8}))
	archive, st := dumpAll(t, ctx, src, DumpOptions{})
	// A full target: every write fails with OOM, and each is counted.
	d := dst.Client(t, 0)
	must(t, d.ConfigSet(ctx, "maxmemory", "1").Err())
	rd := codec.NewReader(bytes.NewReader(archive))
	rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{MaxErrors: -1}).Restore(ctx, rd)
	must(t, err)
	if rs.Errors != st.Keys || rs.Restored != 0 || len(rs.Messages) == 0 || !strings.Contains(rs.Messages[0], "OOM") {
		t.Fatalf("stats %+v", rs)
	}
	// And with a cap, the restore stops.
	rd = codec.NewReader(bytes.NewReader(archive))
	_, err = NewRestorer(opts(t, dst, 0), RestoreOptions{MaxErrors: 5}).Restore(ctx, rd)
	if !errors.Is(err, ErrTooManyErrors) {
		t.Fatalf("err %v, want ErrTooManyErrors", err)
	}
}

func TestTempNameKeepsTheSlot(t *testing.T) {
	for _, k := range []string{"plain", "{user}:1", "a{b}c", "a}b{", "}{", "{}x", "x{}", "{a}{b}", "", "ünï{}"} {
		tmp := tempName([]byte(k))
		if slot(tmp) != slot([]byte(k)) {
			t.Errorf("tempName(%q) = %q: slot %d, want %d", k, tmp, slot(tmp), slot([]byte(k)))
		}
		if bytes.Equal(tmp, []byte(k)) {
			t.Errorf("tempName(%q) is the key itself", k)
		}
	}
	// CRC16 reference values from the Redis Cluster specification.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 = %x", got)
	}
}

func TestHashSetDropsRepeats(t *testing.T) {
	s := newHashSet()
	for i := 0; i < 100000; i++ {
		if !s.add([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) {
			t.Fatalf("key %d reported as a repeat", i)
		}
	}
	for i := 0; i < 100000; i += 7 {
		if s.add([]byte{byte(i), byte(i >> 8), byte(i >> 16)}) {
			t.Fatalf("repeat %d not detected", i)
		}
	}
	if s.Len() != 100000 {
		t.Fatalf("len %d", s.Len())
	}
	// The tables stay within 1.625 slots a key (80 % full at most, grown by
	// a quarter): 19.5 bytes a key with 12-byte slots.
	slots := 0
	for i := range s.shards {
		slots += len(s.shards[i].slots)
	}
	if perKey := float64(slots*12) / float64(s.Len()); perKey > 19.5 || perKey < 15 {
		t.Fatalf("%.1f bytes a key", perKey)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustDBSize(t *testing.T, ctx context.Context, c *redis.Client) int64 {
	t.Helper()
	n, err := c.DBSize(ctx).Result()
	must(t, err)
	return n
}

// The rate caps hold the agent back on busy servers: 3000 keys at 1000 keys
// a second (burst 1000) cannot take less than two seconds. (A lower bound:
// a slow machine only makes it longer.)
func TestRateCapsSlowTheAgentDown(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 3000, Seed: 9}))
	start := time.Now()
	archive, st := dumpAll(t, ctx, src, DumpOptions{ScanCount: 100, KeysPerSecond: 1000})
	if took := time.Since(start); took < 1500*time.Millisecond || st.Keys != 3000 {
		t.Fatalf("capped dump of %d keys took %v", st.Keys, took)
	}
	start = time.Now()
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{BatchKeys: 100, KeysPerSecond: 1000})
	if took := time.Since(start); took < 1500*time.Millisecond || rs.Restored != 3000 {
		t.Fatalf("capped restore of %d keys took %v", rs.Restored, took)
	}
}
