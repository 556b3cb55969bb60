package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/internal/redistest"
)

// The database of the restore URL: an archive of one database goes into
// the database the URL names; an archive of several keeps their numbers
// under a URL naming none (or 0), and is refused under a URL naming
// another, before anything is written.
func TestRestoreURLDatabase(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	store := filepath.Join(t.TempDir(), "backups")
	for i := 0; i < 10; i++ {
		must(t, src.Client(t, 2).Set(ctx, fmt.Sprint("k", i), "v", 0).Err())
	}
	one, err := newService(t, src.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)
	time.Sleep(1100 * time.Millisecond) // a new archive name
	must(t, src.Client(t, 4).Set(ctx, "other", "v", 0).Err())
	two, err := newService(t, src.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)

	dst := redistest.Start(t)
	url3 := fmt.Sprintf("redis://127.0.0.1:%d/3", dst.Port)
	bare := fmt.Sprintf("redis://127.0.0.1:%d", dst.Port)

	rr, err := newService(t, url3, store).Restore(ctx, one.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != 10 || mustSize(t, dst, 3) != 10 || mustSize(t, dst, 2) != 0 {
		t.Fatalf("one database into /3: %+v", rr)
	}
	rr, err = newService(t, bare, store).Restore(ctx, one.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != 10 || mustSize(t, dst, 2) != 10 {
		t.Fatalf("one database, URL without one: %+v", rr)
	}
	_, err = newService(t, url3, store).Restore(ctx, two.Filename, RestoreOptions{Overwrite: true})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--db") || mustSize(t, dst, 4) != 0 {
		t.Fatalf("several databases into /3: %v", err)
	}
	rr, err = newService(t, url3, store).Restore(ctx, two.Filename, RestoreOptions{DBMap: map[int]int{2: 5, 4: 6}})
	must(t, err)
	if rr.RestoredCount != 11 || mustSize(t, dst, 5) != 10 || mustSize(t, dst, 6) != 1 {
		t.Fatalf("--db maps: %+v", rr)
	}
}

func mustSize(t *testing.T, s *redistest.Server, db int) int64 {
	t.Helper()
	n, err := s.Client(t, db).DBSize(context.Background()).Result()
	must(t, err)
	return n
}

// A hand-copied archive that verify checked stays what it was: never
// pruned, counted by no rule (verify's manifest is marked adopted).
func TestVerifiedCopiesAreNotPruned(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, src.Client(t, 0).Set(ctx, "k", "v", 0).Err())
	store := filepath.Join(t.TempDir(), "backups")
	s := newService(t, src.URL(0), store)
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	// Copy it by hand under an older name, without its manifest.
	data, err := os.ReadFile(filepath.Join(store, res.Filename))
	must(t, err)
	copied := "redis_backup_20200101_000000.json.gz"
	must(t, os.WriteFile(filepath.Join(store, copied), data, 0o600))
	v, err := s.Verify(ctx, copied, nil)
	if err != nil || !v.Success || !v.Recorded {
		t.Fatalf("verify %+v %v", v, err)
	}
	infos, err := s.sink.List(ctx)
	must(t, err)
	ds := retention.Plan(retention.FromInfos(infos), retention.Policy{Last: 1}, time.Now())
	for _, d := range ds {
		if d.Name == copied && (!d.Keep || !strings.Contains(strings.Join(d.Reasons, ","), "never pruned")) {
			t.Fatalf("verified copy: %+v", d)
		}
	}
}

// Verify on read-only storage reports the check's outcome and succeeds by
// it, saying that it could not be recorded.
func TestVerifyOnReadOnlyStorage(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, src.Client(t, 0).Set(ctx, "k", "v", 0).Err())
	store := filepath.Join(t.TempDir(), "backups")
	res, err := newService(t, src.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)
	ro := t.TempDir()
	if out, err := exec.Command("mount", "--bind", store, ro).CombinedOutput(); err != nil {
		t.Fatalf("bind mount (the fault tests need root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	v, err := newService(t, src.URL(0), ro).Verify(ctx, res.Filename, nil)
	if err != nil || !v.Success || v.Recorded || !strings.Contains(v.Warning, "could not be recorded") || v.KeysCount != 1 {
		t.Fatalf("verify on read-only storage: %+v %v", v, err)
	}
}
