// Temporary: measures 100k-key backups to a folder and to versitygw. Not committed.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/internal/s3test"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "measure")
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "redback")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/redback").CombinedOutput()
	if err != nil {
		panic(string(out))
	}
	rd := filepath.Join(dir, "redis")
	os.Mkdir(rd, 0o755)
	srv, err := redistest.StartDir(rd)
	must(err)
	defer srv.Stop()
	spec := datagen.Spec{Keys: 100_000, TTLPercent: 20, Binary: true, BigElements: 200_000, BigString: 32 << 20, Streams: 20, Seed: 1}
	if os.Getenv("SMALL") != "" {
		spec = datagen.Spec{Keys: 100_000, TTLPercent: 20, Binary: true, Seed: 1}
	}
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, DB: 0, Protocol: 2})
	must(datagen.Fill(ctx, c, spec))
	n, _ := c.DBSize(ctx).Result()
	mem, _ := c.Info(ctx, "memory").Result()
	um := regexp.MustCompile(`used_memory:(\d+)`).FindStringSubmatch(mem)
	fmt.Printf("keys %d used_memory %s\n", n, um[1])
	gd := filepath.Join(dir, "gw")
	os.Mkdir(gd, 0o755)
	gw, err := s3test.StartDir(gd)
	must(err)
	defer gw.Stop()
	must(gw.CreateBucket(ctx, "bench"))
	id, _ := age.GenerateX25519Identity()
	for _, enc := range []bool{false, true} {
		for round := 0; round < 3; round++ {
			for _, target := range []string{"folder", "s3"} {
				work := filepath.Join(dir, fmt.Sprintf("w-%v-%d-%s", enc, round, target))
				os.Mkdir(work, 0o755)
				storage := filepath.Join(work, "backups")
				if target == "s3" {
					storage = gw.SinkURL("bench", fmt.Sprintf("r%d-%v", round, enc))
				}
				if enc {
					os.WriteFile(filepath.Join(work, "agent.yaml"), []byte("backup:\n  encrypt:\n    recipients: [\""+id.Recipient().String()+"\"]\n"), 0o600)
				}
				cmd := exec.Command("/usr/bin/time", "-v", bin, "--redis-url", srv.URL(0), "--storage", storage, "backup", "--json")
				cmd.Dir = work
				cmd.Env = append(os.Environ(), s3test.Env()...)
				var so, se bytes.Buffer
				cmd.Stdout, cmd.Stderr = &so, &se
				if err := cmd.Run(); err != nil {
					panic(se.String())
				}
				wall := regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)`).FindStringSubmatch(se.String())[1]
				rss := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindStringSubmatch(se.String())[1]
				usr := regexp.MustCompile(`User time \(seconds\): (\S+)`).FindStringSubmatch(se.String())[1]
				sys := regexp.MustCompile(`System time \(seconds\): (\S+)`).FindStringSubmatch(se.String())[1]
				size := regexp.MustCompile(`"size": (\d+)`).FindStringSubmatch(so.String())[1]
				fmt.Printf("enc=%v round=%d target=%-6s wall=%s rss_kb=%s user=%s sys=%s size=%s\n", enc, round, target, wall, rss, usr, sys, strings.TrimSpace(size))
			}
		}
	}
}
