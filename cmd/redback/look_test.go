package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestKeysShowRestoreAfterABadDeploy is the story from the command
// line: look into latest, then put back user:42:* and nothing else.
func TestKeysShowRestoreAfterABadDeploy(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t, 0)
	if err := datagen.Fill(ctx, c, datagen.Spec{Keys: 200, Binary: true, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	c.HSet(ctx, "user:42:profile", "name", "Ann", "plan", "pro")
	c.Set(ctx, "user:42:bin\xff", "x", 0)
	c.Set(ctx, "user:43:profile", "Bob", 0)
	dir := t.TempDir()
	url := srv.URL(0)
	if _, e, code := redback(t, dir, "--redis-url", url, "backup"); code != 0 {
		t.Fatalf("backup: %s", e)
	}

	out, e, code := redback(t, dir, "keys", "latest", "--match", "user:42:*")
	if code != 0 {
		t.Fatalf("keys (%d): %s", code, e)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != "DB\tTYPE\tTTL\tELEMENTS\tSIZE\tKEY" || !strings.Contains(out, "\thash\t-\t2\t") || !strings.Contains(out, `user:42:bin\xff`) {
		t.Fatalf("keys:\n%s", out)
	}
	out, _, code = redback(t, dir, "keys", "latest", "--json", "--type", "string", "--match", `user:42:bin\xff`)
	var kr struct {
		Keys []struct {
			Key, Escaped, Type string
			Elements           int64
		}
		Count   int64
		Cursor  string
		Success bool
	}
	if code != 0 || json.Unmarshal([]byte(out), &kr) != nil || !kr.Success || kr.Count != 1 || kr.Cursor != "0" ||
		len(kr.Keys) != 1 || kr.Keys[0].Escaped != `user:42:bin\xff` || kr.Keys[0].Key != "\x00b64:"+"dXNlcjo0MjpiaW7/" {
		t.Fatalf("keys --json (%d): %s", code, out)
	}
	all, _, _ := redback(t, dir, "keys", "latest", "--json")
	if json.Unmarshal([]byte(all), &kr) != nil || kr.Count != 200+3 {
		t.Fatalf("all keys: %d\n%.300s", kr.Count, all)
	}

	out, e, code = redback(t, dir, "show", "latest", "user:42:profile")
	if code != 0 || !strings.Contains(out, "type      hash") || !strings.Contains(out, "name  Ann") {
		t.Fatalf("show (%d): %s %s", code, out, e)
	}
	out, _, code = redback(t, dir, "show", "latest", "user:42:bin\\xff", "-o", "-")
	if code != 0 || out != "x" {
		t.Fatalf("show -o - (%d): %q", code, out)
	}
	f := filepath.Join(t.TempDir(), "v.jsonl")
	if _, e, code := redback(t, dir, "show", "latest", "user:42:profile", "-o", f, "--json"); code != 0 {
		t.Fatalf("show -o FILE: %s", e)
	}
	if b, _ := os.ReadFile(f); !strings.Contains(string(b), `["name","Ann"]`) {
		t.Fatalf("value file: %s", b)
	}
	if _, e, code := redback(t, dir, "show", "latest", "nope"); code != 2 || !strings.Contains(e, "no key nope") {
		t.Fatalf("show of a missing key (%d): %s", code, e)
	}
	if _, e, code := redback(t, dir, "show", "latest", `bad\x`); code != 2 {
		t.Fatalf("show of a bad KEY (%d): %s", code, e)
	}

	// The bad deploy.
	c.HSet(ctx, "user:42:profile", "name", "CORRUPT")
	c.Set(ctx, "user:43:profile", "Bob changed since", 0)
	out, e, code = redback(t, dir, "--redis-url", url, "restore", "latest", "--match", "user:42:*", "--overwrite", "--json")
	var rr struct {
		RestoredCount int64 `json:"restored_count"`
		FilteredCount int64 `json:"filtered_count"`
		TotalKeys     int64 `json:"total_keys"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rr) != nil || rr.RestoredCount != 2 || rr.FilteredCount != rr.TotalKeys-2 {
		t.Fatalf("restore (%d): %s %s", code, out, e)
	}
	if v := c.HGet(ctx, "user:42:profile", "name").Val(); v != "Ann" {
		t.Fatalf("user:42:profile name %q", v)
	}
	if v := c.Get(ctx, "user:43:profile").Val(); v != "Bob changed since" {
		t.Fatalf("user:43:profile touched: %q", v)
	}
	// A local file by path.
	name := strings.Fields(strings.Split(func() string { o, _, _ := redback(t, dir, "list"); return o }(), "\n")[1])[0]
	c.HSet(ctx, "user:42:profile", "name", "CORRUPT")
	if out, e, code := redback(t, dir, "--redis-url", url, "restore", "./backups/"+name, "--match", "user:42:prof*", "--overwrite"); code != 0 || !strings.Contains(out, "Restored 1 of") {
		t.Fatalf("restore ./path (%d): %s %s", code, out, e)
	}
	if v := c.HGet(ctx, "user:42:profile", "name").Val(); v != "Ann" {
		t.Fatalf("user:42:profile name %q after the local restore", v)
	}
	if _, e, code := redback(t, dir, "--redis-url", url, "restore", "./nothing/"+name); code != 2 {
		t.Fatalf("a missing local file (%d): %s", code, e)
	}
}

// TestDiffExitStatus: diff says 0 equal, 1 different, 2 error; --live
// --match shows what a bad deploy changed.
func TestDiffExitStatus(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t, 0)
	c.Set(ctx, "user:42:a", "good", 0)
	c.Set(ctx, "other", "x", 0)
	dir := t.TempDir()
	url := srv.URL(0)
	if _, e, code := redback(t, dir, "--redis-url", url, "backup"); code != 0 {
		t.Fatalf("backup: %s", e)
	}
	if out, e, code := redback(t, dir, "--redis-url", url, "diff", "latest", "--live"); code != 0 || out != "" {
		t.Fatalf("diff of an unchanged server (%d): %q %s", code, out, e)
	}
	c.Set(ctx, "user:42:a", "bad", 0)
	c.Set(ctx, "user:42:b", "new", 0)
	c.Set(ctx, "other", "y", 0)
	out, e, code := redback(t, dir, "--redis-url", url, "diff", "latest", "--live", "--match", "user:42:*")
	if code != 1 || !strings.Contains(out, "~ 0 user:42:a (value)") || !strings.Contains(out, "+ 0 user:42:b (string)") || strings.Contains(out, "other") {
		t.Fatalf("diff --live --match (%d): %q %s", code, out, e)
	}
	out, _, code = redback(t, dir, "--redis-url", url, "diff", "latest", "--live", "--json")
	var res struct {
		Differences    []struct{ Change, Escaped string }
		Added, Changed int
		Equal, Success bool
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.Added != 1 || res.Changed != 2 || res.Equal || !res.Success || len(res.Differences) != 3 {
		t.Fatalf("diff --json (%d): %s", code, out)
	}
	for _, args := range [][]string{{"diff", "latest"}, {"diff", "nope.json", "--live"}, {"diff", "redis_backup_20200101_000000.json.gz", "--live"}} {
		if _, e, code := redback(t, dir, append([]string{"--redis-url", url}, args...)...); code != 2 {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
	}
	if _, e, code := redback(t, dir, "--redis-url", "redis://127.0.0.1:1/0", "diff", "latest", "--live"); code != 2 {
		t.Fatalf("an unreachable server: exit %d: %s", code, e)
	}
}

// TestLatestEverywhere: verify and download take latest too.
func TestLatestEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0).Set(context.Background(), "k", "v", 0)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o700); err != nil { // empty storage
		t.Fatal(err)
	}
	if _, e, code := redback(t, dir, "--redis-url", srv.URL(0), "verify", "latest"); code != 2 || !strings.Contains(e, "no archive") {
		t.Fatalf("verify latest without archives (%d): %s", code, e)
	}
	if _, e, code := redback(t, dir, "--redis-url", srv.URL(0), "backup"); code != 0 {
		t.Fatal(e)
	}
	if out, e, code := redback(t, dir, "verify", "latest"); code != 0 || !strings.HasPrefix(out, "OK redis_backup_") {
		t.Fatalf("verify latest (%d): %s %s", code, out, e)
	}
	if out, e, code := redback(t, dir, "download", "latest", "-o", "-"); code != 0 || len(out) < 20 || out[0] != 0x1f {
		t.Fatalf("download latest (%d): %s", code, e)
	}
}
