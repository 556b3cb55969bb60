package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

func loginBody(code string) string { return `{"code":"` + code + `"}` }

func TestLoginCodeWorksOnce(t *testing.T) {
	h := newHarness(t)
	code := h.code(secretAdmin, 0)
	res := h.do("POST", "/api/auth/login", loginBody(code), nil)
	if res.code != http.StatusOK {
		t.Fatalf("login: %d %s", res.code, res.body)
	}
	sameShape(t, "login", map[string]any{"token": "", "expires_at": ""}, decodeAny(t, res.body))
	tok := res.json()["token"].(string)
	h.secrets = append(h.secrets, tok, code)
	if len(tok) < 43 {
		t.Fatalf("token too short for 256 bits: %q", tok)
	}
	exp, err := time.Parse(time.RFC3339, res.json()["expires_at"].(string))
	if err != nil || !exp.Equal(h.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("expires_at %v (%v)", exp, err)
	}
	if strings.Contains(string(res.body), secretAdmin) {
		t.Fatal("the secret is in the response")
	}
	// The same code again, within its window: refused, saying when the
	// next code comes (the start of the next 30 s step).
	res = h.do("POST", "/api/auth/login", loginBody(code), nil)
	now := h.clock.Now()
	next := now.Truncate(30 * time.Second).Add(30 * time.Second)
	wantWait := int(next.Sub(now) / time.Second)
	wantMsg := fmt.Sprintf("unauthorized: this code was already used (each code works once): wait for the next one, in %d s (at %s)",
		wantWait, next.UTC().Format("15:04:05Z"))
	if res.code != http.StatusUnauthorized || res.json()["success"] != false || res.json()["error"] != wantMsg ||
		res.json()["next_code_in_seconds"] != float64(wantWait) {
		t.Fatalf("replayed code: %d %s, want %q", res.code, res.body, wantMsg)
	}
	// A wrong code still gets the plain answer, without a hint.
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	res = h.do("POST", "/api/auth/login", loginBody(wrong), nil)
	if res.code != http.StatusUnauthorized || res.json()["error"] != "unauthorized: invalid code" || res.json()["next_code_in_seconds"] != nil {
		t.Fatalf("wrong code: %d %s", res.code, res.body)
	}
	// The previous step's code (still inside the skew) is older: refused too.
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, -1)), nil); res.code != http.StatusUnauthorized {
		t.Fatalf("older code after a newer one: %d", res.code)
	}
	// The next step's code works (skew of one step), and then the one after.
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 1)), nil); res.code != http.StatusOK {
		t.Fatalf("next code: %d %s", res.code, res.body)
	}
	h.clock.Advance(60 * time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("later code: %d %s", res.code, res.body)
	}
	// Two steps away is outside the window.
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 2)), nil); res.code != http.StatusUnauthorized {
		t.Fatalf("code two steps ahead: %d", res.code)
	}
	// Each admin has their own replay state.
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretBob, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("bob: %d %s", res.code, res.body)
	}
}

func TestConcurrentReplayGivesOneToken(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) {
		o.LoginMaxFailures, o.LoginClientDailyCap = 100, 100
		o.MaxLoginsPerClient = 64 // all at once from one client
	})
	code := h.code(secretAdmin, 0)
	const n = 32
	var wg sync.WaitGroup
	codes := make([]int, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = h.do("POST", "/api/auth/login", loginBody(code), nil).code
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d tokens for one code", ok)
	}
}

func TestMalformedCodesFailAlike(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.LoginMaxFailures = 100 })
	good := h.code(secretAdmin, 0)
	fullwidth := ""
	for _, r := range good {
		fullwidth += string(rune(r - '0' + '０'))
	}
	arabic := ""
	for _, r := range good {
		arabic += string(rune(r - '0' + '٠'))
	}
	for _, c := range []string{" " + good, good + " ", good + "\n", "\t" + good, fullwidth, arabic, good[:5], good + "0",
		"12345a", "", "000000x", "+12345", "-12345", "1e5000"} {
		res := h.do("POST", "/api/auth/login", loginBody(jsonEscape(c)), nil)
		if res.code != http.StatusUnauthorized || res.json()["error"] != "unauthorized: invalid code" {
			t.Errorf("code %q: %d %s", c, res.code, res.body)
		}
	}
	// Not a string at all: a bad body.
	for _, body := range []string{`{"code": 123456}`, `{"code": null, "x": 1}`, `["123456"]`, `123456`} {
		if res := h.do("POST", "/api/auth/login", body, nil); res.code != http.StatusBadRequest {
			t.Errorf("body %s: %d %s", body, res.code, res.body)
		}
	}
	// The genuine code still works: the malformed variants did not use it.
	if res := h.do("POST", "/api/auth/login", loginBody(good), nil); res.code != http.StatusOK {
		t.Fatalf("good code after the malformed ones: %d %s", res.code, res.body)
	}
}

func jsonEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return r.Replace(s)
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 5; i++ {
		if res := h.do("POST", "/api/auth/login", loginBody("000000"), nil); res.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, res.code, res.body)
		}
	}
	// Locked: even the right code is refused before it is checked.
	good := h.code(secretAdmin, 0)
	res := h.do("POST", "/api/auth/login", loginBody(good), nil)
	if res.code != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt: %d %s", res.code, res.body)
	}
	ra, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || ra < 290 || ra > 300 {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	if res.json()["success"] != false || res.json()["error"] == "" {
		t.Fatalf("429 body: %s", res.body)
	}
	h.clock.Advance(5*time.Minute + time.Second)
	res = h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil)
	if res.code != http.StatusOK {
		t.Fatalf("after the window: %d %s", res.code, res.body)
	}
}

func TestLoginRateLimitPerClientAndDaily(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) {
		o.LoginDailyCap = 8
		o.TrustedProxies = mustPrefixes(t, "192.0.2.1")
	})
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	for i := 0; i < 5; i++ {
		h.do("POST", "/api/auth/login", loginBody("111111"), from("198.51.100.7"))
	}
	if res := h.do("POST", "/api/auth/login", loginBody("111111"), from("198.51.100.7")); res.code != http.StatusTooManyRequests {
		t.Fatalf("client A not locked: %d", res.code)
	}
	// Client B is not locked by A's failures...
	for i := 0; i < 3; i++ {
		if res := h.do("POST", "/api/auth/login", loginBody("111111"), from("198.51.100.8")); res.code != http.StatusUnauthorized {
			t.Fatalf("client B attempt %d: %d", i, res.code)
		}
	}
	// ...but now the daily cap (8) is reached: everyone is locked, for hours.
	res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("203.0.113.9"))
	if res.code != http.StatusTooManyRequests {
		t.Fatalf("daily cap: %d %s", res.code, res.body)
	}
	if ra, _ := strconv.Atoi(res.header.Get("Retry-After")); ra < 3600 {
		t.Fatalf("daily cap Retry-After %q", res.header.Get("Retry-After"))
	}
	h.clock.Advance(24*time.Hour + time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("203.0.113.9")); res.code != http.StatusOK {
		t.Fatalf("a day later: %d %s", res.code, res.body)
	}
}

func TestTokenExpiryAndLogout(t *testing.T) {
	h := newHarness(t)
	tok := h.login(secretAdmin)
	if res := h.do("GET", "/api/backup/list", "", auth(tok)); res.code != http.StatusOK {
		t.Fatalf("list: %d", res.code)
	}
	h.clock.Advance(15*time.Minute - time.Second)
	if res := h.do("GET", "/api/backup/list", "", auth(tok)); res.code != http.StatusOK {
		t.Fatalf("list before expiry: %d", res.code)
	}
	h.clock.Advance(time.Second)
	res := h.do("GET", "/api/backup/list", "", auth(tok))
	if res.code != http.StatusUnauthorized || res.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("expired token: %d %v", res.code, res.header)
	}

	h.clock.Advance(time.Minute)
	tok = h.login(secretAdmin)
	if res := h.do("POST", "/api/auth/logout", "", auth(tok)); res.code != http.StatusOK || res.json()["success"] != true {
		t.Fatalf("logout: %d %s", res.code, res.body)
	}
	if res := h.do("GET", "/api/backup/list", "", auth(tok)); res.code != http.StatusUnauthorized {
		t.Fatalf("token after logout: %d", res.code)
	}
}

func TestMissingOrBadTokens(t *testing.T) {
	h := newHarness(t)
	for _, hdr := range []map[string]string{
		nil,
		{"Authorization": "Bearer"},
		{"Authorization": "Bearer "},
		{"Authorization": "Basic YWRtaW46YWRtaW4="},
		{"Authorization": "Bearer nope"},
		{"Authorization": "Bearer " + strings.Repeat("a", 5000)},
		{"Authorization": "Bearer " + secretAdmin},
		{"Authorization": sha256Hex(readToken)}, // the hash is not the token
		{"Authorization": "Bearer " + sha256Hex(readToken)},
	} {
		for _, rt := range [][2]string{{"GET", "/api/backup/list"}, {"POST", "/api/backup/create"}, {"GET", "/api/jobs/0123456789abcdef0123456789abcdef"},
			{"DELETE", "/api/backup/delete/redis_backup_20240101_000000.json.gz"}, {"GET", "/api/stats"}} {
			res := h.do(rt[0], rt[1], "", hdr)
			if res.code != http.StatusUnauthorized || res.json()["success"] != false {
				t.Errorf("%s %s with %v: %d %s", rt[0], rt[1], hdr, res.code, res.body)
			}
		}
	}
}

func TestFreshCodeRule(t *testing.T) {
	h := newHarness(t)
	h.fill(20)
	tok := h.login(secretAdmin) // uses step 0
	name := h.backup(tok)
	del := "/api/backup/delete/" + name
	before := h.storageState()

	// No code, the login's own code (replay), a code of another admin, a
	// malformed code: 403, nothing deleted.
	for _, hdr := range []map[string]string{
		auth(tok),
		with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0)),
		with(auth(tok), "X-TOTP-Code", h.code(secretBob, 1)),
		with(auth(tok), "X-TOTP-Code", " "+h.code(secretAdmin, 1)),
	} {
		res := h.do("DELETE", del, "", hdr)
		if res.code != http.StatusForbidden || res.json()["success"] != false {
			t.Fatalf("delete with %v: %d %s", hdr["X-TOTP-Code"], res.code, res.body)
		}
	}
	if h.storageState() != before {
		t.Fatal("a refused delete changed the storage")
	}
	// Restore with overwrite needs one too; without overwrite it does not.
	res := h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","overwrite":true}`, auth(tok))
	if res.code != http.StatusForbidden {
		t.Fatalf("restore overwrite without code: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/restore", `{"filename":"`+name+`"}`, auth(tok))
	if res.code != http.StatusOK {
		t.Fatalf("restore without overwrite: %d %s", res.code, res.body)
	}
	res = h.do("POST", "/api/backup/restore", `{"filename":"`+name+`","overwrite":true}`,
		with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusOK || res.json()["restored_count"].(float64) != 20 {
		t.Fatalf("restore overwrite with a fresh code: %d %s", res.code, res.body)
	}
	// That code is spent; the next step's is needed for the delete.
	res = h.do("DELETE", del, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusForbidden {
		t.Fatalf("delete with a spent code: %d", res.code)
	}
	h.clock.Advance(30 * time.Second)
	res = h.do("DELETE", del, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusOK {
		t.Fatalf("delete with a fresh code: %d %s", res.code, res.body)
	}
	// Deleting it again: 404.
	h.clock.Advance(30 * time.Second)
	res = h.do("DELETE", del, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1)))
	if res.code != http.StatusNotFound || res.json()["success"] != false {
		t.Fatalf("delete of a missing archive: %d %s", res.code, res.body)
	}
}

func TestReadOnlyTokens(t *testing.T) {
	h := newHarness(t)
	h.fill(10)
	admin := h.login(secretAdmin)
	name := h.backup(admin)
	ro := auth(readToken)
	for _, p := range []string{"/api/backup/list", "/api/backup/stats", "/api/stats", "/api/backup/download/" + name} {
		if res := h.do("GET", p, "", ro); res.code != http.StatusOK {
			t.Errorf("read token GET %s: %d %s", p, res.code, res.body)
		}
	}
	res := h.do("POST", "/api/backup/create", `{"async":true}`, auth(admin))
	id := res.json()["job_id"].(string)
	if res := h.do("GET", "/api/jobs/"+id, "", ro); res.code != http.StatusOK {
		t.Errorf("read token GET job: %d %s", res.code, res.body)
	}
	waitJob(t, h, admin, id)
	before := h.storageState()
	for _, rt := range [][3]string{
		{"POST", "/api/backup/create", `{}`},
		{"POST", "/api/backup/restore", `{"filename":"` + name + `"}`},
		{"DELETE", "/api/backup/delete/" + name, ""},
	} {
		res := h.do(rt[0], rt[1], rt[2], with(ro, "X-TOTP-Code", h.code(secretAdmin, 1)))
		if res.code != http.StatusForbidden || res.json()["success"] != false {
			t.Errorf("read token %s %s: %d %s", rt[0], rt[1], res.code, res.body)
		}
	}
	if h.storageState() != before {
		t.Fatal("a read token changed the storage")
	}
}

func TestAuditLog(t *testing.T) {
	h := newHarness(t)
	tok := h.login(secretBob)
	h.do("GET", "/api/backup/list", "", auth(tok))
	h.do("GET", "/api/backup/list", "", auth(readToken))
	h.do("POST", "/api/auth/login", loginBody("999999"), nil)
	logs := h.logs.String()
	for _, want := range []string{
		`msg=login audit=true admin=bob remote=192.0.2.1`,
		`msg="api request" audit=true route=backup_list method=GET status=200 remote=192.0.2.1`,
		`admin=bob`,
		`read_token=monitor`,
		`msg="login failed" audit=true remote=192.0.2.1`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %q:\n%s", want, logs)
		}
	}
}

// TestUsedCodesDoNotCount: a right code that was already used is no
// failed attempt (rerunning a login script within the same 30 s must not
// lock the admin out), while wrong codes still count.
func TestUsedCodesDoNotCount(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.LoginMaxFailures = 2 })
	code := h.code(secretAdmin, 0)
	if res := h.do("POST", "/api/auth/login", loginBody(code), nil); res.code != http.StatusOK {
		t.Fatalf("login: %d %s", res.code, res.body)
	}
	for i := 0; i < 5; i++ {
		if res := h.do("POST", "/api/auth/login", loginBody(code), nil); res.code != http.StatusUnauthorized || res.json()["next_code_in_seconds"] == nil {
			t.Fatalf("reused code %d: %d %s", i, res.code, res.body)
		}
	}
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 1)), nil); res.code != http.StatusOK {
		t.Fatalf("the next code after five reuses: %d %s (reuses were counted as failures)", res.code, res.body)
	}
	wrong := func() string {
		for _, c := range []string{"000000", "111111", "222222"} {
			if c != h.code(secretAdmin, 0) && c != h.code(secretAdmin, 1) && c != h.code(secretAdmin, -1) &&
				c != h.code(secretBob, 0) && c != h.code(secretBob, 1) && c != h.code(secretBob, -1) {
				return c
			}
		}
		t.Fatal("no wrong code")
		return ""
	}()
	h.do("POST", "/api/auth/login", loginBody(wrong), nil)
	h.do("POST", "/api/auth/login", loginBody(wrong), nil)
	h.clock.Advance(30 * time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 1)), nil); res.code != http.StatusTooManyRequests {
		t.Fatalf("after 2 wrong codes with login_max_failures 2: %d %s, want 429", res.code, res.body)
	}
}

// TestFreshAuthWindow: with api.fresh_auth_window, destructive calls within
// the window of the login (or of the last fresh code) need no code; after
// it they do, and a fresh code opens it again. Off by default
// (TestFreshCodeRule).
func TestFreshAuthWindow(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.FreshAuthWindow = 2 * time.Minute })
	h.fill(5)
	tok := h.login(secretAdmin)
	a, b, c := h.backup(tok), "", ""
	h.clock.Advance(time.Second) // archive names have a second's resolution
	b = h.backup(tok)
	h.clock.Advance(time.Second)
	c = h.backup(tok)

	if res := h.do("DELETE", "/api/backup/delete/"+a, "", auth(tok)); res.code != http.StatusOK {
		t.Fatalf("delete within the window, no code: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/backup/restore", `{"filename":"`+a+`","overwrite":true}`, auth(tok)); res.code != http.StatusNotFound {
		t.Fatalf("restore overwrite of the deleted archive within the window: %d %s, want 404 (past the code check)", res.code, res.body)
	}
	h.clock.Advance(2*time.Minute + time.Second)
	before := h.storageState()
	res := h.do("DELETE", "/api/backup/delete/"+b, "", auth(tok))
	if res.code != http.StatusForbidden {
		t.Fatalf("delete after the window, no code: %d %s", res.code, res.body)
	}
	if h.storageState() != before {
		t.Fatal("a refused delete changed the storage")
	}
	// A fresh code opens the window again.
	if res := h.do("DELETE", "/api/backup/delete/"+b, "", with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 0))); res.code != http.StatusOK {
		t.Fatalf("delete with a fresh code: %d %s", res.code, res.body)
	}
	h.clock.Advance(time.Minute)
	if res := h.do("DELETE", "/api/backup/delete/"+c, "", auth(tok)); res.code != http.StatusOK {
		t.Fatalf("delete within the window of the fresh code: %d %s", res.code, res.body)
	}
	if !strings.Contains(h.logs.String(), "fresh code waived: within api.fresh_auth_window") {
		t.Error("the audit log does not say that a code was waived")
	}
	// Another admin's session has its own window.
	h.clock.Advance(3 * time.Minute)
	bob := h.login(secretBob)
	d := h.backup(bob)
	if res := h.do("DELETE", "/api/backup/delete/"+d, "", auth(tok)); res.code != http.StatusForbidden {
		t.Fatalf("admin's expired window after bob's login: %d %s", res.code, res.body)
	}
	if res := h.do("DELETE", "/api/backup/delete/"+d, "", auth(bob)); res.code != http.StatusOK {
		t.Fatalf("bob within his window: %d %s", res.code, res.body)
	}
}
