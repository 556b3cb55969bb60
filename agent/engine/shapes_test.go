package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/redistest"
)

// One SCAN batch holding a key over the big-key size and more than
// BatchBytes of small keys (here 2000 strings of 3 kB and a 1.4 MB list,
// with the default thresholds) once crashed the dump with an index out of
// range.
func TestBatchWithBigKeyAndManySmallOnes(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	pipe := c.Pipeline()
	val := strings.Repeat("v", 3000)
	for i := 0; i < 2000; i++ {
		pipe.Set(ctx, fmt.Sprintf("s:%d", i), val, 0)
	}
	elems := make([]any, 0, 1400)
	for i := 0; i < 1400; i++ {
		elems = append(elems, strings.Repeat(string(rune('a'+i%26)), 1000))
	}
	pipe.RPush(ctx, "big-list", elems...)
	_, err := pipe.Exec(ctx)
	must(t, err)
	// Every key in one SCAN batch.
	archive, st := dumpAll(t, ctx, src, DumpOptions{ScanCount: 5000})
	if st.Keys != 2001 || st.BigKeys != 1 {
		t.Fatalf("dump stats %+v", st)
	}
	dst := redistest.Start(t)
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{})
	if rs.Restored != 2001 || rs.Errors != 0 {
		t.Fatalf("restore stats %+v", rs)
	}
	mustCompare(t, ctx, c, dst.Client(t, 0))
}

// panicWriter panics on its n-th key.
type panicWriter struct {
	*codec.Writer
	n int
}

func (p *panicWriter) BeginKey(h codec.KeyHeader) error {
	p.n--
	if p.n == 0 {
		var m map[string]int
		m["boom"]++ // a nil-map write: a real runtime panic
	}
	return p.Writer.BeginKey(h)
}

// A panic inside the dump is that dump's error, never the end of the
// process running it.
func TestPanicInDumpIsAnError(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for i := 0; i < 50; i++ {
		must(t, c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err())
	}
	base := opts(t, src, 0)
	facts, err := Inspect(ctx, base)
	must(t, err)
	w := &panicWriter{Writer: codec.NewWriter(&bytes.Buffer{}, codec.Header{Timestamp: "20260101_000000"}), n: 10}
	_, err = NewDumper(base, DumpOptions{ScanCount: 10}).Dump(ctx, facts, w)
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("err %v, want ErrInternal naming the panic", err)
	}
}

// Keys bound for a database the target lacks are errors that name the
// database, never "skipped"; the dry run says the same.
func TestRestoreIntoMissingDatabaseIsAnError(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	for db, n := range map[int]int{0: 30, 5: 20} {
		c := src.Client(t, db)
		for i := 0; i < n; i++ {
			must(t, c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err())
		}
		must(t, c.RPush(ctx, "list", "a", "b").Err())
	}
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	dst := redistest.Start(t, "--databases", "4")
	for _, dry := range []bool{true, false} {
		rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 50, MaxChunkBytes: 32 << 10})
		rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{DryRun: dry, MaxErrors: -1}).Restore(ctx, rd)
		must(t, err)
		if rs.Restored != 31 || rs.Errors != 21 || rs.Skipped != 0 || len(rs.Messages) == 0 || !strings.Contains(rs.Messages[0], "database 5") {
			t.Fatalf("dry run %v: stats %+v", dry, rs)
		}
	}
	// And --db past the end, the same.
	rd := codec.NewReader(bytes.NewReader(archive))
	rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{DBMap: map[int]int{5: 7, 0: 1}, MaxErrors: -1}).Restore(ctx, rd)
	must(t, err)
	if rs.Restored != 31 || rs.Errors != 21 {
		t.Fatalf("--db 5:7: stats %+v", rs)
	}
}

// A job queue: a stream whose group has consumers and entries delivered
// but not acknowledged, some delivered several times, one whose entry was
// deleted since. The restore gives back every pending entry with its
// owner, delivery time and count.
func TestStreamDeliveryStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for _, key := range []string{"jobs", "jobs-big"} {
		n := 20
		if key == "jobs-big" {
			n = 500
		}
		for i := 0; i < n; i++ {
			must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"job", i}}).Err())
		}
		must(t, c.XGroupCreate(ctx, key, "workers", "0").Err())
		must(t, c.XGroupCreate(ctx, key, "audit", "$").Err())
		must(t, c.XGroupCreateConsumer(ctx, key, "audit", "idle-one").Err())
		for _, cons := range []string{"w1", "w2", "w3"} {
			res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: cons, Streams: []string{key, ">"}, Count: int64(n / 4)}).Result()
			must(t, err)
			// w1 acknowledges half of its jobs.
			if cons == "w1" {
				for i, m := range res[0].Messages {
					if i%2 == 0 {
						must(t, c.XAck(ctx, key, "workers", m.ID).Err())
					}
				}
			}
		}
		// Redeliver w2's jobs twice to w3 (delivery counts 2 and 3).
		pend, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: "workers", Start: "-", End: "+", Count: 1000, Consumer: "w2"}).Result()
		must(t, err)
		for round := 0; round < 2; round++ {
			for _, p := range pend {
				must(t, c.XClaim(ctx, &redis.XClaimArgs{Stream: key, Group: "workers", Consumer: "w3", Messages: []string{p.ID}}).Err())
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A delivered entry deleted since: its pending entry cannot come back.
	pend, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "jobs", Group: "workers", Start: "-", End: "+", Count: 1, Consumer: "w3"}).Result()
	must(t, err)
	must(t, c.XDel(ctx, "jobs", pend[0].ID).Err())

	o := smallDump
	archive, _ := dumpAll(t, ctx, src, o)
	dst := redistest.Start(t)
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{})
	if rs.Restored != 2 || rs.Errors != 0 || rs.PendingLost != 1 || len(rs.Warnings) != 1 {
		t.Fatalf("restore stats %+v", rs)
	}
	d := dst.Client(t, 0)
	// The deleted entry's pending entry is the one difference.
	must(t, c.XAck(ctx, "jobs", "workers", pend[0].ID).Err())
	mustCompare(t, ctx, c, d)
	// And the restored queue redelivers: XAUTOCLAIM hands w2's old jobs on.
	got, _, err := d.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: "jobs-big", Group: "workers", Consumer: "w4", MinIdle: time.Millisecond, Start: "0", Count: 1000}).Result()
	must(t, err)
	if len(got) == 0 {
		t.Fatal("restored group has nothing to redeliver")
	}
}

// Sorted sets read through DUMP come out in ascending score order (Redis
// writes skiplists greatest first), as docs/FORMAT.md says.
func TestZSetsInAscendingOrder(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for _, n := range []int{10, 300} { // listpack and skiplist
		key := fmt.Sprint("z", n)
		for i := 0; i < n; i++ {
			must(t, c.ZAdd(ctx, key, redis.Z{Score: float64(i), Member: fmt.Sprint("m", i)}).Err())
		}
	}
	for _, mode := range []ReadMode{ReadAuto, ReadCommands} {
		archive, _ := dumpAll(t, ctx, src, DumpOptions{ReadMode: mode})
		var doc struct {
			Data map[string]struct {
				Value [][2]json.RawMessage `json:"value"`
			} `json:"data"`
		}
		must(t, json.Unmarshal(archive, &doc))
		for key, v := range doc.Data {
			for i, p := range v.Value {
				if string(p[1]) != fmt.Sprint(i) {
					t.Fatalf("mode %v, %s: element %d has score %s", mode, key, i, p[1])
				}
			}
		}
	}
}

// Hash field TTLs (Redis 7.4+) survive a backup to the millisecond, for
// small (listpackex) and big (windowed) hashes; onto Redis 7.0 each such
// hash is an error naming the reason, in the dry run too; a field whose
// expiry passed is dropped and counted.
func TestHashFieldTTLs(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartServer(t, "redis-8")
	c := src.Client(t, 0)
	must(t, c.HSet(ctx, "small", "a", "1", "b", "2", "c", "3").Err())
	must(t, c.Do(ctx, "HPEXPIRE", "small", 3_600_000, "FIELDS", 2, "a", "b").Err())
	for i := 0; i < 500; i++ {
		must(t, c.HSet(ctx, "big", fmt.Sprint("f", i), strings.Repeat("v", 100)).Err())
	}
	must(t, c.Do(ctx, "HPEXPIRE", "big", 7_200_000, "FIELDS", 3, "f1", "f250", "f499").Err())
	must(t, c.HSet(ctx, "soon", "gone", "x", "stays", "y").Err())
	must(t, c.Do(ctx, "HPEXPIRE", "soon", 1500, "FIELDS", 1, "gone").Err())
	must(t, c.HSet(ctx, "plain", "p", "q").Err())
	started := time.Now()
	archive, st := dumpAll(t, ctx, src, smallDump)
	if st.BigKeys != 1 {
		t.Fatalf("dump stats %+v: want the big hash read in windows", st)
	}
	want := map[string]map[string]int64{}
	for _, k := range []string{"small", "big", "soon"} {
		want[k] = fieldExpiry(t, c, k)
	}
	time.Sleep(1600 * time.Millisecond) // "gone" expires

	dst := redistest.StartServer(t, "redis-8")
	d := dst.Client(t, 0)
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{TTL: TTLAbsolute, ArchiveTime: started})
	if rs.Restored != 4 || rs.Errors != 0 || rs.FieldsExpired != 1 {
		t.Fatalf("restore stats %+v", rs)
	}
	for k, w := range want {
		got := fieldExpiry(t, d, k)
		for f, at := range w {
			if k == "soon" && f == "gone" {
				if _, ok := got[f]; ok {
					t.Fatalf("expired field %s.%s restored", k, f)
				}
				continue
			}
			if got[f] != at {
				t.Fatalf("%s.%s: expiry %d, want %d", k, f, got[f], at)
			}
		}
	}
	if n := d.HLen(ctx, "big").Val(); n != 500 {
		t.Fatalf("big hash has %d fields", n)
	}

	old := redistest.StartServer(t, "redis-7.0")
	for _, dry := range []bool{true, false} {
		rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 50, MaxChunkBytes: 32 << 10})
		rs, err := NewRestorer(opts(t, old, 0), RestoreOptions{DryRun: dry, MaxErrors: -1}).Restore(ctx, rd)
		must(t, err)
		if rs.Restored != 1 || rs.Errors != 3 || !strings.Contains(strings.Join(rs.Messages, ";"), "no hash field expiry") {
			t.Fatalf("into redis 7.0, dry run %v: %+v", dry, rs)
		}
	}
	if n := old.Client(t, 0).DBSize(ctx).Val(); n != 1 {
		t.Fatalf("redis 7.0 holds %d keys, want only the plain hash", n)
	}
}

// fieldExpiry returns every field's HPEXPIRETIME (fields without one left out).
func fieldExpiry(t *testing.T, c *redis.Client, key string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	fields, err := c.HKeys(ctx, key).Result()
	must(t, err)
	args := []any{"HPEXPIRETIME", key, "FIELDS", len(fields)}
	for _, f := range fields {
		args = append(args, f)
	}
	v, err := c.Do(ctx, args...).Slice()
	must(t, err)
	out := map[string]int64{}
	for i, f := range fields {
		if n, _ := v[i].(int64); n > 0 {
			out[f] = n
		}
	}
	return out
}

// An empty string taken by the windowed path (its key alone is over the
// big-key size) is kept, not counted as vanished: GETRANGE answers "" for
// an empty string and for a missing key alike.
func TestEmptyStringOnTheWindowedPath(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	long := strings.Repeat("k", 300)
	must(t, c.Set(ctx, long, "", 0).Err())
	must(t, c.Set(ctx, "short", "", 0).Err())
	for _, mode := range []ReadMode{ReadAuto, ReadCommands} {
		archive, st := dumpAll(t, ctx, src, DumpOptions{BigBytes: 100, ReadMode: mode})
		if st.Keys != 2 || st.Vanished != 0 {
			t.Fatalf("mode %v: dump stats %+v", mode, st)
		}
		dst := redistest.Start(t)
		restoreAll(t, ctx, dst, archive, RestoreOptions{})
		mustCompare(t, ctx, c, dst.Client(t, 0))
	}
}
