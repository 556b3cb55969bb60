// The cluster profile: the same dataset backed up from, and restored into,
// one server and a 3-shard cluster, by redback only (redis-cli has no
// cluster-wide --rdb or --pipe to compare with).

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// ClusterResult is the cluster profile's figures (medians of reps runs).
type ClusterResult struct {
	Profile              string  `json:"profile"`
	Keys                 int64   `json:"keys"`
	Shards               int     `json:"shards"`
	SingleBackupSeconds  float64 `json:"single_backup_seconds"`
	ClusterBackupSeconds float64 `json:"cluster_backup_seconds"`
	SingleRestoreSeconds float64 `json:"single_restore_seconds"`
	ClusterRestoreSecs   float64 `json:"cluster_restore_seconds"`
	ClusterBackupRSSMB   float64 `json:"cluster_backup_peak_rss_mb"`
	ClusterRestoreRSSMB  float64 `json:"cluster_restore_peak_rss_mb"`
}

// owner keeps the folders and stop functions of the cluster's processes.
type owner struct {
	dir   string
	n     int
	stops []func()
}

func (o *owner) TempDir() string {
	o.n++
	d := filepath.Join(o.dir, fmt.Sprintf("node%d", o.n))
	check(os.MkdirAll(d, 0o755))
	return d
}

func (o *owner) Cleanup(f func()) { o.stops = append(o.stops, f) }

func (o *owner) stop() {
	for i := len(o.stops) - 1; i >= 0; i-- {
		o.stops[i]()
	}
}

// runCluster backs up and restores spec's data on one server and on a
// cluster of shards primaries, reps times each, interleaved.
func runCluster(name string, spec datagen.Spec, dir, bin string, shards, reps int) (ClusterResult, error) {
	r := ClusterResult{Profile: name + "-cluster", Shards: shards}
	pdir := filepath.Join(dir, r.Profile)
	check(os.MkdirAll(pdir, 0o755))
	defer os.RemoveAll(pdir)
	ctx := context.Background()
	own := &owner{dir: pdir}
	defer own.stop()
	start := func(primaries int) (*redistest.Cluster, error) {
		return redistest.StartClusterFor(own, "", primaries, 0)
	}

	step("%s: loading one server and a %d-shard cluster", r.Profile, shards)
	single, err := freshServer(pdir, "single")
	if err != nil {
		return r, err
	}
	defer single.Stop()
	sc := redis.NewClient(&redis.Options{Network: "unix", Addr: single.Socket, Protocol: 2, ReadTimeout: 10 * time.Minute})
	defer sc.Close()
	check(datagen.Fill(ctx, sc, spec))
	src, err := start(shards)
	if err != nil {
		return r, err
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: src.Addrs(), Protocol: 2, ReadTimeout: 10 * time.Minute})
	defer cc.Close()
	check(datagen.Fill(ctx, cc, spec))
	r.Keys = dbsize(ctx, sc)
	if n, err := cc.DBSize(ctx).Result(); err != nil || n != r.Keys {
		return r, fmt.Errorf("cluster holds %d keys (%v), the server %d", n, err, r.Keys)
	}

	var sb, cb, sr, cr, cbRSS, crRSS []float64
	for rep := 1; rep <= reps; rep++ {
		for _, side := range []string{"single", "cluster"} {
			url := single.SocketURL(0)
			if side == "cluster" {
				url = src.URL()
			}
			store := filepath.Join(pdir, "backups-"+side)
			_ = os.RemoveAll(store)
			step("%s [%d/%d]: redback backup of the %s", r.Profile, rep, reps, side)
			t0 := time.Now()
			out, _, err := runMeasured(pdir, bin, "--redis-url", url, "--storage", store, "backup", "--json")
			rss := lastHWMKiB
			secs := time.Since(t0).Seconds()
			if err != nil {
				return r, fmt.Errorf("backup of the %s: %v: %s", side, err, out)
			}
			var br struct {
				Filename  string `json:"filename"`
				KeysCount int64  `json:"keys_count"`
			}
			if err := json.Unmarshal(out, &br); err != nil || br.KeysCount != r.Keys {
				return r, fmt.Errorf("backup of the %s: %d keys of %d (%v)", side, br.KeysCount, r.Keys, err)
			}
			step("%s [%d/%d]: redback restore into an empty %s", r.Profile, rep, reps, side)
			var dstURL string
			var cleanup func()
			if side == "single" {
				dst, err := freshServer(pdir, fmt.Sprintf("dst%d", rep))
				if err != nil {
					return r, err
				}
				dstURL, cleanup = dst.SocketURL(0), dst.Stop
			} else {
				dst, err := start(shards)
				if err != nil {
					return r, err
				}
				dstURL = dst.URL()
				cleanup = func() {
					for _, n := range dst.Nodes {
						n.Stop()
					}
				}
			}
			t0 = time.Now()
			out, _, err = runMeasured(pdir, bin, "--redis-url", dstURL, "--storage", store, "restore", br.Filename, "--json")
			rrss := lastHWMKiB
			rsecs := time.Since(t0).Seconds()
			cleanup()
			if err != nil {
				return r, fmt.Errorf("restore into the %s: %v: %s", side, err, out)
			}
			if side == "single" {
				sb, sr = append(sb, secs), append(sr, rsecs)
			} else {
				cb, cr = append(cb, secs), append(cr, rsecs)
				cbRSS, crRSS = append(cbRSS, float64(rss)/1024), append(crRSS, float64(rrss)/1024)
			}
		}
	}
	r.SingleBackupSeconds, r.ClusterBackupSeconds = median(sb), median(cb)
	r.SingleRestoreSeconds, r.ClusterRestoreSecs = median(sr), median(cr)
	r.ClusterBackupRSSMB, r.ClusterRestoreRSSMB = median(cbRSS), median(crRSS)
	fmt.Printf("\n%s (%d keys, %d shards; medians of %d)\n", r.Profile, r.Keys, shards, reps)
	fmt.Printf("  backup:  one server %.2f s, cluster %.2f s (peak RSS %.1f MB)\n", r.SingleBackupSeconds, r.ClusterBackupSeconds, r.ClusterBackupRSSMB)
	fmt.Printf("  restore: one server %.2f s, cluster %.2f s (peak RSS %.1f MB)\n", r.SingleRestoreSeconds, r.ClusterRestoreSecs, r.ClusterRestoreRSSMB)
	return r, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
