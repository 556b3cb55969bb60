package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRefusalsAreSampled: a flood of failed logins, rate-limited logins and
// tokenless requests gives a few log lines, each kind at most once per
// LogEvery, and the next line counts those left out.
func TestRefusalsAreSampled(t *testing.T) {
	h := newHarness(t, trustProxy(t))
	for i := 0; i < 300; i++ {
		ip := fmt.Sprintf("198.51.%d.%d", i/200, i%200)
		h.do("POST", "/api/auth/login", loginBody("000000"), from(ip))
		h.do("POST", "/api/auth/login", loginBody("12345"), from(ip))
		h.do("GET", "/api/backup/list", "", from(ip))
		h.do("GET", "/api/backup/list", "", with(from(ip), "Authorization", "Bearer nope"))
	}
	for i := 0; i < 10; i++ { // 4 more failures, then locked out: 429s
		h.do("POST", "/api/auth/login", loginBody("000000"), from("198.51.0.1"))
	}
	count := func(msg string) int { return strings.Count(h.logs.String(), `msg="`+msg+`"`) }
	for _, msg := range []string{"login failed", "api request refused", "login refused: rate limited"} {
		if n := count(msg); n != 1 {
			t.Errorf("%q logged %d times, want 1 (sampled)", msg, n)
		}
	}
	h.clock.Advance(10 * time.Second)
	h.do("POST", "/api/auth/login", loginBody("000000"), from("203.0.113.1"))
	h.do("GET", "/api/backup/list", "", from("203.0.113.1"))
	logs := h.logs.String()
	for _, want := range []string{
		`msg="login failed" audit=true remote=203.0.113.1 suppressed=603`,
		`msg="api request refused" audit=true route=backup_list method=GET status=401 remote=203.0.113.1 `,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if !regexp.MustCompile(`msg="api request refused" .*remote=203\.0\.113\.1 .*suppressed=599`).MatchString(logs) {
		t.Errorf("the refused requests left out are not counted:\n%s", logs)
	}
	if lines := strings.Count(logs, "\n"); lines > 20 {
		t.Errorf("%d log lines for 1,200 refused requests:\n%s", lines, logs)
	}
	// Requests with a token are logged one by one.
	tok := h.login(secretAdmin)
	h.do("DELETE", "/api/backup/delete/redis_backup_20240101_000000.json", "", auth(tok))
	h.do("DELETE", "/api/backup/delete/redis_backup_20240101_000000.json", "", auth(tok))
	if n := len(regexp.MustCompile(`status=403 remote=192\.0\.2\.1 ms=\d+ admin=admin`).FindAllString(h.logs.String(), -1)); n != 2 {
		t.Errorf("an admin's refused requests: %d lines, want 2", n)
	}
}

// TestReadTokensSeeNoPaths: the storage folder's absolute path appears in
// what admins get (list, stats, targets, a backup job's result) and never
// in what a read-only token gets.
func TestReadTokensSeeNoPaths(t *testing.T) {
	h := newHarness(t)
	h.fill(5)
	admin := h.login(secretAdmin)
	res := h.do("POST", "/api/backup/create", `{"async":true}`, auth(admin))
	id, _ := res.json()["job_id"].(string)
	waitJob(t, h, admin, id)
	routes := []string{"/api/backup/list", "/api/backup/stats", "/api/targets", "/api/jobs/" + id}
	for _, p := range routes {
		res := h.do("GET", p, "", auth(readToken))
		if res.code != http.StatusOK {
			t.Fatalf("read token GET %s: %d %s", p, res.code, res.body)
		}
		if strings.Contains(string(res.body), h.storage) {
			t.Errorf("read token GET %s shows the storage path:\n%s", p, res.body)
		}
	}
	var list struct {
		Backups []struct{ Filename, Filepath string }
	}
	if res := h.do("GET", "/api/backup/list", "", auth(readToken)); json.Unmarshal(res.body, &list) != nil || len(list.Backups) != 1 ||
		list.Backups[0].Filepath != list.Backups[0].Filename {
		t.Errorf("read token's list: %s", res.body)
	}
	if res := h.do("GET", "/api/backup/stats", "", auth(readToken)); !strings.HasPrefix(res.json()["storage"].(string), "folder ") {
		t.Errorf("read token's stats: %s", res.body)
	}
	// Admins see the paths.
	for _, p := range routes {
		if res := h.do("GET", p, "", auth(admin)); !strings.Contains(string(res.body), h.storage) {
			t.Errorf("admin GET %s lacks the storage path:\n%s", p, res.body)
		}
	}
}

// TestUnauthorizedHintNamesTheLoginRoute: the 401 says where a token comes
// from; the path scrubber leaves the API's own routes alone.
func TestUnauthorizedHintNamesTheLoginRoute(t *testing.T) {
	h := newHarness(t)
	res := h.do("GET", "/api/backup/list", "", nil)
	if res.code != http.StatusUnauthorized || res.json()["error"] != "unauthorized: send Authorization: Bearer TOKEN (POST /api/auth/login gives one)" {
		t.Fatalf("401: %d %s", res.code, res.body)
	}
	res = h.do("GET", "/api/backup/list?target=nope", "", auth(readToken))
	if res.code != http.StatusNotFound || !strings.Contains(res.json()["error"].(string), "(GET /api/targets lists them)") {
		t.Fatalf("404: %d %s", res.code, res.body)
	}
	for _, c := range []struct{ in, want string }{
		{"open /srv/redback/api/x: denied", "open <path>: denied"},
		{"see /api/auth/login", "see /api/auth/login"},
		{"bad /api/../etc/passwd", "bad <path>"},
		{"read /healthz/x", "read <path>"},
	} {
		if got := publicMessage(fmt.Errorf("%s", c.in)); got != c.want {
			t.Errorf("publicMessage(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
