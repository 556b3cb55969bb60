package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

// checkLine returns the line of `redback check` for name.
func checkLine(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " "+name+": ") {
			return l
		}
	}
	return ""
}

// redback check tells a healthy agent from one with a wrong password, an
// unwritable folder, a missing folder, a stale backup and a suspect one.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	s := redistest.Start(t, "--requirepass", "right-secret-2")
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port), Password: "right-secret-2"})
	defer c.Close()
	for i := range 50 {
		if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	url := fmt.Sprintf("redis://:right-secret-2@127.0.0.1:%d/0", s.Port)
	dir := t.TempDir()
	if _, e, code := redback(t, dir, "--redis-url", url, "backup"); code != 0 {
		t.Fatal(e)
	}
	run := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := redback(t, dir, args...)
		if code != want {
			t.Fatalf("check %v: exit %d, want %d:\n%s%s", args, code, want, out, errOut)
		}
		if strings.Contains(out+errOut, "right-secret-2") {
			t.Fatalf("check %v printed the password:\n%s%s", args, out, errOut)
		}
		return out
	}

	out := run(0, "--redis-url", url, "check")
	for _, name := range []string{"redis", "redis rights", "storage", "newest archive", "encryption"} {
		if l := checkLine(out, name); !strings.HasPrefix(l, "ok ") {
			t.Errorf("healthy agent, %s: %q\n%s", name, l, out)
		}
	}

	out = run(1, "--redis-url", fmt.Sprintf("redis://:wrong@127.0.0.1:%d/0", s.Port), "check")
	if l := checkLine(out, "redis"); !strings.HasPrefix(l, "FAIL") || checkLine(out, "redis rights") != "" {
		t.Errorf("wrong password: %q\n%s", l, out)
	}

	// A stale backup: api.ready_max_age shorter than its age.
	cfg := filepath.Join(dir, "stale.yaml")
	if err := os.WriteFile(cfg, []byte("storage: backups\napi:\n  ready_max_age: 1ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = run(1, "--config", cfg, "--redis-url", url, "check")
	if l := checkLine(out, "newest archive"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "older than api.ready_max_age") {
		t.Errorf("stale backup: %q\n%s", l, out)
	}

	// An unwritable folder (immutable: root ignores permission bits).
	imm := filepath.Join(dir, "backups")
	if msg, err := exec.Command("chattr", "+i", imm).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v: %s", err, msg)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", imm).Run() })
	out = run(1, "--redis-url", url, "check")
	if msg, err := exec.Command("chattr", "-i", imm).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v: %s", err, msg)
	}
	if l := checkLine(out, "storage"); !strings.HasPrefix(l, "FAIL") {
		t.Errorf("unwritable folder: %q\n%s", l, out)
	}

	// A missing folder: one failed check, nothing created.
	out = run(1, "--storage", "typo", "--redis-url", url, "check")
	if l := checkLine(out, "storage"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "does not exist") {
		t.Errorf("missing folder: %q\n%s", l, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo")); !os.IsNotExist(err) {
		t.Errorf("check created the folder: %v", err)
	}

	// After a FLUSHALL the newest backup holds no keys: suspect.
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, e, code := redback(t, dir, "--redis-url", url, "backup"); code != 0 {
		t.Fatal(e)
	}
	out = run(1, "--redis-url", url, "check", "--json")
	if !strings.Contains(out, `"ok":false`) || !strings.Contains(out, "suspect") {
		t.Errorf("suspect backup (json):\n%s", out)
	}
	// Nothing the checks wrote is listed.
	if out, _, _ := redback(t, dir, "list"); strings.Count(out, "redis_backup_") != 2 {
		t.Errorf("list after the checks:\n%s", out)
	}
}
