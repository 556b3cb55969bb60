// Command archiving measures the continuous archive: a writer doing
// --rate small writes per second for --seconds against a throw-away
// server, followed by `redback serve` with archiving on (a separate
// process, so that its RSS is its own). It samples the agent's RSS and
// its recovery point (/metrics) every 100 ms, then restores the end of
// the run (restore --at) into a fresh server and compares the replay rate
// with `redis-cli --pipe` of the same commands.
//
//	go run ./bench/archiving --rate 50000 --seconds 60
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

func main() {
	rate := flag.Int("rate", 50000, "writes per second")
	seconds := flag.Int("seconds", 60, "seconds of writes")
	flag.Parse()
	if err := run(*rate, *seconds); err != nil {
		log.Fatal(err)
	}
}

func run(rate, seconds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "archbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "redback")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/redback").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	srcDir := filepath.Join(dir, "src")
	must(os.Mkdir(srcDir, 0o700))
	src, err := redistest.StartDir(srcDir, "--repl-diskless-sync-delay", "0")
	if err != nil {
		return err
	}
	defer src.Stop()
	port := 36000 + os.Getpid()%20000 // the API's, for /metrics
	cfg := fmt.Sprintf("redis:\n  url: %s\nstorage: %s\nschedule:\n  enabled: false\napi:\n  listen: 127.0.0.1:%d\narchiving:\n  enabled: true\n  segment_seconds: 1\n",
		src.URL(0), filepath.Join(dir, "backups"), port)
	must(os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(cfg), 0o600))
	serve := exec.Command(bin, "--config", filepath.Join(dir, "agent.yaml"), "serve")
	serve.Env = append(os.Environ(), "REDBACK_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "REDIS_URL=")
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return err
	}
	serve.Stdout, serve.Stderr = logf, logf
	must(serve.Start())
	defer serve.Process.Kill()
	metric := func(name string) (float64, bool) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, name+"{") {
				v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
				return v, err == nil
			}
		}
		return 0, false
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if v, ok := metric("redback_archiving_connected"); ok && v == 1 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the archiver did not connect; see %s", logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The writer: pipelines of 100 SETs of small values, paced to rate;
	// every command also written as RESP for redis-cli --pipe.
	var resp bytes.Buffer
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: src.Socket, PoolSize: 4})
	defer c.Close()
	stop := make(chan struct{})
	var maxRSS, maxRP float64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			maxRSS = max(maxRSS, rssMB(serve.Process.Pid))
			if v, ok := metric("redback_archiving_recovery_point_seconds"); ok {
				maxRP = max(maxRP, v)
			}
		}
	}()
	start := time.Now()
	total := rate * seconds
	const batch = 100
	for n := 0; n < total; n += batch {
		if d := time.Until(start.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		p := c.Pipeline()
		for i := n; i < n+batch; i++ {
			k, v := "key:"+strconv.Itoa(i%200000), strconv.Itoa(i)
			p.Set(ctx, k, v, 0)
			fmt.Fprintf(&resp, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	end := time.Now()
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if v, ok := metric("redback_archiving_lag_bytes"); ok && v == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the archiver did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	fmt.Printf("writes: %d in %.1fs (%.0f/s)\nagent RSS max: %.1f MB\nrecovery point max: %.2f s\n",
		total, elapsed.Seconds(), float64(total)/elapsed.Seconds(), maxRSS, maxRP)

	// Restore to the end of the writes, and the same commands through redis-cli --pipe.
	time.Sleep(1500 * time.Millisecond) // the segment holding the last write is stored
	dstDir := filepath.Join(dir, "dst")
	must(os.Mkdir(dstDir, 0o700))
	dst, err := redistest.StartDir(dstDir)
	if err != nil {
		return err
	}
	defer dst.Stop()
	t0 := time.Now()
	out, err := exec.Command(bin, "--config", filepath.Join(dir, "agent.yaml"), "--redis-url", dst.URL(0),
		"restore", "--at", end.UTC().Format(time.RFC3339Nano), "--json").CombinedOutput()
	if err != nil {
		return fmt.Errorf("restore --at: %v: %s", err, out)
	}
	restoreSec := time.Since(t0).Seconds()
	var res struct {
		PointInTime struct {
			Commands int `json:"commands"`
		} `json:"point_in_time"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("restore --at: not its JSON result (%v): %s", err, out)
	}
	cmds := res.PointInTime.Commands
	if cmds == 0 {
		return fmt.Errorf("restore --at replayed no command: %s", out)
	}
	pipeDir := filepath.Join(dir, "pipe")
	must(os.Mkdir(pipeDir, 0o700))
	pipeSrv, err := redistest.StartDir(pipeDir)
	if err != nil {
		return err
	}
	defer pipeSrv.Stop()
	pipe := exec.Command("redis-cli", "-s", pipeSrv.Socket, "--pipe")
	pipe.Stdin = &resp
	t0 = time.Now()
	if out, err := pipe.CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --pipe: %v: %s", err, out)
	}
	pipeSec := time.Since(t0).Seconds()
	fmt.Printf("restore --at: %d commands replayed, %.1fs in all (base included): %.0f commands/s\nredis-cli --pipe: %d commands in %.1fs: %.0f commands/s\n",
		cmds, restoreSec, float64(cmds)/restoreSec, total, pipeSec, float64(total)/pipeSec)
	return nil
}

// rssMB is the resident set of process pid, in MB.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
