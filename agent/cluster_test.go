package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// clusterImage copies a cluster's keys into a fresh server (with the
// server's own DUMP and RESTORE), for Compare.
func clusterImage(t *testing.T, cl *redistest.Cluster) *redistest.Server {
	t.Helper()
	img := redistest.StartServer(t, serverOf(cl))
	must(t, cl.CopyTo(context.Background(), img.Client(t, 0)))
	return img
}

func flushCluster(t *testing.T, cl *redistest.Cluster) {
	t.Helper()
	must(t, cl.Client(t).ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	}))
}

func serverOf(cl *redistest.Cluster) string {
	if cl.Name == "" {
		return "redis-7.0"
	}
	return cl.Name
}

// filledCluster starts a cluster of the default server filled with
// clusterSpec, and returns it with its key count.
func filledCluster(t *testing.T, name string, primaries, replicas int) (*redistest.Cluster, int64) {
	t.Helper()
	ctx := context.Background()
	cl := redistest.StartCluster(t, name, primaries, replicas)
	must(t, datagen.Fill(ctx, cl.Client(t), clusterSpec))
	n, err := cl.Client(t).DBSize(ctx).Result()
	must(t, err)
	return cl, n
}

// slowed makes a backup last about 3 s (keys_per_second).
func slowed(c *config.Config) { c.Backup.KeysPerSecond = 1000; c.Backup.ScanCount = 100 }

var clusterSpec = datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 3000, BigString: 2 << 20, Streams: 2, Seed: 21}

func TestClusterBackupToSingleServer(t *testing.T) {
	for _, name := range []string{"redis-7.0", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cl, want := filledCluster(t, name, 3, 1)
			store := filepath.Join(t.TempDir(), "b")
			// Any node names the cluster: a replica's URL as well.
			s := newService(t, cl.Nodes[len(cl.Nodes)-1].URL(0), store)
			off := false
			start := time.Now()
			res, err := s.Backup(ctx, BackupOptions{Compress: &off})
			must(t, err)
			if res.KeysCount != want {
				t.Fatalf("archive has %d keys, the cluster %d", res.KeysCount, want)
			}
			b, err := os.ReadFile(filepath.Join(store, res.Filename))
			must(t, err)
			head := string(b[:min(len(b), 4096)])
			if !strings.Contains(head, `"mode":"cluster"`) || strings.Count(head, `"read_from":`) != 3 || strings.Contains(head, "127.0.0.1") {
				t.Fatalf("archive header: %s", head[:min(len(head), 800)])
			}
			dst := redistest.StartServer(t, name)
			r := newService(t, dst.URL(0), store)
			rr, err := r.Restore(ctx, res.Filename, RestoreOptions{})
			must(t, err)
			if rr.RestoredCount != want || rr.ErrorCount != 0 {
				t.Fatalf("restore %+v", rr)
			}
			compare(t, clusterImage(t, cl).Client(t, 0), dst.Client(t, 0), start)
			// A live cluster cannot be compared yet: refused, not one shard.
			if _, err := s.Diff(ctx, res.Filename, DiffLive, DiffOptions{}, func(Difference) error { return nil }); !errors.Is(err, engine.ErrCluster) {
				t.Fatalf("diff --live of a cluster: %v", err)
			}

			// read_from: replica reads every shard from its replica.
			rs := newClusterService(t, cl.URL(), store, func(c *config.Config) { c.Redis.ReadFrom = "replica" })
			res, err = rs.Backup(ctx, BackupOptions{Compress: &off})
			must(t, err)
			if res.KeysCount != want {
				t.Fatalf("backup from replicas: %d keys, the cluster %d", res.KeysCount, want)
			}
			b, err = os.ReadFile(filepath.Join(store, res.Filename))
			must(t, err)
			var doc struct {
				Source struct {
					Cluster struct {
						Shards []struct {
							Primary  string `json:"primary"`
							ReadFrom string `json:"read_from"`
						} `json:"shards"`
					} `json:"cluster"`
				} `json:"source"`
			}
			must(t, json.Unmarshal(b, &doc))
			if len(doc.Source.Cluster.Shards) != 3 {
				t.Fatalf("shards %+v", doc.Source.Cluster)
			}
			for _, sh := range doc.Source.Cluster.Shards {
				if sh.ReadFrom == sh.Primary || len(sh.ReadFrom) != 40 {
					t.Fatalf("a shard read from %q, its primary %q", sh.ReadFrom, sh.Primary)
				}
			}
		})
	}
}

func newClusterService(t *testing.T, url, store string, edit func(*config.Config)) *Service {
	t.Helper()
	cfg := config.Default()
	cfg.Redis.URL = url
	cfg.Storage = store
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(context.Background(), cfg, nil)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// whileRunning runs op and calls during once op has reported progress
// (some keys done); it returns during's error.
func whileRunning(op func(progress func(engine.Progress)), during func() error) error {
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		<-started
		done <- during()
	}()
	op(func(p engine.Progress) {
		if p.KeysDone > 0 {
			once.Do(func() { close(started) })
		}
	})
	once.Do(func() { close(started) })
	return <-done
}

// backupDuring runs a backup (slowed to about 3 s by s's configuration)
// and calls during once it has written some keys; it returns the backup's
// result and error, and during's error.
func backupDuring(t *testing.T, s *Service, during func() error) (res BackupResult, err, derr error) {
	t.Helper()
	off := false
	derr = whileRunning(func(p func(engine.Progress)) {
		res, err = s.Backup(context.Background(), BackupOptions{Compress: &off, Progress: p})
	}, during)
	return res, err, derr
}

func TestClusterFailoverDuringBackup(t *testing.T) {
	ctx := context.Background()
	cl, want := filledCluster(t, "", 3, 1)
	s := newClusterService(t, cl.URL(), filepath.Join(t.TempDir(), "b"), slowed)
	// The replica of the shard of the first node becomes its primary while
	// the backup reads that primary.
	nodes, err := cl.Topology(ctx)
	must(t, err)
	var replica *redistest.Server
	for _, n := range nodes {
		if !n.Primary && n.Server != nil && strings.HasSuffix(cl.URL(), fmt.Sprintf(":%d/0", masterPort(nodes, n.Master))) {
			replica = n.Server
		}
	}
	if replica == nil {
		t.Fatal("no replica of the first node")
	}
	res, err, ferr := backupDuring(t, s, func() error {
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return cl.Failover(fctx, replica)
	})
	must(t, ferr)
	must(t, err)
	if res.KeysCount != want {
		t.Fatalf("archive has %d keys, the cluster %d", res.KeysCount, want)
	}
}

func masterPort(nodes []redistest.Node, id string) int {
	for _, n := range nodes {
		if n.ID == id && n.Server != nil {
			return n.Server.Port
		}
	}
	return -1
}

func TestClusterReshardDuringBackup(t *testing.T) {
	ctx := context.Background()
	cl, want := filledCluster(t, "", 3, 0)
	s := newClusterService(t, cl.URL(), filepath.Join(t.TempDir(), "b"), slowed)
	masters, err := cl.Masters(ctx)
	must(t, err)
	res, err, rerr := backupDuring(t, s, func() error { return cl.Reshard(masters[0], masters[1], 500, 10) })
	must(t, rerr)
	switch {
	case errors.Is(err, engine.ErrTopology):
		t.Logf("refused: %v", err)
		if res.Success {
			t.Fatalf("a failed backup reported success: %+v", res)
		}
		list, lerr := s.List(ctx)
		must(t, lerr)
		if len(list.Backups) != 0 {
			t.Fatalf("a failed backup left %v", list.Backups)
		}
	case err != nil:
		t.Fatalf("backup failed without naming the topology: %v", err)
	default:
		// It may only succeed with every key.
		if res.KeysCount != want {
			t.Fatalf("archive has %d keys, the cluster %d", res.KeysCount, want)
		}
	}
}

func TestClusterRestoreIntoOtherShapes(t *testing.T) {
	ctx := context.Background()
	src, want := filledCluster(t, "", 3, 0)
	store := filepath.Join(t.TempDir(), "b")
	start := time.Now()
	res, err := newService(t, src.URL(), store).Backup(ctx, BackupOptions{})
	must(t, err)

	// 3 shards into 6.
	six := redistest.StartCluster(t, "", 6, 0)
	rr, err := newService(t, six.Nodes[4].URL(0), store).Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != want || rr.ErrorCount != 0 || rr.SkippedCount != 0 {
		t.Fatalf("restore into 6 shards: %+v", rr)
	}
	compare(t, clusterImage(t, src).Client(t, 0), clusterImage(t, six).Client(t, 0), start)
	// Again without overwrite: every key exists and is skipped, untouched.
	rr, err = newService(t, six.URL(), store).Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != 0 || rr.SkippedCount != want {
		t.Fatalf("second restore: %+v", rr)
	}
	// A dry run with overwrite counts every key and writes none.
	flushCluster(t, six)
	rr, err = newService(t, six.URL(), store).Restore(ctx, res.Filename, RestoreOptions{DryRun: true, Overwrite: true})
	must(t, err)
	if n, _ := six.Client(t).DBSize(ctx).Result(); rr.RestoredCount != want || n != 0 {
		t.Fatalf("dry run: %+v, %d keys written", rr, n)
	}

	// A single server's archive (databases 0 and 2) into a cluster: the
	// keys of database 2 are errors, one per key; those of 0 are restored.
	one := redistest.Start(t)
	must(t, datagen.Fill(ctx, one.Client(t, 0), datagen.Spec{Keys: 500, Binary: true, BigElements: 3000, Seed: 5}))
	must(t, datagen.Fill(ctx, one.Client(t, 2), datagen.Spec{Keys: 40, Seed: 6}))
	n0, err := one.Client(t, 0).DBSize(ctx).Result()
	must(t, err)
	store1 := filepath.Join(t.TempDir(), "b1")
	start = time.Now()
	res1, err := newService(t, one.URL(0), store1).Backup(ctx, BackupOptions{})
	must(t, err)
	flushCluster(t, six)
	rr, err = newService(t, six.URL(), store1).Restore(ctx, res1.Filename, RestoreOptions{})
	if err == nil || rr.RestoredCount != n0 || rr.ErrorCount != 40 || rr.TotalKeys != n0+40 {
		t.Fatalf("restore of two databases into a cluster: %+v, %v", rr, err)
	}
	if !strings.Contains(strings.Join(rr.Errors, "\n"), "database 2") {
		t.Fatalf("errors do not name the database: %v", rr.Errors)
	}
	compare(t, one.Client(t, 0), clusterImage(t, six).Client(t, 0), start)
}

// restoreDuring restores name into dst slowed to about 3 s
// (restore.keys_per_second) and calls during once some keys are done.
func restoreDuring(t *testing.T, dst *redistest.Cluster, store, name string, during func() error) (res RestoreResult, err, derr error) {
	t.Helper()
	s := newClusterService(t, dst.URL(), store, func(c *config.Config) { c.Restore.KeysPerSecond = 1000; c.Restore.BatchKeys = 50 })
	derr = whileRunning(func(p func(engine.Progress)) {
		res, err = s.Restore(context.Background(), name, RestoreOptions{Progress: p})
	}, during)
	return res, err, derr
}

func TestClusterReshardAndFailoverDuringRestore(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), clusterSpec))
	want, err := src.Client(t, 0).DBSize(ctx).Result()
	must(t, err)
	store := filepath.Join(t.TempDir(), "b")
	start := time.Now() // restored TTLs run from the backup's reading
	res, err := newService(t, src.URL(0), store).Backup(ctx, BackupOptions{})
	must(t, err)

	dst := redistest.StartCluster(t, "", 3, 1)
	masters, err := dst.Masters(ctx)
	must(t, err)
	rr, err, rerr := restoreDuring(t, dst, store, res.Filename, func() error { return dst.Reshard(masters[0], masters[1], 1000, 10) })
	must(t, rerr)
	must(t, err)
	if rr.RestoredCount != want || rr.ErrorCount != 0 {
		t.Fatalf("restore during a resharding: %+v", rr)
	}
	compare(t, src.Client(t, 0), clusterImage(t, dst).Client(t, 0), start)

	// A failover of a shard while the restore writes to it.
	flushCluster(t, dst)
	nodes, err := dst.Topology(ctx)
	must(t, err)
	var replica *redistest.Server
	for _, n := range nodes {
		if !n.Primary && n.Server != nil {
			replica = n.Server
			break
		}
	}
	rr, err, ferr := restoreDuring(t, dst, store, res.Filename, func() error {
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return dst.Failover(fctx, replica)
	})
	must(t, ferr)
	must(t, err)
	if rr.RestoredCount != want || rr.ErrorCount != 0 {
		t.Fatalf("restore during a failover: %+v", rr)
	}
	must(t, dst.WaitStable(ctx))
	compare(t, src.Client(t, 0), clusterImage(t, dst).Client(t, 0), start)
}

// TestValkeyClusterDatabases: Valkey 9's numbered databases in cluster
// mode are backed up and restored, each into its number.
func TestValkeyClusterDatabases(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartCluster(t, "valkey-9", 3, 0, "--cluster-databases", "4")
	must(t, datagen.Fill(ctx, src.Client(t), datagen.Spec{Keys: 1000, TTLPercent: 20, Binary: true, BigElements: 3000, Streams: 1, Seed: 51}))
	must(t, datagen.Fill(ctx, src.ClientDB(t, 2), datagen.Spec{Keys: 300, Binary: true, Seed: 52}))
	store := filepath.Join(t.TempDir(), "b")
	start := time.Now()
	res, err := newService(t, src.URL(), store).Backup(ctx, BackupOptions{})
	must(t, err)
	if res.KeysPerDB["2"] != 300 || res.KeysPerDB["0"] == 0 {
		t.Fatalf("keys per database %v", res.KeysPerDB)
	}
	dst := redistest.StartCluster(t, "valkey-9", 3, 0, "--cluster-databases", "4")
	rr, err := newService(t, dst.URL(), store).Restore(ctx, res.Filename, RestoreOptions{})
	must(t, err)
	if rr.RestoredCount != res.KeysCount || rr.ErrorCount != 0 {
		t.Fatalf("restore %+v", rr)
	}
	for _, db := range []int{0, 2} {
		a, b := redistest.StartServer(t, "valkey-9"), redistest.StartServer(t, "valkey-9")
		must(t, src.CopyDBTo(ctx, db, a.Client(t, 0)))
		must(t, dst.CopyDBTo(ctx, db, b.Client(t, 0)))
		compare(t, a.Client(t, 0), b.Client(t, 0), start)
	}
}
