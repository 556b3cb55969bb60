package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/scheduler/schedulertest"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// twoTargets starts two Redis servers holding 20 and 35 keys and writes an
// agent.yaml in a new folder with targets a and b on them, both under one
// storage folder (b with a nested storage_prefix); extra is appended to
// the file. It returns the folder, the storage folder and the servers.
func twoTargets(t *testing.T, extra string) (dir, store string, a, b *redistest.Server) {
	t.Helper()
	ctx := context.Background()
	a, b = redistest.Start(t), redistest.Start(t)
	if err := datagen.Fill(ctx, a.Client(t, 0), datagen.Spec{Keys: 20, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := datagen.Fill(ctx, b.Client(t, 0), datagen.Spec{Keys: 35, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	store = filepath.Join(dir, "store")
	cfg := fmt.Sprintf("storage: %q\ntargets:\n"+
		"  - name: a\n    redis: {url: %q}\n    storage_prefix: a\n"+
		"  - name: b\n    redis: {url: %q}\n    storage_prefix: nested/b\n", store, a.URL(0), b.URL(0))
	if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(cfg+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, store, a, b
}

// archives lists the archive names in a storage folder.
func archives(t *testing.T, folder string) []string {
	t.Helper()
	entries, err := os.ReadDir(folder)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "redis_backup_") {
			names = append(names, e.Name())
		}
	}
	return names
}

type listed struct {
	Backups []struct {
		Filename  string
		KeysCount *int64 `json:"keys_count"`
	}
}

func TestTargetsCLI(t *testing.T) {
	dir, store, _, _ := twoTargets(t, "")
	backup := func(target string, keys int64) string {
		t.Helper()
		out, errOut, code := redback(t, dir, "backup", "--target", target, "--json")
		var b struct {
			Filename, Filepath string
			KeysCount          int64 `json:"keys_count"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.KeysCount != keys {
			t.Fatalf("backup --target %s (exit %d): %s %s", target, code, out, errOut)
		}
		return b.Filename
	}
	fa := backup("a", 20)
	fb := backup("b", 35)
	if got := archives(t, filepath.Join(store, "a")); len(got) != 1 || got[0] != fa {
		t.Fatalf("store/a holds %v, want [%s]", got, fa)
	}
	if got := archives(t, filepath.Join(store, "nested", "b")); len(got) != 1 || got[0] != fb {
		t.Fatalf("store/nested/b holds %v, want [%s]", got, fb)
	}

	list := func(env []string, args ...string) listed {
		t.Helper()
		out, errOut, code := runBinary(t, dir, env, append([]string{"list", "--json"}, args...)...)
		var l listed
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("list %v (exit %d): %s %s", args, code, out, errOut)
		}
		return l
	}
	// list --target b shows b's archive only (the one with b's 35 keys).
	if l := list(nil, "--target", "b"); len(l.Backups) != 1 || l.Backups[0].Filename != fb || l.Backups[0].KeysCount == nil || *l.Backups[0].KeysCount != 35 {
		t.Fatalf("list --target b: %+v", l)
	}
	// No --target: the first target.
	if l := list(nil); len(l.Backups) != 1 || *l.Backups[0].KeysCount != 20 {
		t.Fatalf("list (default target): %+v", l)
	}
	// REDBACK_TARGET selects too.
	if l := list([]string{"REDBACK_TARGET=b"}); len(l.Backups) != 1 || *l.Backups[0].KeysCount != 35 {
		t.Fatalf("list with REDBACK_TARGET=b: %+v", l)
	}
	out, _, code := redback(t, dir, "stats", "--target", "b", "--json")
	if code != 0 || !strings.Contains(out, `"total_backups":1`) || !strings.Contains(out, filepath.Join("nested", "b")) {
		t.Fatalf("stats --target b (%d): %s", code, out)
	}
	if _, errOut, code := redback(t, dir, "verify", "--target", "b", fb); code != 0 {
		t.Fatalf("verify --target b: %s", errOut)
	}

	// prune works on the chosen target's storage, and its log names it.
	fb2 := backup("b", 35)
	_, errOut, code := redback(t, dir, "-v", "prune", "--target", "b", "--keep", "1") // -v: the log at info level
	pruned := ""
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, `msg="archive pruned"`) {
			pruned = line
		}
	}
	if code != 0 || !strings.Contains(pruned, "target=b") || !strings.Contains(pruned, fb) {
		t.Fatalf("prune --target b --keep 1 (exit %d): %s", code, errOut)
	}
	if got := archives(t, filepath.Join(store, "nested", "b")); len(got) != 1 || got[0] != fb2 {
		t.Fatalf("store/nested/b after prune: %v, want [%s]", got, fb2)
	}
	if got := archives(t, filepath.Join(store, "a")); len(got) != 1 || got[0] != fa {
		t.Fatalf("prune of b touched a: %v", got)
	}

	// An unknown target is invalid input that names the known ones.
	for _, args := range [][]string{{"list", "--target", "nope"}, {"backup", "--target", "nope"}, {"--target", "nope", "stats"}} {
		_, errOut, code := redback(t, dir, args...)
		if code != exitUsage || !strings.Contains(errOut, `--target "nope": no such target; known: a, b`) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}

	// delete works on the chosen target's storage only.
	if _, errOut, code := redback(t, dir, "delete", "--target", "a", fa); code != 0 {
		t.Fatalf("delete --target a: %s", errOut)
	}
	if got := archives(t, filepath.Join(store, "a")); len(got) != 0 {
		t.Fatalf("store/a after delete: %v", got)
	}
	if got := archives(t, filepath.Join(store, "nested", "b")); len(got) != 1 {
		t.Fatalf("deleting a's archive touched b's storage: %v", got)
	}
}

func TestTargetsCLIRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("storage: backups\n")
	if _, errOut, code := redback(t, dir, "list", "--target", "a"); code != exitUsage || !strings.Contains(errOut, "lists no targets") {
		t.Errorf("--target without targets: exit %d, %q", code, errOut)
	}
	write("targets:\n  - name: a\n    redis: {url: \"redis://127.0.0.1:1/0\"}\n  - name: a\n    redis: {url: \"redis://127.0.0.1:2/0\"}\n    storage_prefix: x\n")
	if _, errOut, code := redback(t, dir, "list"); code != exitUsage || !strings.Contains(errOut, `line 4: targets[1] (a): name "a" is taken`) {
		t.Errorf("duplicate names: exit %d, %q", code, errOut)
	}
	write("targets:\n  - name: a\n    redis: {url: \"redis://127.0.0.1:1/0\"}\n  - name: b\n    redis: {url: \"redis://127.0.0.1:2/0\"}\n")
	if _, errOut, code := redback(t, dir, "schedule", "--redis-url", "redis://127.0.0.1:3/0"); code != exitUsage || !strings.Contains(errOut, "add --target NAME") {
		t.Errorf("--redis-url with several targets: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runBinary(t, dir, []string{"REDIS_URL=redis://127.0.0.1:3/0"}, "list"); code != exitUsage || !strings.Contains(errOut, "REDIS_URL is set") {
		t.Errorf("REDIS_URL with targets: exit %d, %q", code, errOut)
	}
}

// syncWriter is a goroutine-safe buffer for the in-process agent's log.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeTargetsScheduled runs `redback serve` in this process with two
// targets and a fake scheduler clock: each target is backed up by its own
// scheduler, retention applies per target (a keeps 2, b the top level's
// 1), and the API, /api/targets and /metrics tell the targets apart.
func TestServeTargetsScheduled(t *testing.T) {
	const token = "serve-targets-read-token-0123456789"
	extra := "  - name: c\n    redis: {url: \"redis://127.0.0.1:1/0\"}\n    schedule: {enabled: false}\n" +
		"schedule: {enabled: true, interval_hours: 1, daily_at: \"\", timezone: UTC}\n" +
		"retention: {keep_last: 1}\n" +
		"api:\n  listen: 127.0.0.1:0\n  totp_secret: JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n" +
		"  read_tokens: [{name: monitor, sha256: " + sha256Hex(token) + "}]\n"
	dir, store, _, _ := twoTargets(t, extra)
	// a overrides one field of the top-level retention.
	cfgPath := filepath.Join(dir, "agent.yaml")
	data, _ := os.ReadFile(cfgPath)
	data = bytes.Replace(data, []byte("    storage_prefix: a\n"), []byte("    storage_prefix: a\n    retention: {keep_last: 2}\n"), 1)
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}

	clk := schedulertest.NewClock(time.Now().UTC().Add(1000 * time.Hour).Truncate(time.Hour))
	logs := &syncWriter{}
	g := &globals{stdout: io.Discard, stderr: logs, clock: clk}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- runWith(ctx, g, []string{"--config", cfgPath, "serve"}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, logs.String())
		}
	}()

	dirA, dirB := filepath.Join(store, "a"), filepath.Join(store, "nested", "b")
	// round waits until both schedulers are idle again (each waits on one
	// timer), then checks the archives of each target.
	round := func(n, wantA, wantB int) {
		t.Helper()
		if !clk.WaitTimers(2, 2*time.Minute) {
			t.Fatalf("round %d: the schedulers did not finish their backups:\n%s", n, logs.String())
		}
		if got := archives(t, dirA); len(got) != wantA {
			t.Fatalf("round %d: a has %v, want %d archives", n, got, wantA)
		}
		if got := archives(t, dirB); len(got) != wantB {
			t.Fatalf("round %d: b has %v, want %d archives", n, got, wantB)
		}
	}
	round(1, 1, 1) // no archive yet: both back up at once
	clk.Advance(time.Hour)
	round(2, 2, 1) // b keeps 1
	clk.Advance(time.Hour)
	round(3, 2, 1) // a keeps 2
	if got := archives(t, filepath.Join(store, "c")); len(got) != 0 {
		t.Fatalf("c, whose schedule is disabled, was backed up: %v", got)
	}

	m := regexp.MustCompile(`msg="api listening" addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no address in the log:\n%s", logs.String())
	}
	get := func(path string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+m[1]+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d: %s", path, res.StatusCode, want, body)
		}
		return body
	}
	var ts struct {
		Targets []struct {
			Name         string
			Default      bool
			Storage      string
			TotalBackups int                       `json:"total_backups"`
			NextRun      *string                   `json:"next_run"`
			LastRun      *struct{ Outcome string } `json:"last_run"`
		}
	}
	if err := json.Unmarshal(get("/api/targets", 200), &ts); err != nil || len(ts.Targets) != 3 {
		t.Fatalf("/api/targets: %v %+v", err, ts)
	}
	wantNext := clk.Now().Add(time.Hour).Format(time.RFC3339)
	for i, want := range []struct {
		name  string
		total int
	}{{"a", 2}, {"b", 1}} {
		got := ts.Targets[i]
		if got.Name != want.name || got.Default != (i == 0) || got.TotalBackups != want.total ||
			got.LastRun == nil || got.LastRun.Outcome != "succeeded" || got.NextRun == nil || *got.NextRun != wantNext {
			t.Errorf("/api/targets[%d] = %+v, want %s with %d backups, next run %s", i, got, want.name, want.total, wantNext)
		}
	}
	if c := ts.Targets[2]; c.Name != "c" || c.LastRun != nil || c.NextRun != nil {
		t.Errorf("/api/targets[2] = %+v", c)
	}
	var l listed
	if err := json.Unmarshal(get("/api/backup/list?target=b", 200), &l); err != nil || len(l.Backups) != 1 || *l.Backups[0].KeysCount != 35 {
		t.Fatalf("list ?target=b: %v %+v", err, l)
	}
	if body := get("/api/backup/list?target=nope", 404); !strings.Contains(string(body), `"success": false`) {
		t.Fatalf("unknown target: %s", body)
	}
	metrics := string(get("/metrics", 200))
	for _, want := range []string{`redback_backup_runs_total{target="a"} 3`, `redback_backup_runs_total{target="b"} 3`,
		`redback_retention_deleted_total{target="a"} 1`, `redback_retention_deleted_total{target="b"} 2`,
		`redback_backup_last_keys{target="a"} 20`, `redback_backup_last_keys{target="b"} 35`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(metrics, `redback_backup_runs_total{target="c"} 0`) {
		t.Error("/metrics lacks the zero runs of c, whose schedule is disabled (its series exist from the start)")
	}
	// Every log line of a target's work names it.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, `msg="backup complete"`) && !strings.Contains(line, "target=") {
			t.Errorf("a backup log line without its target: %s", line)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
