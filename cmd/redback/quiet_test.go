package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"

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
	if code != 0 || !strings.Contains(out, `"backups":[]`) {
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
		{args: []string{"-q", "backup", "--json"}, out: `"success":true`, noLog: "backup complete"},
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

// TestProgressBarEndsAt100: on a terminal, the progress bar of a backup
// and of a restore ends drawn at 100% on a line of its own, and log
// records (-v) never land inside the bar's line: each starts a line.
func TestProgressBarEndsAt100(t *testing.T) {
	src := redistest.Start(t)
	if err := datagen.Fill(context.Background(), src.Client(t, 0), datagen.Spec{Keys: 3000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	onTerminal := func(args ...string) string {
		t.Helper()
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		cmd := exec.Command(binary, append([]string{"--redis-url", src.URL(0), "--storage", store, "-v"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "REDIS_URL=", "REDBACK_STORAGE=", "TERM=xterm")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, tty, nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		var term bytes.Buffer
		copied := make(chan struct{})
		go func() { _, _ = io.Copy(&term, ptmx); close(copied) }() // ends with EIO when the child exits
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, term.String())
		}
		<-copied
		return term.String()
	}
	for _, args := range [][]string{{"backup"}, {"restore", "latest", "--dry-run"}} {
		got := onTerminal(args...)
		i := strings.LastIndex(got, "100%")
		if i < 0 {
			t.Fatalf("%v: the bar never reached 100%%:\n%q", args, got)
		}
		// After the bar's last drawing: the end of its line, then nothing
		// but whole log lines.
		rest := got[i:]
		nl := strings.IndexByte(rest, '\n')
		if nl < 0 || strings.Contains(rest[:nl], "msg=") {
			t.Fatalf("%v: the bar's line at 100%% is not ended before the next output:\n%q", args, rest)
		}
		// Every log record starts a line (or follows the bar's cleared line).
		for _, rec := range regexp.MustCompile(`time=\S+ level=`).FindAllStringIndex(got, -1) {
			start := rec[0]
			ok := start == 0 || got[start-1] == '\n' || strings.HasSuffix(got[:start], clearSeq)
			if !ok {
				t.Fatalf("%v: a log record lands inside the bar's line:\n%q", args, got[max(0, start-120):min(len(got), start+60)])
			}
		}
		if !strings.Contains(got, `msg="`+map[string]string{"backup": "backup complete", "restore": "restore complete"}[args[0]]+`"`) {
			t.Fatalf("%v: no completion record at -v:\n%q", args, got)
		}
	}
}
