package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/redistest"
)

// Commands that take no backup never create the storage folder: with a
// mistyped --storage (or in a folder with no backups/ yet) they say that
// it does not exist and exit 2, instead of "No backups.".
func TestReadOnlyCommandsCreateNoStorage(t *testing.T) {
	src := redistest.Start(t)
	dir := t.TempDir()
	const name = "redis_backup_20231205_143022.json.gz"
	for _, storage := range []string{"typo", ""} {
		folder := storage
		if folder == "" {
			folder = "backups" // the default
		}
		for _, args := range [][]string{
			{"list"}, {"list", "--json"}, {"stats"}, {"stats", "--json"}, {"verify", name}, {"download", name, "-o", "-"},
			{"delete", name}, {"prune", "--dry-run"}, {"prune"}, {"restore", name, "--redis-url", src.URL(0)},
		} {
			if storage != "" {
				args = append([]string{"--storage", storage}, args...)
			}
			out, errOut, code := redback(t, dir, args...)
			if code != 2 || !strings.Contains(errOut, `storage folder "`+folder+`" does not exist`) || strings.Contains(out, "No backups") {
				t.Errorf("%v: exit %d (want 2), stdout %q, stderr %q", args, code, out, errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, folder)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%v created %s: %v", args, folder, err)
			}
		}
	}
	// A backup creates it; then the same commands work.
	if err := src.Client(t, 0).Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := redback(t, dir, "--storage", "typo", "--redis-url", src.URL(0), "backup"); code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	if out, errOut, code := redback(t, dir, "--storage", "typo", "list"); code != 0 || !strings.Contains(out, "redis_backup_") {
		t.Fatalf("list after a backup (%d): %s %s", code, out, errOut)
	}
	// On a fresh host the first command is a restore of a copied file: it
	// needs no storage folder (and makes the default one, as a backup would).
	archives, err := filepath.Glob(filepath.Join(dir, "typo", "redis_backup_*.json.gz"))
	if err != nil || len(archives) != 1 {
		t.Fatalf("archives: %v %v", archives, err)
	}
	fresh := t.TempDir()
	data, err := os.ReadFile(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, filepath.Base(archives[0])), data, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := redistest.Start(t)
	if out, errOut, code := redback(t, fresh, "--redis-url", dst.URL(0), "restore", "./"+filepath.Base(archives[0])); code != 0 {
		t.Fatalf("restore of a local file on a fresh host (%d): %s %s", code, out, errOut)
	}
	if v := dst.Client(t, 0).Get(context.Background(), "k").Val(); v != "v" {
		t.Fatalf("restored k = %q, want v", v)
	}
}

// A result of the default Redis server (REDIS_URL, --redis-url and
// redis.url unset) names it; one of a named server does not.
func TestDefaultRedisNamed(t *testing.T) {
	ctx := context.Background()
	open := func(url string) *agent.Service {
		cfg := config.Default()
		cfg.Storage = t.TempDir()
		if url != "" {
			cfg.Redis.URL = url
		}
		svc, err := agent.NewExisting(ctx, cfg, nil) // connects to nothing
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		return svc
	}
	svc := open("")
	var warnings []string
	failed := errors.New("redis INFO: connection refused")
	err := noteDefaultRedis(svc, &warnings, failed)
	if !errors.Is(err, failed) || !strings.Contains(err.Error(), "default Redis server, localhost:6379/0") ||
		len(warnings) != 1 || !strings.Contains(warnings[0], "localhost:6379/0") {
		t.Fatalf("default server: err %v, warnings %q", err, warnings)
	}
	warnings = nil
	if err := noteDefaultRedis(svc, &warnings, nil); err != nil || len(warnings) != 1 {
		t.Fatalf("default server, success: %v %q", err, warnings)
	}
	warnings = nil
	if err := noteDefaultRedis(open("redis://10.1.2.3:6380/2"), &warnings, failed); err != failed || warnings != nil {
		t.Fatalf("named server: %v %q", err, warnings)
	}
}
