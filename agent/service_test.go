package agent

import (
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

func newService(t *testing.T, redisURL, storage string) *Service {
	t.Helper()
	cfg := config.Default()
	cfg.Redis.URL = redisURL
	cfg.Storage = storage
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// compare checks b against a. TTLs are restored as recorded, so on b they
// run later by the time since the backup read them: since bounds that.
func compare(t *testing.T, a, b *redis.Client, since time.Time) {
	t.Helper()
	diffs, err := redistest.Compare(context.Background(), a, b, time.Since(since)+time.Second)
	must(t, err)
	if len(diffs) > 0 {
		t.Fatalf("data differs:\n%s", strings.Join(diffs, "\n"))
	}
}

func TestBackupListVerifyRestore(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 2000, TTLPercent: 20, Binary: true, BigElements: 3000, BigString: 2 << 20, Streams: 2, Seed: 11}))
	must(t, datagen.Fill(ctx, src.Client(t, 2), datagen.Spec{Keys: 300, Binary: true, Seed: 12}))
	store := filepath.Join(t.TempDir(), "backups")

	s := newService(t, src.URL(0), store)
	start := time.Now()
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	if !res.Success || !strings.HasSuffix(res.Filename, ".json.gz") || res.KeysCount != 2000+4+1+2+300 || res.Size <= 0 || res.SHA256 == "" {
		t.Fatalf("backup result %+v", res)
	}
	if res.Filepath != filepath.Join(store, res.Filename) {
		t.Fatalf("filepath %q", res.Filepath)
	}
	if res.KeysPerDB["0"] != 2007 || res.KeysPerDB["2"] != 300 {
		t.Fatalf("keys per db %v", res.KeysPerDB)
	}
	// The archive is plain gzip JSON that Python's json reads whole.
	f, err := os.Open(filepath.Join(store, res.Filename))
	must(t, err)
	zr, err := gzip.NewReader(f)
	must(t, err)
	pyCheck(t, zr)
	f.Close()

	list, err := s.List(ctx)
	must(t, err)
	if len(list.Backups) != 1 || list.Backups[0].Filename != res.Filename || list.Backups[0].Size != res.Size || list.Backups[0].Verified {
		t.Fatalf("list %+v", list)
	}
	v, err := s.Verify(ctx, res.Filename, nil)
	must(t, err)
	if !v.Success || !v.ChecksumStored || v.KeysCount != res.KeysCount || v.SHA256 != res.SHA256 {
		t.Fatalf("verify %+v", v)
	}
	list, _ = s.List(ctx)
	if !list.Backups[0].Verified {
		t.Fatal("verification not recorded")
	}

	d := newService(t, dst.URL(0), store)
	rr, err := d.Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if !rr.Success || rr.RestoredCount != res.KeysCount || rr.TotalKeys != res.KeysCount || rr.ErrorCount != 0 {
		t.Fatalf("restore %+v", rr)
	}
	compare(t, src.Client(t, 0), dst.Client(t, 0), start)
	compare(t, src.Client(t, 2), dst.Client(t, 2), start)

	// Again without overwrite: everything is skipped.
	rr, err = d.Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if rr.SkippedCount != res.KeysCount || rr.RestoredCount != 0 {
		t.Fatalf("second restore %+v", rr)
	}

	st, err := s.Stats(ctx)
	must(t, err)
	if st.TotalBackups != 1 || st.TotalSize != res.Size || st.LatestBackup == nil || st.LatestBackup.Filename != res.Filename {
		t.Fatalf("stats %+v", st)
	}
}

func TestTwoBackupsInOneSecondGetTwoNames(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, src.Client(t, 0).Set(ctx, "k", "v", 0).Err())
	s := newService(t, src.URL(0), t.TempDir())
	a, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	b, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	if a.Filename == b.Filename {
		t.Fatalf("both backups are %s", a.Filename)
	}
	l, _ := s.List(ctx)
	if len(l.Backups) != 2 {
		t.Fatalf("%d archives listed", len(l.Backups))
	}
}

// A damaged archive is refused before any key is written.
func TestDamagedArchivesChangeNothing(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 3000, Seed: 13}))
	store := t.TempDir()
	s := newService(t, src.URL(0), store)
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	data, err := os.ReadFile(filepath.Join(store, res.Filename))
	must(t, err)

	dc := dst.Client(t, 0)
	must(t, dc.Set(ctx, "existing", "untouched", 0).Err())
	d := newService(t, dst.URL(0), store)
	check := func(name string) {
		t.Helper()
		rr, err := d.Restore(ctx, name, RestoreOptions{Overwrite: true})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: err %v, want ErrInvalid", name, err)
		}
		if rr.Success || rr.Error == "" || rr.RestoredCount != 0 {
			t.Fatalf("%s: result %+v", name, rr)
		}
		if n := dc.DBSize(ctx).Val(); n != 1 || dc.Get(ctx, "existing").Val() != "untouched" {
			t.Fatalf("%s: the target changed (%d keys)", name, n)
		}
	}
	// 1. Copied in by hand, truncated: no manifest, so a full read finds it.
	trunc := "redis_backup_20200101_000000.json.gz"
	must(t, os.WriteFile(filepath.Join(store, trunc), data[:len(data)*2/3], 0o600))
	check(trunc)
	// 2. Truncated by a few bytes only (gzip trailer gone).
	trunc2 := "redis_backup_20200101_000001.json.gz"
	must(t, os.WriteFile(filepath.Join(store, trunc2), data[:len(data)-4], 0o600))
	check(trunc2)
	// 3. A flipped byte in our own archive: the recorded SHA-256 differs.
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x40
	must(t, os.WriteFile(filepath.Join(store, res.Filename), bad, 0o600))
	check(res.Filename)
	// 4. Not gzip at all under a .gz name.
	plain := "redis_backup_20200101_000002.json.gz"
	must(t, os.WriteFile(filepath.Join(store, plain), []byte(`{"timestamp":"x","data":{}}`), 0o600))
	check(plain)
	// And verify says so too, without touching Redis.
	if _, err := s.Verify(ctx, res.Filename, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verify of a damaged archive: %v", err)
	}
}

func TestHostileNamesTouchNothing(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	store := t.TempDir()
	outside := filepath.Join(filepath.Dir(store), "victim.json")
	must(t, os.WriteFile(outside, []byte("{}"), 0o600))
	s := newService(t, src.URL(0), store)
	for _, name := range []string{"../victim.json", "redis_backup_20231205_143022.json.gz/../../x", "..%2fvictim",
		"redis_backup_20231205_143022.json\x00.gz", `..\victim`, "/etc/passwd", "redis_backup_2023120５_143022.json", ""} {
		if _, err := s.Restore(ctx, name, RestoreOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("restore %q: %v", name, err)
		}
		if _, err := s.Delete(ctx, name); !errors.Is(err, ErrInvalid) {
			t.Errorf("delete %q: %v", name, err)
		}
		if _, _, err := s.Open(ctx, name); !errors.Is(err, ErrInvalid) {
			t.Errorf("open %q: %v", name, err)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatal("a file outside the folder was touched")
	}
	if _, err := s.Restore(ctx, "redis_backup_20231205_143022.json.gz", RestoreOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing archive: %v", err)
	}
}

// Archives of the Python tool restore unchanged, into the URL's database.
func TestSeedArchivesRestore(t *testing.T) {
	ctx := context.Background()
	dst := redistest.Start(t)
	store := t.TempDir()
	for _, c := range []struct{ from, to string }{
		{"../codec/testdata/seed_ascii.json", "redis_backup_20231205_143022.json"},
		{"../codec/testdata/seed_indent.json.gz", "redis_backup_20231205_143023.json.gz"},
	} {
		b, err := os.ReadFile(c.from)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(store, c.to), b, 0o600))
	}
	d := newService(t, dst.URL(4), store)
	rr, err := d.Restore(ctx, "redis_backup_20231205_143022.json", RestoreOptions{})
	must(t, err)
	if rr.RestoredCount == 0 || rr.ErrorCount != 0 {
		t.Fatalf("restore %+v", rr)
	}
	c := dst.Client(t, 4)
	if v := c.HGet(ctx, "user:123456", "city").Val(); v != "Zürich" {
		t.Fatalf("hash field %q", v)
	}
	if v := c.LRange(ctx, "queue:users", 0, -1).Val(); strings.Join(v, ",") != "123456,789012,123456" {
		t.Fatalf("list %q", v)
	}
	if ttl := c.TTL(ctx, "session:9").Val(); ttl < 3590*time.Second || ttl > time.Hour {
		t.Fatalf("ttl %v", ttl)
	}
	if s := c.ZScore(ctx, "leaderboard", "dave").Val(); s != 3.0000000000000004 {
		t.Fatalf("score %v", s)
	}
	if dst.Client(t, 0).DBSize(ctx).Val() != 0 {
		t.Fatal("seed archive went to db 0, not the URL's database")
	}
	rr, err = d.Restore(ctx, "redis_backup_20231205_143023.json.gz", RestoreOptions{DryRun: true})
	must(t, err)
	if rr.TotalKeys == 0 {
		t.Fatalf("gz seed archive: %+v", rr)
	}
}

func TestDeleteSparesArchivesBeingRead(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	store := t.TempDir()
	name := "redis_backup_20240101_000000.json"
	must(t, os.WriteFile(filepath.Join(store, name), []byte(`{"timestamp":"x","created_at":"x","data":{}}`), 0o600))
	s := newService(t, src.URL(0), store)
	rc, _, err := s.Open(ctx, name)
	must(t, err)
	if _, err := s.Delete(ctx, name); !errors.Is(err, ErrBusy) {
		t.Fatalf("delete of an archive being read: %v", err)
	}
	rc.Close()
	res, err := s.Delete(ctx, name)
	must(t, err)
	if !res.Success {
		t.Fatalf("%+v", res)
	}
	if l, _ := s.List(ctx); len(l.Backups) != 0 {
		t.Fatal("still listed")
	}
}
