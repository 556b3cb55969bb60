package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// Ctrl-C in the middle of a backup exits 130, as a shell reports SIGINT,
// says so once, and leaves no listed archive.
func TestInterruptedBackupExits130(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 150000, BigString: 32 << 20, Seed: 23}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "backups")
	var stderr strings.Builder
	cmd := startWritingBackup(t, src, dir, store, &stderr)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the backup finished before the interrupt (%v); make the dataset bigger", err)
	}
	if ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit status %d after SIGINT, want %d; stderr:\n%s", ee.ExitCode(), exitInterrupted, stderr.String())
	}
	if n := strings.Count(stderr.String(), "redback: interrupted"); n != 1 {
		t.Fatalf("stderr says interrupted %d times:\n%s", n, stderr.String())
	}
	out, _, code := redback(t, dir, "--storage", store, "list", "--json")
	if code != 0 || !strings.Contains(out, `"backups": []`) {
		t.Fatalf("after Ctrl-C the list is (%d): %s", code, out)
	}
}

// A backup of a server that refuses connections prints one error line:
// go-redis's own log lines (its pool's dial retries) go through slog at
// debug level, not to stderr in their own format.
func TestUnreachableServerOneErrorLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := redback(t, dir, "--redis-url", "redis://127.0.0.1:1/0", "backup")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "redback: ") || !strings.Contains(lines[0], "connection refused") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// A backup prints its summary and no log line; -v adds the log, -q prints
// nothing (but --json output); REDBACK_LOG_LEVEL=error silences even -v.
func TestOneSummaryQuietVerbose(t *testing.T) {
	src := redistest.Start(t)
	if err := src.Client(t, 0).Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		env        []string
		args       []string
		out, noOut string
		log, noLog string
	}{
		{args: []string{"backup"}, out: "Backup created:", noLog: "backup complete"},
		{args: []string{"-v", "backup"}, out: "Backup created:", log: `msg="backup complete"`},
		{args: []string{"-q", "backup"}, noOut: "Backup created:", noLog: "backup complete"},
		{args: []string{"-q", "backup", "--json"}, out: `"success": true`, noLog: "backup complete"},
		{env: []string{"REDBACK_LOG_LEVEL=error"}, args: []string{"-v", "backup"}, out: "Backup created:", noLog: "backup complete"},
	} {
		out, errOut, code := runBinary(t, dir, tc.env, append([]string{"--redis-url", src.URL(0)}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errOut)
		}
		if tc.out != "" && !strings.Contains(out, tc.out) || tc.noOut != "" && out != "" {
			t.Errorf("%v %v: stdout %q", tc.env, tc.args, out)
		}
		if tc.log != "" && !strings.Contains(errOut, tc.log) || tc.noLog != "" && errOut != "" {
			t.Errorf("%v %v: stderr %q", tc.env, tc.args, errOut)
		}
	}
}
