package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/redistest"
)

const accounts, total = 100, 100 * 1000

// mover keeps moving units between the accounts in MULTI/EXEC
// transactions (their sum stays total) until stop is closed.
func mover(t *testing.T, c *redis.Client, stop <-chan struct{}, moved *atomic.Int64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	for {
		select {
		case <-stop:
			return
		default:
		}
		a, b := rng.IntN(accounts), rng.IntN(accounts)
		n := int64(1 + rng.IntN(50))
		_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.DecrBy(ctx, fmt.Sprintf("acct:%03d", a), n)
			p.IncrBy(ctx, fmt.Sprintf("acct:%03d", b), n)
			return nil
		})
		if err != nil {
			t.Errorf("transfer: %v", err)
			return
		}
		moved.Add(1)
	}
}

// sumOf restores archive name into a fresh server and sums the accounts.
func sumOf(t *testing.T, svc *Service, name string) int64 {
	t.Helper()
	ctx := context.Background()
	dst := redistest.Start(t)
	cfg := svc.Config()
	cfg.Redis.URL = dst.URL(0)
	r := newServiceCfg(t, cfg)
	if _, err := r.Restore(ctx, name, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	var sum int64
	c := dst.Client(t, 0)
	for i := range accounts {
		v, err := c.Get(ctx, fmt.Sprintf("acct:%03d", i)).Int64()
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}

// TestSnapshotIsPointInTime: while a writer moves units between 100
// accounts in transactions, every replica snapshot holds the constant sum
// (a state the server had), on Redis and on Valkey; a SCAN backup of the
// same run, read slowly, holds a sum the server never had.
func TestSnapshotIsPointInTime(t *testing.T) {
	for _, name := range []string{"redis-7.0", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := redistest.StartServer(t, name, "--repl-diskless-sync-delay", "0")
			c := src.Client(t, 0)
			for i := range accounts {
				c.Set(ctx, fmt.Sprintf("acct:%03d", i), total/accounts, 0)
			}
			for i := range 3000 { // filler, so that a SCAN takes a while
				c.Set(ctx, fmt.Sprintf("filler:%05d", i), strings.Repeat("f", 100), 0)
			}
			cfg := config.Default()
			cfg.Redis.URL = src.URL(0)
			cfg.Storage = t.TempDir()
			cfg.Backup.ScanCount = 10
			svc := newServiceCfg(t, cfg)

			stop := make(chan struct{})
			var moved atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				mover(t, redis.NewClient(&redis.Options{Network: "unix", Addr: src.Socket}), stop, &moved)
			}()
			var snaps []string
			for range 3 {
				res, err := svc.Backup(ctx, BackupOptions{Source: SourceReplica})
				if err != nil {
					t.Fatal(err)
				}
				if res.Source != SourceReplica || len(res.ReplID) != 40 || res.KeysCount != accounts+3000 {
					t.Fatalf("snapshot result %+v", res)
				}
				snaps = append(snaps, res.Filename)
				time.Sleep(1100 * time.Millisecond) // a fresh archive name
			}
			// SCAN backups, slowed down so that transfers happen while they
			// read the accounts (up to three: a SCAN archive may by chance
			// hold the right sum, three in a row practically never).
			slow := cfg
			slow.Backup.KeysPerSecond = 4000
			scanSvc := newServiceCfg(t, slow)
			var scans []string
			for range 3 {
				scan, err := scanSvc.Backup(ctx, BackupOptions{Source: SourceScan})
				if err != nil {
					t.Fatal(err)
				}
				scans = append(scans, scan.Filename)
				time.Sleep(1100 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			if moved.Load() < 100 {
				t.Fatalf("the writer moved only %d times", moved.Load())
			}
			for _, n := range snaps {
				if got := sumOf(t, svc, n); got != total {
					t.Errorf("snapshot %s: the accounts sum to %d, not %d", n, got, total)
				}
			}
			violated := false
			for _, n := range scans {
				if got := sumOf(t, svc, n); got != total {
					t.Logf("SCAN archive %s: the accounts sum to %d (a state that never existed); %d transfers ran", n, got, moved.Load())
					violated = true
					break
				}
			}
			if !violated {
				t.Errorf("three SCAN archives all held a consistent sum (%d transfers ran): the test shows nothing", moved.Load())
			}
		})
	}
}

// TestSnapshotRefusedAndAuto: an account without PSYNC: source replica
// fails with a clear error and leaves no archive; source auto backs up by
// SCAN.
func TestSnapshotRefusedAndAuto(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	c.Set(ctx, "k", "v", 0)
	if err := c.Do(ctx, "ACL", "SETUSER", "nosync", "on", ">pw-nosync", "~*", "+@all", "-psync", "-sync").Err(); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	svc := newService(t, fmt.Sprintf("redis://nosync:pw-nosync@127.0.0.1:%d/0", src.Port), store)
	_, err := svc.Backup(ctx, BackupOptions{Source: SourceReplica})
	if err == nil || !strings.Contains(err.Error(), "refuses replication") || strings.Contains(err.Error(), "pw-nosync") {
		t.Fatalf("replica without PSYNC: %v", err)
	}
	if l, _ := svc.List(ctx); len(l.Backups) != 0 {
		t.Fatalf("a refused snapshot left %v", l.Backups)
	}
	res, err := svc.Backup(ctx, BackupOptions{Source: SourceAuto})
	if err != nil || res.Source != SourceScan || res.KeysCount != 1 {
		t.Fatalf("auto: %v %+v", err, res)
	}
	if _, err := svc.Backup(ctx, BackupOptions{Source: "sideways"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad source: %v", err)
	}
}

// TestSnapshotKilledMidTransfer: the server drops the replica in the
// middle of the transfer: the backup fails, nothing is listed, no
// temporary file is left.
func TestSnapshotKilledMidTransfer(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t, "--repl-diskless-sync-delay", "0", "--rdbcompression", "no")
	c := src.Client(t, 0)
	big := strings.Repeat("z", 1<<20)
	for i := range 200 {
		c.Set(ctx, fmt.Sprintf("big:%d", i), big, 0)
	}
	store := t.TempDir()
	cfg := config.Default()
	cfg.Redis.URL = src.URL(0)
	cfg.Storage = store
	cfg.Backup.Compress = false // the bytes reach storage as they come
	svc := newServiceCfg(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := svc.Backup(ctx, BackupOptions{Source: SourceReplica})
		done <- err
	}()
	// Kill once the archive under way holds a few MB: mid-transfer.
	deadline := time.Now().Add(20 * time.Second)
	for written := int64(0); written < 4<<20; {
		written = 0
		filepath.Walk(store, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				written += fi.Size()
			}
			return nil
		})
		if time.Now().After(deadline) {
			t.Fatal("the backup never got under way")
		}
		time.Sleep(time.Millisecond)
	}
	c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica")
	err := <-done
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a killed transfer: %v", err)
	}
	if l, _ := svc.List(ctx); len(l.Backups) != 0 {
		t.Fatalf("a killed snapshot left %v", l.Backups)
	}
	entries, _ := os.ReadDir(store)
	for _, e := range entries {
		if e.Name() != ".redback" {
			t.Fatalf("left in storage: %s", filepath.Join(store, e.Name()))
		}
	}
	t.Logf("killed mid-transfer: %v", err)
}

// TestImportRDB: a server's own dump.rdb (Valkey 9's dialect, every shape)
// imports into a listed archive that restores to the server's state; the
// archive records the RDB's creation time. A truncated file and a file
// with a damaged byte store nothing and fail with ErrInvalid.
func TestImportRDB(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartServer(t, "valkey-9")
	c := src.Client(t, 0)
	for i := range 500 {
		c.Set(ctx, fmt.Sprintf("s:%d", i), i, 0)
		c.RPush(ctx, fmt.Sprintf("l:%d", i%7), i)
		c.HSet(ctx, "h", fmt.Sprint(i), strings.Repeat("v", i%40))
		c.ZAdd(ctx, "z", redis.Z{Score: float64(i) / 3, Member: fmt.Sprint(i)})
	}
	c.Set(ctx, "ttl", "x", time.Hour)
	c.XAdd(ctx, &redis.XAddArgs{Stream: "st", Values: []string{"a", "1"}})
	must(t, c.Do(ctx, "HSETEX", "hx", "EX", "3600", "FIELDS", "1", "f", "v").Err())
	must(t, c.Save(ctx).Err())
	rdb, err := os.ReadFile(filepath.Join(src.Dir, "dump.rdb"))
	must(t, err)
	want, err := c.Do(ctx, "DEBUG", "DIGEST").Text()
	must(t, err)

	store := t.TempDir()
	dst := redistest.StartServer(t, "valkey-9")
	svc := newService(t, dst.URL(0), store)
	for _, bad := range [][]byte{rdb[:len(rdb)/2], append(append([]byte{}, rdb[:len(rdb)-20]...), append([]byte{rdb[len(rdb)-20] ^ 0x40}, rdb[len(rdb)-19:]...)...)} {
		if _, err := svc.Import(ctx, strings.NewReader(string(bad)), ImportOptions{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("a damaged RDB (%d bytes): %v", len(bad), err)
		}
	}
	if l, _ := svc.List(ctx); len(l.Backups) != 0 {
		t.Fatalf("a damaged RDB left %v", l.Backups)
	}
	res, err := svc.Import(ctx, strings.NewReader(string(rdb)), ImportOptions{})
	if err != nil || res.Source != "rdb" || !strings.HasPrefix(res.Server, "valkey 9.") || res.FieldTTLKeys != 1 {
		t.Fatalf("import: %v %+v", err, res)
	}
	if _, err := svc.Restore(ctx, res.Filename, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.Client(t, 0).Do(ctx, "DEBUG", "DIGEST").Text(); err != nil || got != want {
		t.Fatalf("restored import: digest %s (%v), the source's %s", got, err, want)
	}
	v, err := svc.Verify(ctx, res.Filename, nil)
	if err != nil || v.KeysCount != res.KeysCount {
		t.Fatalf("verify: %v %+v", err, v)
	}
}
