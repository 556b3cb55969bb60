package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/jobs"
)

// slowBackups makes a backup of n keys take about n/kps seconds.
func slowBackups(kps float64) harnessOpt {
	return func(c *config.Config, _ *Options) {
		c.Backup.KeysPerSecond = kps
		c.Backup.ScanCount = 20
	}
}

// TestSyncBackupOutlivesItsClient cancels a synchronous create mid-backup:
// the backup completes anyway and is listed.
func TestSyncBackupOutlivesItsClient(t *testing.T) {
	h := newHarness(t, slowBackups(400))
	h.fill(1200) // ~2 s at 400 keys/s after the first burst
	tok := h.login(secretAdmin)
	srv := httptest.NewServer(h.api.Handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/backup/create", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	var running jobs.Snapshot
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if running, ok = h.jobs.RunningIn("default"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup job never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the request finished before its client went away: make the backup slower")
	}
	if s, _ := h.jobs.Get(running.ID); s.Status != jobs.Running {
		t.Fatalf("the job is %s right after its client left", s.Status)
	}
	s, err := h.jobs.Wait(context.Background(), running.ID)
	if err != nil || s.Status != jobs.Succeeded {
		t.Fatalf("job: %+v %v", s, err)
	}
	res := h.do("GET", "/api/backup/list", "", auth(tok))
	backups := res.json()["backups"].([]any)
	if len(backups) != 1 || backups[0].(map[string]any)["keys_count"].(float64) != 1200 {
		t.Fatalf("the backup is not listed whole: %s", res.body)
	}
}

// TestOneBackupOrRestoreAtATime: while a backup runs, create and restore
// get 409 with the running job's id.
func TestOneBackupOrRestoreAtATime(t *testing.T) {
	h := newHarness(t, slowBackups(300))
	h.fill(900)
	h.writeFile("redis_backup_20240101_000000.json", []byte(`{"timestamp":"20240101_000000","created_at":"2024-01-01T00:00:00","data":{}}`))
	tok := h.login(secretAdmin)
	res := h.do("POST", "/api/backup/create", `{"async": true}`, auth(tok))
	if res.code != http.StatusAccepted || res.header.Get("Location") == "" {
		t.Fatalf("async create: %d %s", res.code, res.body)
	}
	id := res.json()["job_id"].(string)
	for _, c := range [][2]string{
		{"/api/backup/create", `{}`},
		{"/api/backup/create", `{"async": true}`},
		{"/api/backup/restore", `{"filename": "redis_backup_20240101_000000.json"}`},
		{"/api/backup/restore", `{"filename": "redis_backup_20240101_000000.json", "async": true}`},
	} {
		res := h.do("POST", c[0], c[1], auth(tok))
		if res.code != http.StatusConflict || res.json()["job_id"] != id || res.json()["success"] != false {
			t.Errorf("%s %s during a backup: %d %s", c[0], c[1], res.code, res.body)
		}
	}
	// Reads go on meanwhile.
	if res := h.do("GET", "/api/backup/list", "", auth(tok)); res.code != http.StatusOK {
		t.Fatalf("list during a backup: %d", res.code)
	}
	job := h.do("GET", "/api/jobs/"+id, "", auth(tok)).json()
	if job["status"] != "running" || job["result"] != nil || job["error"] != nil {
		t.Fatalf("running job: %v", job)
	}
	job = waitJob(t, h, tok, id)
	if job["status"] != "succeeded" {
		t.Fatalf("job: %v", job)
	}
	if p := job["progress"].(map[string]any); p["keys_done"].(float64) != 900 {
		t.Fatalf("progress: %v", p)
	}
	// Free again: the restore of the seed-format archive runs.
	res = h.do("POST", "/api/backup/restore", `{"filename": "redis_backup_20240101_000000.json", "async": true}`, auth(tok))
	if res.code != http.StatusAccepted {
		t.Fatalf("restore after the backup: %d %s", res.code, res.body)
	}
	job = waitJob(t, h, tok, res.json()["job_id"].(string))
	if job["status"] != "succeeded" || job["kind"] != "restore" {
		t.Fatalf("restore job: %v", job)
	}
}

// TestFailedJob: a restore of a corrupt archive fails with 400 (sync) and
// a failed job (async) whose error says why without a path.
func TestFailedJob(t *testing.T) {
	h := newHarness(t)
	h.writeFile("redis_backup_20240101_000000.json.gz", []byte("not gzip at all"))
	tok := h.login(secretAdmin)
	digest := h.redisState()
	res := h.do("POST", "/api/backup/restore", `{"filename": "redis_backup_20240101_000000.json.gz"}`, auth(tok))
	if res.code != http.StatusBadRequest || res.json()["success"] != false || res.json()["error"] == "" {
		t.Fatalf("restore of a corrupt archive: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/restore", `{"filename": "redis_backup_20240101_000000.json.gz", "async": true}`, auth(tok))
	job := waitJob(t, h, tok, res.json()["job_id"].(string))
	msg, _ := job["error"].(string)
	if job["status"] != "failed" || msg == "" || strings.Contains(msg, h.storage) {
		t.Fatalf("failed job: %v", job)
	}
	if h.redisState() != digest {
		t.Fatal("a failed restore changed Redis")
	}
}

func TestReadyz(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.ReadyMaxAge = time.Hour })
	res := h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.json()["error"].(string), "no backup yet") {
		t.Fatalf("readyz without backups: %d %s", res.code, res.body)
	}
	tok := h.login(secretAdmin)
	h.backup(tok)
	if res := h.do("GET", "/readyz", "", nil); res.code != http.StatusOK || res.json()["status"] != "ready" {
		t.Fatalf("readyz after a backup: %d %s", res.code, res.body)
	}
	h.clock.Advance(2 * time.Hour)
	res = h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.json()["error"].(string), "old") {
		t.Fatalf("readyz with an old backup: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/healthz", "", nil); res.code != http.StatusOK {
		t.Fatalf("healthz: %d", res.code)
	}
	h.redis.Stop()
	h.clock.Advance(-2 * time.Hour)
	res = h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.json()["error"].(string), "redis") {
		t.Fatalf("readyz with Redis down: %d %s", res.code, res.body)
	}
}
