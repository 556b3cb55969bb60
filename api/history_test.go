package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

// TestJobsHistory: backups, verifies, deletes and restores asked of the
// API are listed by GET /api/jobs, the last first, with who asked, the
// archive, the outcome and the duration; ?kind=, ?limit= and ?target=
// narrow the list.
func TestJobsHistory(t *testing.T) {
	h := newHarness(t)
	h.fill(300)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	second := h.backup(tok)
	res := h.do("POST", "/api/backup/verify/"+name, "", auth(tok))
	if res.code != http.StatusOK || res.json()["success"] != true || res.json()["keys_count"].(float64) != 300 {
		t.Fatalf("verify: %d %s", res.code, res.body)
	}
	list := h.do("GET", "/api/backup/list", "", auth(tok)).json()["backups"].([]any)
	if b := list[0].(map[string]any); b["filename"] != name || b["verified"] != true {
		t.Fatalf("after verify, list: %v", list)
	}
	if _, ok := list[0].(map[string]any)["duration_seconds"].(float64); !ok {
		t.Fatalf("list gives no backup duration: %v", list[0])
	}
	h.clock.Advance(30 * time.Second)
	res = h.do("DELETE", "/api/backup/delete/"+second, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0)))
	if res.code != http.StatusOK || res.json()["filename"] != second {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	// A delete of a missing archive fails, and is listed as failed.
	h.clock.Advance(30 * time.Second)
	res = h.do("DELETE", "/api/backup/delete/"+second, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0)))
	if res.code != http.StatusNotFound || res.json()["success"] != false {
		t.Fatalf("second delete: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","dry_run":true}`, auth(tok))
	if res.code != http.StatusOK || res.json()["dry_run"] != true {
		t.Fatalf("dry run: %d %s", res.code, res.body)
	}

	res = h.do("GET", "/api/jobs", "", map[string]string{"Authorization": "Bearer " + readToken})
	if res.code != http.StatusOK {
		t.Fatalf("jobs: %d %s", res.code, res.body)
	}
	jobs := res.json()["jobs"].([]any)
	want := []struct{ kind, file, status string }{
		{"restore", name, "succeeded"}, {"delete", second, "failed"}, {"delete", second, "succeeded"},
		{"verify", name, "succeeded"}, {"backup", second, "succeeded"}, {"backup", name, "succeeded"},
	}
	if len(jobs) != len(want) {
		t.Fatalf("%d jobs listed, want %d: %s", len(jobs), len(want), res.body)
	}
	for i, w := range want {
		j := jobs[i].(map[string]any)
		if j["kind"] != w.kind || j["filename"] != w.file || j["status"] != w.status || j["by"] != "admin" || j["target"] != "default" {
			t.Errorf("job %d: %v, want %+v", i, j, w)
		}
		if d, ok := j["duration_seconds"].(float64); !ok || d < 0 || j["finished_at"] == "" {
			t.Errorf("job %d has no duration or end: %v", i, j)
		}
	}
	if e, _ := jobs[1].(map[string]any)["error"].(string); !strings.Contains(e, "not found") {
		t.Errorf("the failed delete says %q", e)
	}
	if b := jobs[5].(map[string]any); b["keys_per_second"].(float64) <= 0 || b["progress"].(map[string]any)["keys_done"].(float64) != 300 {
		t.Errorf("backup job: %v", b)
	}

	res = h.do("GET", "/api/jobs?kind=delete&kind=verify&limit=2", "", auth(tok))
	jobs = res.json()["jobs"].([]any)
	if len(jobs) != 2 || jobs[0].(map[string]any)["kind"] != "delete" || jobs[1].(map[string]any)["kind"] != "delete" {
		t.Fatalf("kinds delete and verify, limit 2: %s", res.body)
	}
	if res := h.do("GET", "/api/jobs?target=default&kind=backup", "", auth(tok)); len(res.json()["jobs"].([]any)) != 2 {
		t.Fatalf("target default, kind backup: %s", res.body)
	}
	for q, code := range map[string]int{"?target=nope": 404, "?limit=0": 400, "?limit=x": 400, "?target=": 400} {
		if res := h.do("GET", "/api/jobs"+q, "", auth(tok)); res.code != code {
			t.Errorf("jobs%s: %d, want %d", q, res.code, code)
		}
	}
	if res := h.do("GET", "/api/jobs", "", nil); res.code != http.StatusUnauthorized {
		t.Fatalf("jobs without a token: %d", res.code)
	}
}

// TestJobProgressWhileRunning: a running backup's job tells keys done of
// the total, the rate and the time left.
func TestJobProgressWhileRunning(t *testing.T) {
	h := newHarness(t, slowBackups(400))
	h.fill(1200)
	tok := h.login(secretAdmin)
	res := h.do("POST", "/api/backup/create", `{"async": true}`, auth(tok))
	id := res.json()["job_id"].(string)
	deadline := time.Now().Add(20 * time.Second)
	var seen map[string]any
	for time.Now().Before(deadline) {
		j := h.do("GET", "/api/jobs/"+id, "", auth(tok)).json()
		if j["status"] != "running" {
			break
		}
		if p := j["progress"].(map[string]any); p["keys_done"].(float64) > 0 && p["keys_done"].(float64) < 1200 {
			seen = j
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if seen == nil {
		t.Fatal("no progress was seen while the backup ran: make it slower")
	}
	p := seen["progress"].(map[string]any)
	eta, ok := seen["eta_seconds"].(float64)
	if p["keys_total"].(float64) != 1200 || seen["keys_per_second"].(float64) <= 0 || !ok || eta <= 0 || seen["by"] != "admin" {
		t.Fatalf("running job: %v", seen)
	}
	listed := h.do("GET", "/api/jobs", "", auth(tok)).json()["jobs"].([]any)[0].(map[string]any)
	if listed["job_id"] != id {
		t.Fatalf("the running job is not first: %v", listed)
	}
	if j := waitJob(t, h, tok, id); j["status"] != "succeeded" || j["eta_seconds"] != nil {
		t.Fatalf("finished job: %v", j)
	}
}

// TestVerifyRoute: verify needs an admin, a valid name, an existing
// archive; a corrupt archive fails with 400 and is not marked verified.
func TestVerifyRoute(t *testing.T) {
	h := newHarness(t)
	h.writeFile("redis_backup_20240101_000000.json.gz", []byte("not gzip at all"))
	tok := h.login(secretAdmin)
	ro := map[string]string{"Authorization": "Bearer " + readToken}
	for _, c := range []struct {
		path string
		hdr  map[string]string
		code int
	}{
		{"/api/backup/verify/redis_backup_20240101_000000.json.gz", ro, 403},
		{"/api/backup/verify/redis_backup_20240101_000000.json.gz", nil, 401},
		{"/api/backup/verify/..%2fagent.yaml", auth(tok), 400},
		{"/api/backup/verify/redis_backup_20250101_000000.json.gz", auth(tok), 404},
		{"/api/backup/verify/redis_backup_20240101_000000.json.gz", auth(tok), 400},
	} {
		if res := h.do("POST", c.path, "", c.hdr); res.code != c.code || res.json()["success"] != false {
			t.Errorf("%s: %d %s, want %d", c.path, res.code, res.body, c.code)
		}
	}
	if res := h.do("POST", "/api/backup/verify/redis_backup_20240101_000000.json.gz", `{"bogus":1}`, auth(tok)); res.code != 400 {
		t.Errorf("unknown field: %d", res.code)
	}
	res := h.do("POST", "/api/backup/verify/redis_backup_20240101_000000.json.gz", `{"async":true}`, auth(tok))
	if res.code != http.StatusAccepted {
		t.Fatalf("async verify: %d %s", res.code, res.body)
	}
	if j := waitJob(t, h, tok, res.json()["job_id"].(string)); j["status"] != "failed" || j["kind"] != "verify" {
		t.Fatalf("verify job of a corrupt archive: %v", j)
	}
	list := h.do("GET", "/api/backup/list", "", auth(tok)).json()["backups"].([]any)
	if list[0].(map[string]any)["verified"] != false {
		t.Fatalf("a corrupt archive is marked verified: %v", list)
	}
}

// TestTargetsHealth: /api/targets says what needs action: no backup yet,
// a newest backup older than ready_max_age, Redis down.
func TestTargetsHealth(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.ReadyMaxAge = time.Hour })
	tok := h.login(secretAdmin)
	health := func() (string, []any) {
		t.Helper()
		res := h.do("GET", "/api/targets", "", auth(tok))
		tg := res.json()["targets"].([]any)[0].(map[string]any)
		return tg["health"].(string), tg["warnings"].([]any)
	}
	if st, w := health(); st != "warning" || len(w) != 1 || !strings.Contains(w[0].(string), "no backup yet") {
		t.Fatalf("before a backup: %s %v", st, w)
	}
	h.backup(tok)
	if st, w := health(); st != "ok" || len(w) != 0 {
		t.Fatalf("after a backup: %s %v", st, w)
	}
	h.clock.Advance(2 * time.Hour)
	tok = h.login(secretAdmin) // the first token has expired
	if st, w := health(); st != "warning" || len(w) != 1 || !strings.Contains(w[0].(string), "ready_max_age 1h0m0s") {
		t.Fatalf("with an old backup: %s %v", st, w)
	}
	h.redis.Stop()
	if st, w := health(); st != "error" || len(w) != 2 || !strings.Contains(w[0].(string), "Redis does not answer") {
		t.Fatalf("with Redis down: %s %v", st, w)
	}
}

// TestRestoreDBMap: db_map sends a database of the archive to another;
// malformed maps are refused before anything is written.
func TestRestoreDBMap(t *testing.T) {
	h := newHarness(t)
	h.fill(50)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	digest := h.redisState()
	for _, bad := range []string{`{"x": 1}`, `{"-1": 2}`, `{"0": -3}`, `{"01": 2}`, `[1]`} {
		res := h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","db_map":`+bad+`}`, auth(tok))
		if res.code != http.StatusBadRequest {
			t.Errorf("db_map %s: %d %s", bad, res.code, res.body)
		}
	}
	if h.redisState() != digest {
		t.Fatal("a refused restore changed Redis")
	}
	res := h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","db_map":{"0": 3}}`, auth(tok))
	if res.code != http.StatusOK || res.json()["restored_count"].(float64) != 50 {
		t.Fatalf("restore into db 3: %d %s", res.code, res.body)
	}
	if n := h.redis.Client(t, 3).DBSize(context.Background()).Val(); n != 50 {
		t.Fatalf("database 3 holds %d keys", n)
	}
}
