package api

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestPinRoutes: pin and unpin are for admins only; a pin and its note
// show in the list; bad notes and names are refused and change nothing.
func TestPinRoutes(t *testing.T) {
	h := newHarness(t)
	h.fill(20)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	path := "/api/backup/pin/" + name
	if res := h.do("POST", path, `{"note":"x"}`, nil); res.code != http.StatusUnauthorized {
		t.Fatalf("pin without a token: %d %s", res.code, res.body)
	}
	if res := h.do("POST", path, `{"note":"x"}`, auth(readToken)); res.code != http.StatusForbidden {
		t.Fatalf("pin with a read token: %d %s", res.code, res.body)
	}
	before := h.storageState()
	for body, want := range map[string]string{
		`{"note":"a\u0007b"}`: "control character",
		`{"note":1}`:          "wrong type",
		`{"note":"x","y":1}`:  "y",
	} {
		if res := h.do("POST", path, body, auth(tok)); res.code != http.StatusBadRequest || !strings.Contains(string(res.body), want) {
			t.Fatalf("pin %s: %d %s", body, res.code, res.body)
		}
	}
	if res := h.do("POST", "/api/backup/pin/..%2Fetc%2Fpasswd", `{}`, auth(tok)); res.code != http.StatusBadRequest {
		t.Fatalf("pin of a bad name: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/backup/pin/redis_backup_20200101_000000.json.gz", `{}`, auth(tok)); res.code != http.StatusNotFound {
		t.Fatalf("pin of a missing archive: %d %s", res.code, res.body)
	}
	if h.storageState() != before {
		t.Fatal("a refused pin changed the storage")
	}
	res := h.do("POST", path, `{"note":"keep for the audit"}`, auth(tok))
	if res.code != http.StatusOK || res.json()["pinned"] != true || res.json()["note"] != "keep for the audit" {
		t.Fatalf("pin: %d %s", res.code, res.body)
	}
	if b := listed(t, h); !b.Pinned || b.Note != "keep for the audit" || b.PinnedAt == "" {
		t.Fatalf("list: %+v", b)
	}
	if res := h.do("DELETE", "/api/backup/delete/"+name, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1))); res.code != http.StatusConflict {
		t.Fatalf("delete of a pinned archive: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/backup/unpin/"+name, "", auth(readToken)); res.code != http.StatusForbidden {
		t.Fatalf("unpin with a read token: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/unpin/"+name, "", auth(tok))
	if res.code != http.StatusOK || res.json()["pinned"] != false {
		t.Fatalf("unpin: %d %s", res.code, res.body)
	}
	if b := listed(t, h); b.Pinned || b.Note != "" {
		t.Fatalf("list after unpin: %+v", b)
	}
}

// TestReadyzDrills: with drill.ready_max_age, /readyz is red until a drill
// passed, green after one, red once the newest drill failed (a damaged
// archive) and red when the newest passed drill is too old.
func TestReadyzDrills(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.DrillMaxAge = time.Hour })
	h.fill(20)
	ctx := context.Background()
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	res := h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "no restore drill has passed yet") {
		t.Fatalf("readyz before any drill: %d %s", res.code, res.body)
	}
	if _, err := h.svc.Drill(ctx, name, agent.DrillOptions{ServerBinary: bin}); err != nil {
		t.Fatal(err)
	}
	res = h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusOK || res.json()["latest_drill"] != name {
		t.Fatalf("readyz after a drill: %d %s", res.code, res.body)
	}
	if b := listed(t, h); b.DrillResult != agent.DrillPassed || b.DrilledAt == "" {
		t.Fatalf("list after a drill: %+v", b)
	}
	h.clock.Advance(2 * time.Hour)
	if res := h.do("GET", "/readyz", "", nil); res.code != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "old") {
		t.Fatalf("readyz with an old drill: %d %s", res.code, res.body)
	}
	h.clock.Advance(-2 * time.Hour)

	damage(t, filepath.Join(h.storage, name))
	if _, err := h.svc.Drill(ctx, name, agent.DrillOptions{ServerBinary: bin}); err == nil {
		t.Fatal("the drill of a damaged archive passed")
	}
	res = h.do("GET", "/readyz", "", nil)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "the newest restore drill, of "+name) {
		t.Fatalf("readyz after a failed drill: %d %s", res.code, res.body)
	}
}

// listed is the one archive that GET /api/backup/list shows.
func listed(t *testing.T, h *harness) agent.BackupInfo {
	t.Helper()
	res := h.do("GET", "/api/backup/list", "", auth(readToken))
	var l agent.ListResult
	if res.code != http.StatusOK || json.Unmarshal(res.body, &l) != nil || len(l.Backups) != 1 {
		t.Fatalf("list: %d %s", res.code, res.body)
	}
	return l.Backups[0]
}

// TestDrillRoute: POST /api/backup/drill/{filename|latest} runs a drill as
// a job (drill.server_binary from the configuration) and records it; a
// read token may not; a machine token with the drill scope may; the drill
// of a damaged archive answers 422 with its result and is recorded failed.
func TestDrillRoute(t *testing.T) {
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "api-tokens.json")
	h := newHarness(t, func(c *config.Config, o *Options) { c.Drill.ServerBinary = bin; o.TokensFile = file })
	h.fill(30)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	if res := h.do("POST", "/api/backup/drill/latest", `{}`, auth(readToken)); res.code != http.StatusForbidden {
		t.Fatalf("drill with a read token: %d %s", res.code, res.body)
	}
	res := h.do("POST", "/api/backup/drill/latest", `{}`, auth(tok))
	if res.code != http.StatusOK || res.json()["success"] != true || res.json()["filename"] != name || res.json()["keys_count"] != float64(30) {
		t.Fatalf("drill: %d %s", res.code, res.body)
	}
	if b := listed(t, h); b.DrillResult != agent.DrillPassed {
		t.Fatalf("list after the drill: %+v", b)
	}
	machine, _, err := CreateMachineToken(file, "nightly", []string{"drill"}, 0, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, machine)
	damage(t, filepath.Join(h.storage, name))
	res = h.do("POST", "/api/backup/drill/"+name, `{}`, auth(machine))
	if res.code != http.StatusUnprocessableEntity || res.json()["success"] != false {
		t.Fatalf("drill of a damaged archive: %d %s", res.code, res.body)
	}
	if b := listed(t, h); b.DrillResult != "failed" {
		t.Fatalf("list after the failed drill: %+v", b)
	}
	if res := h.do("GET", "/api/jobs?kind=drill", "", auth(tok)); res.code != http.StatusOK || strings.Count(string(res.body), `"kind": "drill"`) != 2 {
		t.Fatalf("the drills in the history: %d %s", res.code, res.body)
	}
}

// damage flips one bit in the middle of the file at path (an archive that
// a drill must then fail).
func damage(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
