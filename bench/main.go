// Command bench measures redback against the server's own yardsticks on a
// generated dataset, in one run, on throw-away redis-server processes
// (started with repl-diskless-sync-delay 0, so that --rdb is the transfer
// itself, not 5 s of waiting for more replicas first):
//
//   - restore yardsticks: `redis-cli --pipe` loading the dataset from a RESP
//     file into an empty server, and the server loading the RDB at start
//   - backup yardstick: `redis-cli --rdb` (the server's own snapshot transfer)
//   - redback backup and redback restore (as subprocesses: wall time, peak RSS)
//   - the latency a concurrent client sees while the backup runs
//
// Every method runs --reps times (3), interleaved; the table gives the
// medians and the per-run ratios.
//
// With --cluster N it measures instead redback backup and restore of each
// profile on one server and on a cluster of N shards (bench/cluster.go).
//
// Results print as a table and as JSON (--json-out). See docs/PERFORMANCE.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/internal/s3test"
)

// profiles are the datasets by name.
var profiles = map[string]datagen.Spec{
	"10k":  {Keys: 10_000, TTLPercent: 20, Binary: true, BigElements: 20_000, BigString: 1 << 20, Streams: 5, Seed: 1},
	"100k": {Keys: 100_000, TTLPercent: 20, Binary: true, BigElements: 200_000, BigString: 32 << 20, Streams: 20, Seed: 1},
	"1m":   {Keys: 1_000_000, TTLPercent: 20, Binary: true, BigElements: 250_000, BigString: 32 << 20, Streams: 100, Seed: 1},
	// The scale run (docs/PERFORMANCE.md, "Scale"): about 5.5 GB in Redis
	// and 6 GB of RESP on disk; `make bench-scale` runs it once.
	"10m": {Keys: 10_000_000, TTLPercent: 20, Binary: true, BigElements: 250_000, BigString: 32 << 20, Streams: 1000, Seed: 1},
	// One key of 10 million elements of each collection type.
	"bigkeys": {Keys: 1000, BigElements: 10_000_000, Seed: 1},
}

// Result is one profile's figures.
type Result struct {
	Profile          string  `json:"profile"`
	Keys             int64   `json:"keys"`
	RedisUsedMemory  int64   `json:"redis_used_memory_bytes"`
	RESPFileBytes    int64   `json:"resp_file_bytes"`
	PipeLoadSeconds  float64 `json:"yardstick_redis_cli_pipe_seconds"`
	RDBSeconds       float64 `json:"yardstick_redis_cli_rdb_seconds"`
	RDBBytes         int64   `json:"rdb_bytes"`
	BackupSeconds    float64 `json:"backup_seconds"`
	BackupKeysPerSec float64 `json:"backup_keys_per_second"`
	BackupMBPerSec   float64 `json:"backup_redis_mb_per_second"`
	BackupRSSMB      float64 `json:"backup_peak_rss_mb"`
	BackupAnonMB     float64 `json:"backup_peak_anon_rss_mb"`
	BackupVsRDB      float64 `json:"backup_vs_rdb"`
	ArchiveBytes     int64   `json:"archive_bytes"`
	RestoreSeconds   float64 `json:"restore_seconds"`
	RestoreKeysPerS  float64 `json:"restore_keys_per_second"`
	RestoreRSSMB     float64 `json:"restore_peak_rss_mb"`
	RestoreAnonMB    float64 `json:"restore_peak_anon_rss_mb"`
	IdleRSSMB        float64 `json:"redback_list_rss_mb"`
	RestoreVsPipe    float64 `json:"restore_vs_pipe"`
	PingP50Ms        float64 `json:"ping_during_backup_p50_ms"`
	PingP99Ms        float64 `json:"ping_during_backup_p99_ms"`
	PingMaxMs        float64 `json:"ping_during_backup_max_ms"`
	PingIdleP99Ms    float64 `json:"ping_idle_p99_ms"`
	S3BackupSeconds  float64 `json:"s3_backup_seconds,omitempty"`
	S3BackupRSSMB    float64 `json:"s3_backup_peak_rss_mb,omitempty"`
	S3BackupAnonMB   float64 `json:"s3_backup_peak_anon_rss_mb,omitempty"`
	Verified         string  `json:"verified"`
	// RDBLoadSeconds is the server's own restore: loading the RDB at start.
	RDBLoadSeconds float64 `json:"yardstick_rdb_load_seconds"`
	RestoreVsLoad  float64 `json:"restore_vs_rdb_load"`
	// The snapshot path (medians of the runs).
	SnapshotSeconds   float64 `json:"snapshot_backup_seconds"`
	SnapshotVsRDB     float64 `json:"snapshot_vs_rdb"`
	SnapshotRSSMB     float64 `json:"snapshot_peak_rss_mb"`
	SnapshotAnonMB    float64 `json:"snapshot_peak_anon_rss_mb"`
	ExportSeconds     float64 `json:"export_seconds"`
	ExportLoadSeconds float64 `json:"export_load_seconds"`
	// Runs are the repetitions; the fields above are their medians.
	Runs []Run `json:"runs"`
}

// Run is one repetition of every method.
type Run struct {
	RDBSeconds     float64 `json:"yardstick_redis_cli_rdb_seconds"`
	BackupSeconds  float64 `json:"backup_seconds"`
	BackupVsRDB    float64 `json:"backup_vs_rdb"`
	BackupRSSMB    float64 `json:"backup_peak_rss_mb"`
	BackupAnonMB   float64 `json:"backup_peak_anon_rss_mb"`
	PingP50Ms      float64 `json:"ping_during_backup_p50_ms"`
	PingP99Ms      float64 `json:"ping_during_backup_p99_ms"`
	PingMaxMs      float64 `json:"ping_during_backup_max_ms"`
	PipeSeconds    float64 `json:"yardstick_redis_cli_pipe_seconds"`
	RestoreSeconds float64 `json:"restore_seconds"`
	RestoreVsPipe  float64 `json:"restore_vs_pipe"`
	RestoreRSSMB   float64 `json:"restore_peak_rss_mb"`
	RestoreAnonMB  float64 `json:"restore_peak_anon_rss_mb"`
	RDBLoadSeconds float64 `json:"yardstick_rdb_load_seconds"`
	// The snapshot path: backup --source replica; export to an RDB file
	// and the server starting on it (the fast restore onto a fresh host).
	SnapshotSeconds   float64 `json:"snapshot_backup_seconds"`
	SnapshotVsRDB     float64 `json:"snapshot_vs_rdb"`
	SnapshotRSSMB     float64 `json:"snapshot_peak_rss_mb"`
	SnapshotAnonMB    float64 `json:"snapshot_peak_anon_rss_mb"`
	ExportSeconds     float64 `json:"export_seconds"`
	ExportLoadSeconds float64 `json:"export_load_seconds"`
}

// summarize sets r's figures to the medians of its runs (ratios: the
// medians of the per-run ratios; memory and latency: the medians too).
func (r *Result) summarize() {
	med := func(f func(Run) float64) float64 {
		var v []float64
		for _, run := range r.Runs {
			v = append(v, f(run))
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	r.RDBSeconds = med(func(x Run) float64 { return x.RDBSeconds })
	r.BackupSeconds = med(func(x Run) float64 { return x.BackupSeconds })
	r.BackupVsRDB = med(func(x Run) float64 { return x.BackupVsRDB })
	r.BackupRSSMB = med(func(x Run) float64 { return x.BackupRSSMB })
	r.BackupAnonMB = med(func(x Run) float64 { return x.BackupAnonMB })
	r.PingP50Ms = med(func(x Run) float64 { return x.PingP50Ms })
	r.PingP99Ms = med(func(x Run) float64 { return x.PingP99Ms })
	r.PingMaxMs = med(func(x Run) float64 { return x.PingMaxMs })
	r.PipeLoadSeconds = med(func(x Run) float64 { return x.PipeSeconds })
	r.RestoreSeconds = med(func(x Run) float64 { return x.RestoreSeconds })
	r.RestoreVsPipe = med(func(x Run) float64 { return x.RestoreVsPipe })
	r.RestoreRSSMB = med(func(x Run) float64 { return x.RestoreRSSMB })
	r.RestoreAnonMB = med(func(x Run) float64 { return x.RestoreAnonMB })
	r.RDBLoadSeconds = med(func(x Run) float64 { return x.RDBLoadSeconds })
	r.RestoreVsLoad = med(func(x Run) float64 { return x.RestoreSeconds / x.RDBLoadSeconds })
	r.SnapshotSeconds = med(func(x Run) float64 { return x.SnapshotSeconds })
	r.SnapshotVsRDB = med(func(x Run) float64 { return x.SnapshotVsRDB })
	r.SnapshotRSSMB = med(func(x Run) float64 { return x.SnapshotRSSMB })
	r.SnapshotAnonMB = med(func(x Run) float64 { return x.SnapshotAnonMB })
	r.ExportSeconds = med(func(x Run) float64 { return x.ExportSeconds })
	r.ExportLoadSeconds = med(func(x Run) float64 { return x.ExportLoadSeconds })
	r.BackupKeysPerSec = float64(r.Keys) / r.BackupSeconds
	r.BackupMBPerSec = float64(r.RedisUsedMemory) / (1 << 20) / r.BackupSeconds
	r.RestoreKeysPerS = float64(r.Keys) / r.RestoreSeconds
}

func main() {
	prof := flag.String("profile", "1m", "datasets to run, comma-separated: "+strings.Join(slices.Sorted(maps.Keys(profiles)), ", "))
	jsonOut := flag.String("json-out", "", "also write the results as JSON to this file")
	verify := flag.Bool("verify", true, "compare the restored server with the source, key by key")
	workdir := flag.String("dir", "", "working directory (default: a temporary one, removed at the end)")
	extra := flag.String("redback-args", "", "extra arguments for `redback backup` (e.g. --no-compress)")
	withS3 := flag.Bool("s3", false, "also back up into an S3-compatible server (versitygw, started here) and compare")
	repsFlag := flag.Int("reps", 3, "repetitions of each method, interleaved (the table gives medians)")
	clusterShards := flag.Int("cluster", 0, "instead: back up and restore each profile on one server and on a cluster of this many shards (redback only)")
	genOnly := flag.String("generate", "", "only write the (first) profile's dataset as RESP commands to this file, then exit")
	flag.Parse()
	if *genOnly != "" {
		spec, ok := profiles[strings.Split(*prof, ",")[0]]
		if !ok {
			fatalf("unknown profile %q", *prof)
		}
		f, err := os.Create(*genOnly)
		check(err)
		bw := bufio.NewWriterSize(f, 1<<20)
		check(datagen.Generate(&datagen.RESPWriter{W: bw}, spec))
		check(f.Close())
		return
	}

	dir := *workdir
	if dir == "" {
		d, err := os.MkdirTemp("", "redback-bench-")
		check(err)
		defer os.RemoveAll(d)
		dir = d
	}
	bin := filepath.Join(dir, "redback")
	step("building redback")
	build := exec.Command("go", "build", "-o", bin, "./cmd/redback")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	check(build.Run())

	if *clusterShards > 0 {
		var crs []ClusterResult
		for _, name := range strings.Split(*prof, ",") {
			spec, ok := profiles[strings.TrimSpace(name)]
			if !ok {
				fatalf("unknown profile %q", name)
			}
			r, err := runCluster(strings.TrimSpace(name), spec, dir, bin, *clusterShards, max(*repsFlag, 1))
			check(err)
			crs = append(crs, r)
		}
		if *jsonOut != "" {
			writeJSON(*jsonOut, "cluster", crs)
		}
		return
	}
	var results []Result
	for _, name := range strings.Split(*prof, ",") {
		spec, ok := profiles[strings.TrimSpace(name)]
		if !ok {
			fatalf("unknown profile %q", name)
		}
		r, err := runProfile(name, spec, dir, bin, *verify, *withS3, strings.Fields(*extra), max(*repsFlag, 1))
		check(err)
		results = append(results, r)
	}
	printTable(results)
	if *jsonOut != "" {
		writeJSON(*jsonOut, "results", results)
	}
}

// writeJSON writes the machine, the date and results (as member name) to
// path.
func writeJSON(path, name string, results any) {
	b, _ := json.MarshalIndent(map[string]any{
		"machine": map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "redis": redisVersion()},
		"date":    time.Now().UTC().Format(time.RFC3339),
		name:      results,
	}, "", "  ")
	check(os.WriteFile(path, b, 0o644))
	fmt.Printf("\nJSON written to %s\n", path)
}

func runProfile(name string, spec datagen.Spec, dir, bin string, verify, withS3 bool, extra []string, reps int) (Result, error) {
	r := Result{Profile: name}
	pdir := filepath.Join(dir, name)
	check(os.MkdirAll(pdir, 0o755))
	defer os.RemoveAll(pdir)

	step("%s: generating the dataset as a RESP file", name)
	respPath := filepath.Join(pdir, "data.resp")
	f, err := os.Create(respPath)
	if err != nil {
		return r, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := datagen.Generate(&datagen.RESPWriter{W: bw}, spec); err != nil {
		return r, err
	}
	check(f.Close())
	st, _ := os.Stat(respPath)
	r.RESPFileBytes = st.Size()

	srcDir := filepath.Join(pdir, "src")
	check(os.MkdirAll(srcDir, 0o755))
	// repl-diskless-sync-delay 0: with the default (5 s), a diskless
	// transfer (redis-cli --rdb, a replica) waits 5 s for more replicas
	// before it starts, which would flatter every ratio against --rdb.
	src, err := redistest.StartDir(srcDir, yardstickArgs...)
	if err != nil {
		return r, err
	}
	defer src.Stop()

	ctx := context.Background()
	step("%s: loading the dataset (redis-cli --pipe)", name)
	if _, err := pipeLoad(src, respPath); err != nil {
		return r, err
	}
	sc := redis.NewClient(&redis.Options{Network: "unix", Addr: src.Socket, Protocol: 2, ReadTimeout: 10 * time.Minute})
	defer sc.Close()
	r.Keys = dbsize(ctx, sc)
	r.RedisUsedMemory = usedMemory(ctx, sc)
	_, r.PingIdleP99Ms, _ = pingWhile(src.Socket, func() { time.Sleep(2 * time.Second) })

	// Each method reps times, interleaved (--rdb, backup, --pipe, restore,
	// RDB load, then again), so that a slow moment of the machine hits
	// all of them alike; the table gives medians, Runs every run.
	store := filepath.Join(pdir, "backups")
	var verifyDst *redistest.Server
	var backupStart time.Time
	for rep := 1; rep <= reps; rep++ {
		var run Run
		step("%s [%d/%d]: yardstick: redis-cli --rdb", name, rep, reps)
		rdb := filepath.Join(pdir, "dump.rdb")
		_ = os.Remove(rdb)
		t0 := time.Now()
		if out, err := shell(fmt.Sprintf("redis-cli -s %s --rdb %s", src.Socket, rdb)); err != nil {
			return r, fmt.Errorf("redis-cli --rdb: %v: %s", err, out)
		}
		run.RDBSeconds = time.Since(t0).Seconds()
		if st, err := os.Stat(rdb); err == nil {
			r.RDBBytes = st.Size()
		}

		step("%s [%d/%d]: redback backup", name, rep, reps)
		_ = os.RemoveAll(store)
		var backupOut []byte
		var backupRSS, backupAnon int64
		var backupErr error
		backupStart = time.Now()
		run.PingP50Ms, run.PingP99Ms, run.PingMaxMs = pingWhile(src.Socket, func() {
			t0 = time.Now()
			args := append([]string{"--redis-url", src.SocketURL(0), "--storage", store, "backup", "--json"}, extra...)
			backupOut, backupRSS, backupErr = runMeasured(pdir, bin, args...)
			backupAnon = lastAnonKiB
			run.BackupSeconds = time.Since(t0).Seconds()
		})
		if backupErr != nil {
			return r, fmt.Errorf("redback backup: %v: %s", backupErr, backupOut)
		}
		var br struct {
			Filename  string `json:"filename"`
			Size      int64  `json:"size"`
			KeysCount int64  `json:"keys_count"`
		}
		if err := json.Unmarshal(backupOut, &br); err != nil {
			return r, fmt.Errorf("backup output: %v: %s", err, backupOut)
		}
		if br.KeysCount != r.Keys {
			return r, fmt.Errorf("backup wrote %d keys, the server holds %d", br.KeysCount, r.Keys)
		}
		r.ArchiveBytes = br.Size
		run.BackupRSSMB = float64(backupRSS) / 1024
		run.BackupAnonMB = float64(backupAnon) / 1024

		step("%s [%d/%d]: redback backup --source replica (a snapshot)", name, rep, reps)
		snapStore := filepath.Join(pdir, "snapshots")
		_ = os.RemoveAll(snapStore)
		t0 = time.Now()
		snapOut, snapRSS, err := runMeasured(pdir, bin, append([]string{"--redis-url", src.SocketURL(0), "--storage", snapStore, "backup", "--source", "replica", "--json"}, extra...)...)
		run.SnapshotSeconds = time.Since(t0).Seconds()
		if err != nil {
			return r, fmt.Errorf("redback backup --source replica: %v: %s", err, snapOut)
		}
		var sr struct {
			KeysCount int64 `json:"keys_count"`
		}
		if err := json.Unmarshal(snapOut, &sr); err != nil || sr.KeysCount != r.Keys {
			return r, fmt.Errorf("snapshot backup: %d keys of %d (%v): %s", sr.KeysCount, r.Keys, err, snapOut)
		}
		run.SnapshotRSSMB = float64(snapRSS) / 1024
		run.SnapshotAnonMB = float64(lastAnonKiB) / 1024
		run.SnapshotVsRDB = run.SnapshotSeconds / run.RDBSeconds
		_ = os.RemoveAll(snapStore)

		step("%s [%d/%d]: yardstick: redis-cli --pipe into an empty server", name, rep, reps)
		pipeDst, err := freshServer(pdir, "pipe")
		if err != nil {
			return r, err
		}
		run.PipeSeconds, err = pipeLoad(pipeDst, respPath)
		pipeDst.Stop()
		if err != nil {
			return r, err
		}

		step("%s [%d/%d]: redback restore into an empty server", name, rep, reps)
		dst, err := freshServer(pdir, "dst")
		if err != nil {
			return r, err
		}
		t0 = time.Now()
		out, rss, err := runMeasured(pdir, bin, "--redis-url", dst.SocketURL(0), "--storage", store, "restore", br.Filename, "--json")
		run.RestoreSeconds = time.Since(t0).Seconds()
		if err != nil {
			dst.Stop()
			return r, fmt.Errorf("redback restore: %v: %s", err, out)
		}
		run.RestoreRSSMB = float64(rss) / 1024
		run.RestoreAnonMB = float64(lastAnonKiB) / 1024
		if rep == reps {
			verifyDst = dst
			defer dst.Stop()
		} else {
			dst.Stop()
		}

		step("%s [%d/%d]: yardstick: the server loads the RDB at start", name, rep, reps)
		if run.RDBLoadSeconds, err = rdbLoad(pdir, rdb); err != nil {
			return r, err
		}
		_ = os.Remove(rdb)

		step("%s [%d/%d]: redback export, and the server starting on it", name, rep, reps)
		exported := filepath.Join(pdir, "exported.rdb")
		_ = os.Remove(exported)
		serverBin, err := exec.LookPath("redis-server")
		if err != nil {
			return r, err
		}
		t0 = time.Now()
		if out, _, err := runMeasured(pdir, bin, "--storage", store, "export", br.Filename, "-o", exported, "--server-binary", serverBin); err != nil {
			return r, fmt.Errorf("redback export: %v: %s", err, out)
		}
		run.ExportSeconds = time.Since(t0).Seconds()
		if run.ExportLoadSeconds, err = rdbLoad(pdir, exported); err != nil {
			return r, err
		}
		run.BackupVsRDB = run.BackupSeconds / run.RDBSeconds
		run.RestoreVsPipe = run.RestoreSeconds / run.PipeSeconds
		r.Runs = append(r.Runs, run)
	}
	_ = os.Remove(respPath)
	r.summarize()
	if _, idle, err := runMeasured(pdir, bin, "--storage", store, "list"); err == nil {
		r.IdleRSSMB = float64(idle) / 1024
	}
	if withS3 {
		if err := backupToS3(&r, pdir, bin, src, extra); err != nil {
			return r, err
		}
	}

	r.Verified = "skipped"
	if verify {
		step("%s: comparing source and restored servers key by key", name)
		dc := redis.NewClient(&redis.Options{Network: "unix", Addr: verifyDst.Socket, Protocol: 2, ReadTimeout: 10 * time.Minute})
		defer dc.Close()
		// TTLs are restored as recorded (relative): on the restored server
		// they run later by the time since the backup read them.
		diffs, err := redistest.Compare(ctx, sc, dc, time.Since(backupStart)+5*time.Second)
		if err != nil {
			return r, err
		}
		if len(diffs) > 0 {
			return r, fmt.Errorf("restored data differs: %s", strings.Join(diffs, "; "))
		}
		r.Verified = "identical"
	}
	return r, nil
}

// yardstickArgs configure every server of the benchmark (see runProfile).
var yardstickArgs = []string{"--repl-diskless-sync-delay", "0"}

// freshServer starts an empty server in a new folder under pdir.
func freshServer(pdir, label string) (*redistest.Server, error) {
	d, err := os.MkdirTemp(pdir, label+"-")
	if err != nil {
		return nil, err
	}
	return redistest.StartDir(d, yardstickArgs...)
}

// pipeLoad loads a RESP file into s with redis-cli --pipe and returns the
// time it took.
func pipeLoad(s *redistest.Server, respPath string) (float64, error) {
	t0 := time.Now()
	out, err := shell(fmt.Sprintf("redis-cli -s %s --pipe < %s", s.Socket, respPath))
	if err != nil {
		return 0, fmt.Errorf("redis-cli --pipe: %v: %s", err, out)
	}
	if !strings.Contains(out, "errors: 0") {
		return 0, fmt.Errorf("redis-cli --pipe reported errors: %s", lastLine(out))
	}
	return time.Since(t0).Seconds(), nil
}

// rdbLoad starts a server on the RDB file (moved into a folder of its
// own) and returns the time from the start to its first PONG (a loading
// server answers -LOADING): the server's own restore. It waits as long as
// the load takes (redistest's start gives up after seconds).
func rdbLoad(pdir, rdb string) (float64, error) {
	d, err := os.MkdirTemp(pdir, "load-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(d)
	if err := os.Rename(rdb, filepath.Join(d, "dump.rdb")); err != nil {
		return 0, err
	}
	bin, err := redistest.Binary()
	if err != nil {
		return 0, err
	}
	sock := filepath.Join(d, "s.sock")
	cmd := exec.Command(bin, append([]string{"--port", "0", "--unixsocket", sock, "--dir", d, "--dbfilename", "dump.rdb",
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(d, "log")}, yardstickArgs...)...)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for time.Since(t0) < 30*time.Minute {
		if c, err := net.Dial("unix", sock); err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "+PONG") {
				return time.Since(t0).Seconds(), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("the server did not load %s within 30 minutes", rdb)
}

// backupToS3 runs the same backup into versitygw (an S3-compatible gateway
// on this machine, over HTTP on loopback).
func backupToS3(r *Result, pdir, bin string, src *redistest.Server, extra []string) error {
	step("%s: redback backup into S3 (versitygw)", r.Profile)
	gwDir := filepath.Join(pdir, "s3")
	if err := os.MkdirAll(gwDir, 0o755); err != nil {
		return err
	}
	gw, err := s3test.StartDir(gwDir)
	if err != nil {
		return err
	}
	defer gw.Stop()
	if err := gw.CreateBucket(context.Background(), "bench"); err != nil {
		return err
	}
	for _, kv := range s3test.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	t0 := time.Now()
	args := append([]string{"--redis-url", src.SocketURL(0), "--storage", gw.SinkURL("bench", "redis"), "backup", "--json"}, extra...)
	out, rss, err := runMeasured(pdir, bin, args...)
	if err != nil {
		return fmt.Errorf("redback backup to S3: %v: %s", err, out)
	}
	r.S3BackupSeconds = time.Since(t0).Seconds()
	r.S3BackupRSSMB = float64(rss) / 1024
	r.S3BackupAnonMB = float64(lastAnonKiB) / 1024
	return nil
}

// runMeasured runs bin and returns its stdout and peak RSS in KiB (from
// rusage), and records in lastAnonKiB the peak of its anonymous resident
// memory (heap, stacks: RSS less the pages of the binary itself), sampled
// from /proc every 10 ms.
func runMeasured(dir, bin string, args ...string) ([]byte, int64, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	lastAnonKiB, lastHWMKiB = 0, 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		path := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
					n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
					lastAnonKiB = max(lastAnonKiB, n)
				}
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
					lastHWMKiB = max(lastHWMKiB, n)
				}
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	<-sampled
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	if err != nil {
		return append(out.Bytes(), errb.Bytes()...), rss, err
	}
	return out.Bytes(), rss, nil
}

// pingWhile runs fn while a client sends PING over the socket, one at a
// time, and returns the p50, p99 and max latency in milliseconds.
func pingWhile(sock string, fn func()) (p50, p99, maxMs float64) {
	conn, err := net.Dial("unix", sock)
	check(err)
	defer conn.Close()
	stop := make(chan struct{})
	done := make(chan []time.Duration)
	go func() {
		var lat []time.Duration
		rd := bufio.NewReader(conn)
		for n := 0; n < 5_000_000; n++ {
			select {
			case <-stop:
				done <- lat
				return
			default:
			}
			t := time.Now()
			if _, err := conn.Write([]byte("PING\r\n")); err != nil {
				break
			}
			if _, err := rd.ReadString('\n'); err != nil {
				break
			}
			lat = append(lat, time.Since(t))
			time.Sleep(time.Millisecond)
		}
		<-stop
		done <- lat
	}()
	fn()
	close(stop)
	lat := <-done
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
}

// lastAnonKiB is the peak anonymous RSS of the last runMeasured;
// lastHWMKiB its resident high-water mark (VmHWM) as last sampled. Unlike
// the rusage figure, VmHWM belongs to the program after exec only: the
// rusage maxrss of a child also counts the memory of the process that
// started it, when that is larger (the cluster profile's bench process).
var lastAnonKiB, lastHWMKiB int64

func printTable(rs []Result) {
	fmt.Println()
	w := func(label string, f func(r Result) string) {
		fmt.Printf("%-34s", label)
		for _, r := range rs {
			fmt.Printf("%16s", f(r))
		}
		fmt.Println()
	}
	w("profile", func(r Result) string { return r.Profile })
	w("keys", func(r Result) string { return strconv.FormatInt(r.Keys, 10) })
	w("redis used_memory (MB)", func(r Result) string { return mb(r.RedisUsedMemory) })
	w("yardstick redis-cli --rdb (s)", func(r Result) string { return f2(r.RDBSeconds) })
	w("backup wall time (s)", func(r Result) string { return f2(r.BackupSeconds) })
	w("backup / --rdb", func(r Result) string { return f2(r.BackupVsRDB) + "x" })
	w("backup keys/s", func(r Result) string { return strconv.FormatInt(int64(r.BackupKeysPerSec), 10) })
	w("backup MB/s (of redis memory)", func(r Result) string { return f2(r.BackupMBPerSec) })
	w("backup peak RSS (MB)", func(r Result) string { return f2(r.BackupRSSMB) })
	w("  of it anonymous (heap, stacks)", func(r Result) string { return f2(r.BackupAnonMB) })
	w("snapshot backup (s)", func(r Result) string { return f2(r.SnapshotSeconds) })
	w("snapshot / --rdb", func(r Result) string { return f2(r.SnapshotVsRDB) + "x" })
	w("snapshot peak RSS (MB)", func(r Result) string { return f2(r.SnapshotRSSMB) })
	w("  of it anonymous (heap, stacks)", func(r Result) string { return f2(r.SnapshotAnonMB) })
	w("archive size (MB)", func(r Result) string { return mb(r.ArchiveBytes) })
	w("yardstick redis-cli --pipe (s)", func(r Result) string { return f2(r.PipeLoadSeconds) })
	w("restore wall time (s)", func(r Result) string { return f2(r.RestoreSeconds) })
	w("restore / --pipe", func(r Result) string { return f2(r.RestoreVsPipe) + "x" })
	w("yardstick RDB load at start (s)", func(r Result) string { return f2(r.RDBLoadSeconds) })
	w("restore / RDB load", func(r Result) string { return f2(r.RestoreVsLoad) + "x" })
	w("export to RDB (s)", func(r Result) string { return f2(r.ExportSeconds) })
	w("  + server start on it (s)", func(r Result) string { return f2(r.ExportLoadSeconds) })
	w("restore keys/s", func(r Result) string { return strconv.FormatInt(int64(r.RestoreKeysPerS), 10) })
	w("restore peak RSS (MB)", func(r Result) string { return f2(r.RestoreRSSMB) })
	w("  of it anonymous (heap, stacks)", func(r Result) string { return f2(r.RestoreAnonMB) })
	w("RSS of `redback list` (baseline)", func(r Result) string { return f2(r.IdleRSSMB) })
	w("PING idle p99 (ms)", func(r Result) string { return f2(r.PingIdleP99Ms) })
	w("PING during backup p50/p99 (ms)", func(r Result) string { return f2(r.PingP50Ms) + "/" + f2(r.PingP99Ms) })
	w("PING during backup max (ms)", func(r Result) string { return f2(r.PingMaxMs) })
	if rs[0].S3BackupSeconds > 0 {
		w("backup to S3 (versitygw) wall time (s)", func(r Result) string { return f2(r.S3BackupSeconds) })
		w("backup to S3 peak RSS (MB)", func(r Result) string { return f2(r.S3BackupRSSMB) })
		w("  of it anonymous", func(r Result) string { return f2(r.S3BackupAnonMB) })
	}
	w("restored data", func(r Result) string { return r.Verified })
	fmt.Println("\n(medians of the runs; per run: backup/--rdb, snapshot/--rdb, restore/--pipe)")
	for _, r := range rs {
		var b, sn, p []string
		for _, run := range r.Runs {
			b = append(b, f2(run.BackupVsRDB)+"x")
			sn = append(sn, f2(run.SnapshotVsRDB)+"x")
			p = append(p, f2(run.RestoreVsPipe)+"x")
		}
		fmt.Printf("%-10s backup/--rdb %s   snapshot/--rdb %s   restore/--pipe %s\n", r.Profile, strings.Join(b, " "), strings.Join(sn, " "), strings.Join(p, " "))
	}
}

func f2(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
func mb(n int64) string   { return f2(float64(n) / (1 << 20)) }

func dbsize(ctx context.Context, c *redis.Client) int64 {
	info, err := c.Info(ctx, "keyspace").Result()
	check(err)
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if i := strings.Index(line, "keys="); i >= 0 {
			n, _ := strconv.ParseInt(strings.SplitN(line[i+5:], ",", 2)[0], 10, 64)
			total += n
		}
	}
	return total
}

func usedMemory(ctx context.Context, c *redis.Client) int64 {
	info, err := c.Info(ctx, "memory").Result()
	check(err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func redisVersion() string {
	out, _ := exec.Command("redis-server", "--version").Output()
	return strings.TrimSpace(string(out))
}

func shell(s string) (string, error) {
	out, err := exec.Command("bash", "-c", s).CombinedOutput()
	return string(out), err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func step(f string, a ...any) { fmt.Fprintf(os.Stderr, "== "+f+"\n", a...) }

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+f+"\n", a...)
	os.Exit(1)
}
