package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
