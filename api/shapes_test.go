package api

import (
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedExample reads one of the seed document's response examples.
func seedExample(t *testing.T, name string) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// sameShape checks that got has every field of want, with the same JSON
// type, recursively (arrays by their first element); a number that is an
// integer in the seed must be one in got.
func sameShape(t *testing.T, where string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: want an object, got %T (%v)", where, got, got)
			return
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s: missing", where, k)
				continue
			}
			sameShape(t, where+"."+k, wv, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: want an array, got %T", where, got)
			return
		}
		if len(w) > 0 {
			if len(g) == 0 {
				t.Errorf("%s: empty array, cannot compare its elements", where)
				return
			}
			sameShape(t, where+"[0]", w[0], g[0])
		}
	case float64:
		g, ok := got.(float64)
		if !ok {
			t.Errorf("%s: want a number, got %T", where, got)
			return
		}
		if w == math.Trunc(w) && g != math.Trunc(g) {
			t.Errorf("%s: want an integer, got %v", where, g)
		}
	case string:
		if _, ok := got.(string); !ok {
			t.Errorf("%s: want a string, got %T", where, got)
		}
	case bool:
		if _, ok := got.(bool); !ok {
			t.Errorf("%s: want a boolean, got %T", where, got)
		}
	case nil:
		// null in the seed: anything goes
	}
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// TestSeedShapes drives every route once and compares each answer with the
// seed document's example.
func TestSeedShapes(t *testing.T) {
	h := newHarness(t)
	h.fill(300)
	tok := h.login(secretAdmin)

	// create
	res := h.do("POST", "/api/backup/create", `{"compress": true}`, auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("create: %d %s", res.code, res.body)
	}
	sameShape(t, "create", seedExample(t, "create.json"), decodeAny(t, res.body))
	created := res.json()
	name := created["filename"].(string)
	if created["success"] != true || created["compressed"] != true || created["keys_count"].(float64) != 300 ||
		!strings.HasSuffix(name, ".json.gz") || created["filepath"] != filepath.Join(h.storage, name) {
		t.Fatalf("create: %s", res.body)
	}
	// An uncompressed one too (the seed's "compress": false).
	h.clock.Advance(time.Second)
	res = h.do("POST", "/api/backup/create", `{"compress": false}`, auth(tok))
	if res.code != http.StatusOK || res.json()["compressed"] != false || !strings.HasSuffix(res.json()["filename"].(string), ".json") {
		t.Fatalf("create uncompressed: %d %s", res.code, res.body)
	}

	// list
	res = h.do("GET", "/api/backup/list", "", auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	sameShape(t, "list", seedExample(t, "list.json"), decodeAny(t, res.body))
	if n := len(res.json()["backups"].([]any)); n != 2 {
		t.Fatalf("list: %d archives: %s", n, res.body)
	}

	// stats
	res = h.do("GET", "/api/backup/stats", "", auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("stats: %d %s", res.code, res.body)
	}
	sameShape(t, "stats", seedExample(t, "stats.json"), decodeAny(t, res.body))

	// download
	res = h.do("GET", "/api/backup/download/"+name, "", auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("download: %d %s", res.code, res.body)
	}
	onDisk, _ := os.ReadFile(filepath.Join(h.storage, name))
	if string(res.body) != string(onDisk) || res.header.Get("Content-Length") != strconv.Itoa(len(onDisk)) ||
		res.header.Get("Content-Disposition") != `attachment; filename="`+name+`"` || res.header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("download: headers %v, %d bytes of %d", res.header, len(res.body), len(onDisk))
	}

	// restore (into the same server: every key exists, so all are skipped)
	res = h.do("POST", "/api/backup/restore", `{"filename": "`+name+`", "overwrite": false}`, auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("restore: %d %s", res.code, res.body)
	}
	sameShape(t, "restore", seedExample(t, "restore.json"), decodeAny(t, res.body))
	if r := res.json(); r["skipped_count"].(float64) != 300 || r["total_keys"].(float64) != 300 {
		t.Fatalf("restore: %s", res.body)
	}

	// redis stats
	res = h.do("GET", "/api/stats", "", auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("/api/stats: %d %s", res.code, res.body)
	}
	sameShape(t, "redis stats", map[string]any{"redis_version": "", "role": "", "mode": "", "used_memory": 1.0,
		"used_memory_mb": 0.5, "total_keys": 1.0, "keys_per_db": map[string]any{"0": 1.0}}, decodeAny(t, res.body))
	if res.json()["total_keys"].(float64) != 300 || res.json()["role"] != "master" {
		t.Fatalf("/api/stats: %s", res.body)
	}

	// async create and the job
	h.clock.Advance(time.Second)
	res = h.do("POST", "/api/backup/create", `{"async": true}`, auth(tok))
	if res.code != http.StatusAccepted {
		t.Fatalf("async create: %d %s", res.code, res.body)
	}
	sameShape(t, "async", map[string]any{"job_id": "", "status": ""}, decodeAny(t, res.body))
	id := res.json()["job_id"].(string)
	if res.json()["status"] != "running" {
		t.Fatalf("async create: %s", res.body)
	}
	job := waitJob(t, h, tok, id)
	sameShape(t, "job", map[string]any{"job_id": "", "kind": "", "status": "", "error": nil,
		"progress": map[string]any{"keys_done": 1.0, "keys_total": 1.0, "bytes": 1.0}, "result": seedExample(t, "create.json")}, job)
	if job["status"] != "succeeded" || job["kind"] != "backup" || job["error"] != nil {
		t.Fatalf("job: %v", job)
	}

	// delete, with a fresh code
	res = h.do("DELETE", "/api/backup/delete/"+name, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusOK {
		t.Fatalf("delete: %d %s", res.code, res.body)
	}
	sameShape(t, "delete", seedExample(t, "delete.json"), decodeAny(t, res.body))
	if _, err := os.Stat(filepath.Join(h.storage, name)); !os.IsNotExist(err) {
		t.Fatalf("archive still there after delete: %v", err)
	}

	// probes
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := h.do("GET", p, "", nil); res.code != http.StatusOK {
			t.Fatalf("%s: %d %s", p, res.code, res.body)
		}
	}
	res = h.do("GET", "/metrics", "", nil)
	if res.code != http.StatusOK || !strings.Contains(string(res.body), `redback_http_requests_total{code="200",method="post",route="backup_create"}`) {
		t.Fatalf("/metrics: %d, no request counter", res.code)
	}
}

// waitJob polls a job until it is no longer running.
func waitJob(t *testing.T, h *harness, tok, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res := h.do("GET", "/api/jobs/"+id, "", auth(tok))
		if res.code != http.StatusOK {
			t.Fatalf("job: %d %s", res.code, res.body)
		}
		if m := res.json(); m["status"] != "running" {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the job did not finish")
	return nil
}
