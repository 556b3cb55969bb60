package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestSentinel backs up through a redis+sentinel:// URL while the
// sentinels fail the master over, and restores through the same URL into
// whichever server is the master then.
func TestSentinel(t *testing.T) {
	ctx := context.Background()
	d := redistest.StartSentinels(t, "", 1)
	master, err := d.Master(ctx)
	must(t, err)
	must(t, datagen.Fill(ctx, master.Client(t, 0), datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 3000, Streams: 2, Seed: 41}))
	must(t, datagen.Fill(ctx, master.Client(t, 2), datagen.Spec{Keys: 100, Seed: 42}))
	want0, err := master.Client(t, 0).DBSize(ctx).Result()
	must(t, err)
	// A copy of the data, to compare with after the failover.
	ref := redistest.Start(t)
	store := filepath.Join(t.TempDir(), "b")
	start := time.Now()
	res, err := newService(t, master.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)
	_, err = newService(t, ref.URL(0), store).Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)

	s := newClusterService(t, d.URL(0), store, slowed)
	var newMaster *redistest.Server
	res, err, ferr := backupDuring(t, s, func() error {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var err error
		newMaster, err = d.Failover(fctx)
		return err
	})
	must(t, ferr)
	must(t, err)
	if res.KeysCount != want0+100 {
		t.Fatalf("backup through sentinel during a failover: %d keys, want %d", res.KeysCount, want0+100)
	}
	if newMaster == master {
		t.Fatal("no failover happened")
	}
	// The restore reaches the new master.
	must(t, newMaster.Client(t, 0).FlushAll(ctx).Err())
	rr, err := newClusterService(t, d.URL(0), store, nil).Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != want0+100 {
		t.Fatalf("restore through sentinel: %+v", rr)
	}
	compare(t, ref.Client(t, 0), newMaster.Client(t, 0), start)
	compare(t, ref.Client(t, 2), newMaster.Client(t, 2), start)
}
