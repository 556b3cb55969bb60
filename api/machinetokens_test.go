package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

// TestMachineTokens: a machine token makes the admin calls of its scopes
// without a TOTP code, and no others; reads are open to it; revoking or
// expiring it stops it at the next request; a damaged tokens file refuses
// every machine token and says so in the log.
func TestMachineTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "api-tokens.json")
	h := newHarness(t, func(_ *config.Config, o *Options) { o.TokensFile = file })
	h.fill(12)
	backupTok, _, err := CreateMachineToken(file, "ci", []string{"backup"}, 0, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	restoreTok, mt, err := CreateMachineToken(file, "drill", []string{"restore", "delete"}, time.Hour, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, backupTok, restoreTok)
	if mt.ExpiresAt == nil || !mt.ExpiresAt.Equal(h.clock.Now().Add(time.Hour).UTC()) {
		t.Fatalf("expiry %v", mt.ExpiresAt)
	}
	if data, _ := os.ReadFile(file); strings.Contains(string(data), backupTok) || strings.Contains(string(data), restoreTok) {
		t.Fatal("the tokens file holds a token, not only its hash")
	}
	if _, _, err := CreateMachineToken(file, "ci", []string{"backup"}, 0, h.clock.Now()); err == nil {
		t.Fatal("a second token named ci was created")
	}
	if _, _, err := CreateMachineToken(file, "x", []string{"flushall"}, 0, h.clock.Now()); err == nil {
		t.Fatal("an unknown scope was accepted")
	}

	name := h.backup(backupTok) // backup scope: create works, no code
	if res := h.do("GET", "/api/backup/list", "", auth(backupTok)); res.code != http.StatusOK {
		t.Fatalf("list with a machine token: %d %s", res.code, res.body)
	}
	before := h.storageState()
	res := h.do("DELETE", "/api/backup/delete/"+name, "", auth(backupTok))
	if res.code != http.StatusForbidden || !strings.Contains(res.json()["error"].(string), `machine token "ci" (backup) do not allow`) {
		t.Fatalf("delete with a backup-only token: %d %s", res.code, res.body)
	}
	if h.storageState() != before {
		t.Fatal("a refused delete changed the storage")
	}
	if res := h.do("POST", "/api/backup/create", `{}`, auth(restoreTok)); res.code != http.StatusForbidden {
		t.Fatalf("backup with a restore token: %d %s", res.code, res.body)
	}
	// restore scope: overwrite needs no code.
	res = h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","overwrite":true}`, auth(restoreTok))
	if res.code != http.StatusOK || res.json()["restored_count"].(float64) != 12 {
		t.Fatalf("restore overwrite with a restore token: %d %s", res.code, res.body)
	}
	if !strings.Contains(h.logs.String(), "token:drill") {
		t.Error("the audit log does not name the machine token")
	}

	// Revoked: refused at the next request.
	if err := RevokeMachineToken(file, "ci"); err != nil {
		t.Fatal(err)
	}
	if res := h.do("GET", "/api/backup/list", "", auth(backupTok)); res.code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d %s", res.code, res.body)
	}
	if err := RevokeMachineToken(file, "ci"); err == nil {
		t.Fatal("revoking a missing token succeeded")
	}
	// Expired: refused.
	h.clock.Advance(time.Hour)
	if res := h.do("GET", "/api/backup/list", "", auth(restoreTok)); res.code != http.StatusUnauthorized {
		t.Fatalf("expired token: %d %s", res.code, res.body)
	}
	// A damaged file refuses every machine token, loudly, and nothing else.
	if _, _, err := CreateMachineToken(file, "late", []string{"backup"}, 0, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := h.do("GET", "/api/backup/list", "", auth("rbm_whatever")); res.code != http.StatusServiceUnavailable {
		t.Fatalf("machine token with a damaged file: %d %s", res.code, res.body)
	}
	if !strings.Contains(h.logs.String(), "cannot read api.tokens_file") {
		t.Error("no log line about the damaged tokens file")
	}
	if res := h.do("GET", "/api/backup/list", "", auth(readToken)); res.code != http.StatusOK {
		t.Fatalf("read token with a damaged tokens file: %d %s", res.code, res.body)
	}
}
