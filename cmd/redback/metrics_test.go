package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// metricValue returns the value of the series named series (name and
// labels, as exposed) in an exposition, and whether it is there.
func metricValue(exposition, series string) (float64, bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestMetricsOfEveryRun: a backup taken by the command line before serve
// starts seeds the last-success gauges and the inventory (the documented
// alert works after a redeploy); one taken by another process while serve
// runs shows within a scrape; backups and restores through the API are
// counted with the scheduler off; api.metrics_listen serves /metrics and
// nothing of the admin API.
func TestMetricsOfEveryRun(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	ctx := context.Background()
	src := redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 25, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cfg := fmt.Sprintf("storage: %q\ntargets:\n  - name: metered\n    redis: {url: %q}\n"+
		"schedule: {enabled: false}\n"+
		"api:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n  totp_secret: %s\n", store, src.URL(0), secret)
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cliBackup := func() {
		t.Helper()
		if out, errOut, code := redback(t, dir, "--config", cfgPath, "-q", "backup", "--json"); code != 0 {
			t.Fatalf("backup: exit %d: %s %s", code, out, errOut)
		}
	}
	manifestEnd := func() float64 {
		t.Helper()
		var newest time.Time
		var ms []string
		_ = filepath.WalkDir(store, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, "/.redback/") && strings.HasSuffix(p, ".json") {
				ms = append(ms, p)
			}
			return nil
		})
		for _, p := range ms {
			var m struct {
				CompletedAt time.Time `json:"completed_at"`
			}
			b, err := os.ReadFile(p)
			if err != nil || json.Unmarshal(b, &m) != nil {
				t.Fatalf("manifest %s: %v", p, err)
			}
			if m.CompletedAt.After(newest) {
				newest = m.CompletedAt
			}
		}
		if newest.IsZero() {
			t.Fatalf("no manifest in %s: %v", store, ms)
		}
		return float64(newest.UnixNano()) / 1e9
	}
	cliBackup()
	firstEnd := manifestEnd()

	logs := &syncWriter{}
	g := &globals{stdout: io.Discard, stderr: logs}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- runWith(sctx, g, []string{"--config", cfgPath, "serve"}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, logs.String())
		}
	}()
	addr := func(msg string) string {
		t.Helper()
		re := regexp.MustCompile(`msg="` + msg + `" addr=(\S+)`)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				return m[1]
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no %q in the log:\n%s", msg, logs.String())
		return ""
	}
	apiAddr, metricsAddr := addr("api listening"), addr("metrics listening")
	do := func(method, url, token string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, url, rd)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, url, res.StatusCode, want, b)
		}
		return b
	}
	scrape := func() string { return string(do("GET", "http://"+metricsAddr+"/metrics", "", nil, 200)) }
	want := func(exp, series string, v float64) {
		t.Helper()
		got, ok := metricValue(exp, series)
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	near := func(exp, series string, v float64) {
		t.Helper()
		got, ok := metricValue(exp, series)
		if !ok || got < v-0.001 || got > v+0.001 {
			t.Errorf("%s = %v (present %v), want %.3f", series, got, ok, v)
		}
	}

	// Seeded from storage at start: the CLI's backup.
	exp := scrape()
	near(exp, `redback_backup_last_success_timestamp_seconds{target="metered"}`, firstEnd)
	want(exp, `redback_backup_last_keys{target="metered"}`, 25)
	want(exp, `redback_archives{target="metered"}`, 1)
	want(exp, `redback_newest_archive_keys{target="metered"}`, 25)
	want(exp, `redback_storage_up{target="metered"}`, 1)
	want(exp, `redback_backup_runs_total{target="metered"}`, 0)
	if !strings.Contains(exp, "redback_build_info{") {
		t.Error("no redback_build_info")
	}

	// Another process backs up while serve runs: seen at the next scrape
	// (listings are reused for at most 5 s).
	if err := src.Client(t, 0).Set(ctx, "one-more", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // archive names have a second's resolution
	cliBackup()
	secondEnd := manifestEnd()
	if secondEnd <= firstEnd {
		t.Fatalf("second backup ended at %v, not after %v", secondEnd, firstEnd)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		exp = scrape()
		if v, _ := metricValue(exp, `redback_archives{target="metered"}`); v == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	want(exp, `redback_archives{target="metered"}`, 2)
	near(exp, `redback_backup_last_success_timestamp_seconds{target="metered"}`, secondEnd)
	want(exp, `redback_newest_archive_keys{target="metered"}`, 26)

	// Through the API, with the scheduler off: counted, and the inventory
	// follows at once (the operation invalidates the listing).
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	if err := json.Unmarshal(do("POST", "http://"+apiAddr+"/api/auth/login", "", map[string]string{"code": code}, 200), &login); err != nil || login.Token == "" {
		t.Fatalf("login: %v %+v", err, login)
	}
	var made struct{ Filename string }
	if err := json.Unmarshal(do("POST", "http://"+apiAddr+"/api/backup/create", login.Token, map[string]any{}, 200), &made); err != nil || made.Filename == "" {
		t.Fatalf("backup: %v %+v", err, made)
	}
	do("POST", "http://"+apiAddr+"/api/backup/restore", login.Token, map[string]any{"filename": made.Filename, "dry_run": true}, 200)
	exp = scrape()
	want(exp, `redback_backup_runs_total{target="metered"}`, 1)
	want(exp, `redback_backup_failures_total{target="metered"}`, 0)
	want(exp, `redback_operations_total{operation="backup",outcome="success",target="metered"}`, 1)
	want(exp, `redback_operations_total{operation="restore_dry_run",outcome="success",target="metered"}`, 1)
	want(exp, `redback_operation_duration_seconds_count{operation="backup",target="metered"}`, 1)
	want(exp, `redback_archives{target="metered"}`, 3)
	want(exp, `redback_backup_last_keys{target="metered"}`, 26)

	// The metrics listener serves /metrics only, without a token.
	do("GET", "http://"+metricsAddr+"/api/backup/list", "", nil, 404)
	do("GET", "http://"+metricsAddr+"/healthz", "", nil, 404)
}
