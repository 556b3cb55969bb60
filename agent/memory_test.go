package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/internal/redistest"
)

// A restore that cannot fit under the target's maxmemory is refused before
// its first write (under noeviction it would leave production full and
// refusing writes); --ignore-memory goes ahead. A volatile-* policy, which
// evicts the keys that have a TTL, is refused like allkeys-*.
func TestRestoreRefusedWithoutRoom(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	val := strings.Repeat("x", 10_000)
	for i := 0; i < 3000; i++ { // about 30 MB
		must(t, c.Set(ctx, fmt.Sprint("k", i), val, 0).Err())
	}
	store := filepath.Join(t.TempDir(), "backups")
	res, err := newService(t, src.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)

	dst := redistest.Start(t, "--maxmemory", "10mb", "--maxmemory-policy", "noeviction")
	d := newService(t, dst.URL(0), store)
	_, err = d.Restore(ctx, res.Filename, RestoreOptions{})
	if !errors.Is(err, engine.ErrNoRoom) || !strings.Contains(err.Error(), "--ignore-memory") {
		t.Fatalf("restore into 10 MB: %v", err)
	}
	if n := mustSize(t, dst, 0); n != 0 {
		t.Fatalf("%d keys written before the refusal", n)
	}
	rr, err := d.Restore(ctx, res.Filename, RestoreOptions{IgnoreMemory: true})
	if err == nil || rr.RestoredCount == 0 || rr.ErrorCount == 0 {
		t.Fatalf("forced restore: %+v %v", rr, err)
	}

	ev := redistest.Start(t, "--maxmemory", "1gb", "--maxmemory-policy", "volatile-lru")
	_, err = newService(t, ev.URL(0), store).Restore(ctx, res.Filename, RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "volatile-lru") || mustSize(t, ev, 0) != 0 {
		t.Fatalf("volatile-lru target: %v", err)
	}
	rr, err = newService(t, ev.URL(0), store).Restore(ctx, res.Filename, RestoreOptions{AllowEviction: true})
	if err != nil || rr.RestoredCount != 3000 {
		t.Fatalf("volatile-lru with --allow-eviction: %+v %v", rr, err)
	}
}
