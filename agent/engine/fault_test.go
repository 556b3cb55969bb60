package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/redistest"
)

// A Redis that stalls past the read timeout during restore --overwrite
// must not get a write pipeline twice (go-redis used to retry it while the
// first copy still reached the server: a 300,000-element list came back
// with 308,192). The key is either left as it was or replaced exactly.
func TestStallDuringRestoreDuplicatesNothing(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	const n = 300_000
	for start := 0; start < n; start += 10_000 {
		vals := make([]any, 10_000)
		for i := range vals {
			vals[i] = fmt.Sprint("element-", start+i)
		}
		must(t, c.RPush(ctx, "big", vals...).Err())
	}
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})

	for round := 0; round < 3; round++ {
		dst := redistest.Start(t)
		d := dst.Client(t, 0)
		must(t, d.RPush(ctx, "big", "old", "old").Err())
		base, err := ParseURL(fmt.Sprintf("unix://%s?db=0&read_timeout=300ms&write_timeout=300ms", dst.Socket))
		must(t, err)
		// Pause the server once the temporary key is being built.
		go func() {
			probe := dst.Client(t, 0)
			for i := 0; i < 2000; i++ {
				if probe.Exists(ctx, "{big}:redback-restore-tmp").Val() == 1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			_ = dst.Pause()
			time.Sleep(800 * time.Millisecond)
			_ = dst.Resume()
		}()
		rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 1000})
		st, rerr := NewRestorer(base, RestoreOptions{Overwrite: true}).Restore(ctx, rd)
		time.Sleep(time.Second) // let whatever was in flight land
		got := d.LLen(ctx, "big").Val()
		if got != 2 && got != n {
			t.Fatalf("round %d: list has %d elements (restore: %v, %+v); want 2 (untouched) or %d", round, got, rerr, st, n)
		}
		if rerr == nil && got != n {
			t.Fatalf("round %d: restore reported success but the list has %d elements", round, got)
		}
		t.Logf("round %d: restore error %v, list %d", round, rerr, got)
	}
}

// A Redis paused mid-backup (SIGSTOP) fails the backup within the bound the
// URL's read_timeout sets (reads retry three times), with the timeout as
// its error; it never hangs.
func TestStallDuringBackupFailsInBoundedTime(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for i := 0; i < 20000; i++ {
		c.Set(ctx, fmt.Sprint("k", i), "v", 0)
	}
	base, err := ParseURL(fmt.Sprintf("unix://%s?db=0&read_timeout=200ms&write_timeout=200ms", src.Socket))
	must(t, err)
	facts, err := Inspect(ctx, base)
	must(t, err)
	w := &pausingWriter{Writer: codec.NewWriter(&bytes.Buffer{}, codec.Header{Timestamp: "20260101_000000"}), pause: func() { _ = src.Pause() }}
	t.Cleanup(func() { _ = src.Resume() })
	start := time.Now()
	_, err = NewDumper(base, DumpOptions{ScanCount: 100}).Dump(ctx, facts, w)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("backup of a paused server: %v", err)
	}
	if took > 10*time.Second {
		t.Fatalf("the backup took %v to fail", took)
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}

// pausingWriter pauses the server at the 500th key.
type pausingWriter struct {
	*codec.Writer
	n     int
	pause func()
}

func (p *pausingWriter) BeginKey(h codec.KeyHeader) error {
	p.n++
	if p.n == 500 {
		p.pause()
	}
	return p.Writer.BeginKey(h)
}

// Temporary keys of a killed restore go at the next restore into that
// database once nothing has written them for a quarter of an hour; a live
// one (fresh safety TTL) stays, and a backup never includes either.
func TestRestoreDebrisIsSwept(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, src.Client(t, 0).Set(ctx, "k", "v", 0).Err())
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	dst := redistest.Start(t)
	d := dst.Client(t, 0)
	must(t, d.RPush(ctx, "{big}:redback-restore-tmp", "half").Err())
	must(t, d.PExpire(ctx, "{big}:redback-restore-tmp", 40*time.Minute).Err()) // last written 20 min ago
	must(t, d.RPush(ctx, "{live}:redback-restore-tmp", "half").Err())
	must(t, d.PExpire(ctx, "{live}:redback-restore-tmp", 59*time.Minute).Err())
	must(t, d.Set(ctx, "user:redback-restore-tmp-like", "v", 0).Err()) // not a temporary name
	must(t, d.Set(ctx, "{x}:redback-restore-tmp-7", "v", 0).Err())     // a temporary name without a TTL: not ours

	// A backup of the target skips the restore's keys.
	_, st := dumpAll(t, ctx, dst, DumpOptions{})
	if st.Keys != 1 {
		t.Fatalf("backup of a server with restore debris: %d keys, want the 1 whose name is not a temporary one", st.Keys)
	}
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{})
	if rs.Restored != 1 || len(rs.Warnings) != 1 || !strings.Contains(rs.Warnings[0], "removed 1 temporary key") {
		t.Fatalf("restore stats %+v", rs)
	}
	if d.Exists(ctx, "{big}:redback-restore-tmp").Val() != 0 || d.Exists(ctx, "{live}:redback-restore-tmp", "user:redback-restore-tmp-like", "{x}:redback-restore-tmp-7").Val() != 3 {
		t.Fatal("wrong keys swept")
	}
}
