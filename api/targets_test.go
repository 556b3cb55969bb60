package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// twoTargets is a harness whose API serves two targets: "a" (the
// harness's own Redis and storage, with 10 keys) and "b" (a second Redis
// with 25 keys and storage), with the scheduler status of m.
type twoTargets struct {
	*harness
	storageB string
	metrics  *metrics.Metrics
}

func newTwoTargets(t *testing.T, opts ...harnessOpt) *twoTargets {
	t.Helper()
	h := newHarness(t, opts...)
	h.fill(10)
	rb := redistest.Start(t)
	if err := datagen.Fill(context.Background(), rb.Client(t, 0), datagen.Spec{Keys: 25, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Redis.URL = rb.URL(0)
	cfg.Storage = t.TempDir()
	svcB, err := agent.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svcB.Close() })
	m := metrics.New(nil)
	o := h.api.opt
	o.Status = m
	h.api, err = NewTargets([]Target{{Name: "a", Service: h.svc}, {Name: "b", Service: svcB}}, h.jobs, o)
	if err != nil {
		t.Fatal(err)
	}
	return &twoTargets{harness: h, storageB: cfg.Storage, metrics: m}
}

func archivesIn(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "redis_backup_") {
			n++
		}
	}
	return n
}

func TestTargetParameter(t *testing.T) {
	h := newTwoTargets(t)
	tok := h.login(secretAdmin)

	res := h.do("POST", "/api/backup/create?target=b", `{}`, auth(tok))
	if res.code != http.StatusOK || res.json()["keys_count"] != float64(25) {
		t.Fatalf("create ?target=b: %d %s", res.code, res.body)
	}
	nameB, _ := res.json()["filename"].(string)
	if archivesIn(t, h.storageB) != 1 || archivesIn(t, h.storage) != 0 {
		t.Fatal("the backup of b did not land in b's storage alone")
	}
	// Without ?target=, the first target.
	if res := h.do("GET", "/api/backup/list", "", auth(tok)); res.code != 200 || !strings.Contains(string(res.body), `"backups": []`) {
		t.Fatalf("list of a: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/api/backup/list?target=b", "", auth(tok)); res.code != 200 || !strings.Contains(string(res.body), nameB) {
		t.Fatalf("list of b: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/api/backup/download/"+nameB+"?target=b", "", auth(readToken)); res.code != 200 {
		t.Fatalf("download from b: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/api/backup/download/"+nameB, "", auth(tok)); res.code != http.StatusNotFound {
		t.Fatalf("b's archive downloaded from a: %d", res.code)
	}
	if res := h.do("GET", "/api/stats?target=b", "", auth(tok)); res.code != 200 || res.json()["total_keys"] != float64(25) {
		t.Fatalf("stats of b: %d %s", res.code, res.body)
	}

	// Unknown targets: 404 in the API's error shape; twice or empty: 400.
	for _, path := range []string{"/api/backup/list?target=nope", "/api/backup/stats?target=A", "/api/stats?target=nope", "/readyz?target=nope"} {
		res := h.do("GET", path, "", auth(tok))
		if res.code != http.StatusNotFound || res.json()["success"] != false || !strings.Contains(res.json()["error"].(string), "no target named") {
			t.Errorf("%s: %d %s", path, res.code, res.body)
		}
	}
	for _, path := range []string{"/api/backup/list?target=a&target=b", "/api/backup/list?target="} {
		if res := h.do("GET", path, "", auth(tok)); res.code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, res.code, res.body)
		}
	}
	before := h.storageState()
	if res := h.do("POST", "/api/backup/create?target=nope", `{}`, auth(tok)); res.code != http.StatusNotFound {
		t.Fatalf("create on an unknown target: %d", res.code)
	}
	if h.storageState() != before || archivesIn(t, h.storageB) != 1 {
		t.Fatal("a request for an unknown target changed storage")
	}
	// Deleting needs the target too: b's archive is not a's.
	res = h.do("DELETE", "/api/backup/delete/"+nameB, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusNotFound || archivesIn(t, h.storageB) != 1 {
		t.Fatalf("delete of b's archive on a: %d %s", res.code, res.body)
	}
}

func TestOneJobPerTarget(t *testing.T) {
	h := newTwoTargets(t)
	tok := h.login(secretAdmin)
	release := make(chan struct{})
	id, err := h.jobs.StartIn("a", jobs.KindBackup, func(ctx context.Context, _ func(jobs.Progress)) (any, error) {
		<-release
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer close(release)
	// a is busy; b is not.
	res := h.do("POST", "/api/backup/create", `{}`, auth(tok))
	if res.code != http.StatusConflict || res.json()["job_id"] != id {
		t.Fatalf("create on busy a: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/create?target=b", `{"async": true}`, auth(tok))
	if res.code != http.StatusAccepted {
		t.Fatalf("create on b while a is busy: %d %s", res.code, res.body)
	}
	idB, _ := res.json()["job_id"].(string)
	if _, err := h.jobs.Wait(context.Background(), idB); err != nil {
		t.Fatal(err)
	}
	if res := h.do("GET", "/api/jobs/"+idB+"?target=b", "", auth(tok)); res.code != 200 || res.json()["target"] != "b" || res.json()["status"] != "succeeded" {
		t.Fatalf("job of b: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/api/jobs/"+idB+"?target=a", "", auth(tok)); res.code != http.StatusNotFound {
		t.Fatalf("b's job seen as a's: %d %s", res.code, res.body)
	}
}

func TestTargetsRouteAndReadiness(t *testing.T) {
	h := newTwoTargets(t, func(_ *config.Config, o *Options) { o.ReadyMaxAge = time.Hour })
	tok := h.login(secretAdmin)
	next := h.clock.Now().Add(time.Hour)
	h.metrics.NextRun("b", next)
	h.metrics.Started("b", h.clock.Now())
	h.metrics.Failed("b")

	// Readiness: no backup anywhere, then a only, then both.
	res := h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.json()["error"].(string), `target "a": no backup yet`) {
		t.Fatalf("readyz without backups: %d %s", res.code, res.body)
	}
	h.backup(tok)
	res = h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.json()["error"].(string), `target "b": no backup yet`) {
		t.Fatalf("readyz with b never backed up: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/readyz?target=a", "", nil); res.code != 200 {
		t.Fatalf("readyz of a alone: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/backup/create?target=b", `{}`, auth(tok)); res.code != 200 {
		t.Fatalf("create b: %d %s", res.code, res.body)
	}
	res = h.do("GET", "/readyz", "", nil)
	var rv readyView
	if res.code != 200 || json.Unmarshal(res.body, &rv) != nil || len(rv.Targets) != 2 || rv.Targets[1].Name != "b" || rv.Targets[1].LatestBackup == "" {
		t.Fatalf("readyz with both backed up: %d %s", res.code, res.body)
	}

	// GET /api/targets (a read token may).
	res = h.do("GET", "/api/targets", "", auth(readToken))
	var v struct{ Targets []targetView }
	if res.code != 200 || json.Unmarshal(res.body, &v) != nil || len(v.Targets) != 2 {
		t.Fatalf("targets: %d %s", res.code, res.body)
	}
	a, b := v.Targets[0], v.Targets[1]
	if a.Name != "a" || !a.Default || a.TotalBackups != 1 || a.LatestBackup == nil || a.NextRun != nil || a.LastRun != nil ||
		!strings.HasPrefix(a.Storage, "folder ") || a.Redis != fmt.Sprintf("127.0.0.1:%d/0", h.redis.Port) {
		t.Errorf("a: %+v", a)
	}
	if b.Name != "b" || b.Default || b.TotalBackups != 1 || b.NextRun == nil || *b.NextRun != next.UTC().Format(time.RFC3339) ||
		b.LastRun == nil || b.LastRun.Outcome != "failed" || !strings.Contains(b.Storage, filepath.Base(h.storageB)) {
		t.Errorf("b: %+v", b)
	}
	if strings.Contains(string(res.body), "password") {
		t.Errorf("targets shows a password: %s", res.body)
	}
	if res := h.do("GET", "/api/targets", "", nil); res.code != http.StatusUnauthorized {
		t.Errorf("targets without a token: %d", res.code)
	}
}
