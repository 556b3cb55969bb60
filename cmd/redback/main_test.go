package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redback-cli-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "redback")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// redback runs the binary in dir, with none of redback's variables from the
// environment, and returns stdout, stderr and the exit code.
func redback(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runBinary(t, dir, nil, args...)
}

// runBinary is redback with extra environment variables.
func runBinary(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "REDIS_URL=", "REDBACK_STORAGE=", "REDBACK_IDENTITY_FILE=", "REDBACK_PASSPHRASE_FILE=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// jsonTypes maps each field of a JSON object to its JSON type.
func jsonTypes(t *testing.T, s string) map[string]string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, s)
	}
	out := map[string]string{}
	for k, v := range m {
		switch v.(type) {
		case string:
			out[k] = "string"
		case float64:
			out[k] = "number"
		case bool:
			out[k] = "bool"
		case nil:
			out[k] = "null"
		case []any:
			out[k] = "array"
		default:
			out[k] = "object"
		}
	}
	return out
}

// wantFields checks the seed's fields and their JSON types.
func wantFields(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, typ := range want {
		if got[k] != typ {
			t.Errorf("%s: field %q is %q, want %q (the seed's shape)", what, k, got[k], typ)
		}
	}
}

func TestBackupListStatsRestoreJSON(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 500, TTLPercent: 20, Binary: true, Seed: 21}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	start := time.Now()
	out, errOut, code := redback(t, dir, "--redis-url", src.URL(0), "backup", "--json")
	if code != 0 {
		t.Fatalf("backup exit %d: %s", code, errOut)
	}
	wantFields(t, "create", jsonTypes(t, out), map[string]string{"success": "bool", "filename": "string", "filepath": "string",
		"size": "number", "size_mb": "number", "timestamp": "string", "keys_count": "number", "compressed": "bool"})
	var b struct {
		Filename, Filepath string
		KeysCount          int64 `json:"keys_count"`
	}
	json.Unmarshal([]byte(out), &b)
	if b.KeysCount != 500 || !strings.HasPrefix(b.Filepath, "backups/") {
		t.Fatalf("backup %+v", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "backups", b.Filename)); err != nil {
		t.Fatalf("archive not in ./backups: %v", err)
	}

	out, _, code = redback(t, dir, "--redis-url", src.URL(0), "list", "--json")
	var l struct{ Backups []json.RawMessage }
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 1 {
		t.Fatalf("list (%d): %s", code, out)
	}
	wantFields(t, "list item", jsonTypes(t, string(l.Backups[0])), map[string]string{"filename": "string", "filepath": "string",
		"size": "number", "size_mb": "number", "created_at": "string", "timestamp": "string", "compressed": "bool"})
	out, _, code = redback(t, dir, "list")
	if code != 0 || !strings.Contains(out, b.Filename) {
		t.Fatalf("list text (%d): %s", code, out)
	}

	out, _, code = redback(t, dir, "stats", "--json")
	if code != 0 {
		t.Fatalf("stats exit %d", code)
	}
	wantFields(t, "stats", jsonTypes(t, out), map[string]string{"total_backups": "number", "total_size": "number",
		"total_size_mb": "number", "latest_backup": "object", "oldest_backup": "object"})

	out, errOut, code = redback(t, dir, "--redis-url", dst.URL(0), "restore", b.Filename, "--json")
	if code != 0 {
		t.Fatalf("restore exit %d: %s %s", code, out, errOut)
	}
	wantFields(t, "restore", jsonTypes(t, out), map[string]string{"success": "bool", "filename": "string", "restored_count": "number",
		"skipped_count": "number", "error_count": "number", "total_keys": "number"})
	diffs, err := redistest.Compare(ctx, src.Client(t, 0), dst.Client(t, 0), time.Since(start)+time.Second)
	if err != nil || len(diffs) > 0 {
		t.Fatalf("restored data differs: %v %v", err, diffs)
	}

	out, _, code = redback(t, dir, "verify", b.Filename, "--json")
	if code != 0 || !strings.Contains(out, `"success":true`) {
		t.Fatalf("verify (%d): %s", code, out)
	}
	dl := filepath.Join(t.TempDir(), "copy.json.gz")
	if _, e, code := redback(t, dir, "download", b.Filename, "-o", dl); code != 0 {
		t.Fatalf("download: %s", e)
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "backups", b.Filename))
	copied, _ := os.ReadFile(dl)
	if !bytes.Equal(orig, copied) {
		t.Fatal("download differs from the archive")
	}
	out, _, code = redback(t, dir, "delete", b.Filename, "--json")
	wantFields(t, "delete", jsonTypes(t, out), map[string]string{"success": "bool", "filename": "string"})
	if code != 0 {
		t.Fatalf("delete exit %d", code)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	src := redistest.Start(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o700); err != nil { // else every command says it is missing
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"restore", "redis_backup_20231205_143022.json.gz", "--redis-url", src.URL(0)}, 2, "not found"},
		{[]string{"restore", "../../etc/passwd", "--redis-url", src.URL(0)}, 2, "invalid"},
		{[]string{"delete", "x.json"}, 2, "invalid"},
		{[]string{"backup", "--bogus"}, 2, "unknown flag"},
		{[]string{"restore"}, 2, "accepts 1 arg"},
		{[]string{"nosuchcommand"}, 2, "unknown command"},
		{[]string{"backup", "--redis-url", "redis://127.0.0.1:1/0"}, 1, "connect"},
		{[]string{"--config", "/nonexistent.yaml", "list"}, 2, "config"},
		{[]string{"restore", "--at", "yesterday", "--redis-url", src.URL(0)}, 2, "rfc 3339"},
		{[]string{"restore", "latest", "--at", "-5m", "--redis-url", src.URL(0)}, 2, "give no archive name"},
		{[]string{"restore", "--at", "-5m", "--db", "0:1", "--redis-url", src.URL(0)}, 2, "--db does not apply"},
		{[]string{"restore", "--at", "-5m", "--redis-url", src.URL(0)}, 2, "nothing is restorable to a point in time yet"},
	}
	for _, c := range cases {
		_, errOut, code := redback(t, dir, c.args...)
		if code != c.code || !strings.Contains(strings.ToLower(errOut), c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, errOut, c.want)
		}
	}
}

func TestPasswordNeverPrinted(t *testing.T) {
	s := redistest.Start(t, "--requirepass", "right-secret-1")
	dir := t.TempDir()
	url := fmt.Sprintf("redis://:wrong-secret-2@127.0.0.1:%d/0", s.Port)
	out, errOut, code := redback(t, dir, "backup", "--redis-url", url, "--json")
	if code == 0 {
		t.Fatal("backup with a wrong password succeeded")
	}
	if strings.Contains(out+errOut, "wrong-secret-2") || strings.Contains(out+errOut, "right-secret-1") {
		t.Fatalf("a password was printed:\n%s\n%s", out, errOut)
	}
	// A URL that does not parse is not echoed either.
	_, errOut, _ = redback(t, dir, "backup", "--redis-url", "redis://:pa%zz-secret-3@host/0")
	if strings.Contains(errOut, "secret-3") {
		t.Fatalf("a password was printed: %s", errOut)
	}
}

// kill -9 in the middle of a backup leaves no listed archive, and the next
// backup works.
func TestKilledBackupLeavesNoArchive(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 150000, BigString: 32 << 20, Seed: 22}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "backups")
	cmd := startWritingBackup(t, src, dir, store, nil)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the backup finished before the kill (%v); make the dataset bigger", err)
	}
	out, _, code := redback(t, dir, "--storage", store, "list", "--json")
	if code != 0 || !strings.Contains(out, `"backups":[]`) {
		t.Fatalf("after kill -9 the list is (%d): %s", code, out)
	}
	out, errOut, code := redback(t, dir, "--redis-url", src.URL(0), "--storage", store, "backup", "--json")
	if code != 0 {
		t.Fatalf("backup after a kill: %s %s", out, errOut)
	}
	out, _, _ = redback(t, dir, "--storage", store, "list", "--json")
	var l struct{ Backups []struct{ Filename string } }
	if json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 1 {
		t.Fatalf("list: %s", out)
	}
	if _, _, code := redback(t, dir, "--storage", store, "verify", l.Backups[0].Filename); code != 0 {
		t.Fatal("the backup after the kill does not verify")
	}
}

// startWritingBackup starts `redback backup` of src into store (stderr to
// stderr when set) and returns once the archive is being written.
func startWritingBackup(t *testing.T, src *redistest.Server, dir, store string, stderr io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "--redis-url", src.URL(0), "--storage", store, "backup")
	cmd.Dir = dir
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(store)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !e.IsDir() && info.Size() > 0 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the backup never started writing")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
