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

// restart builds a new API over the same service, jobs and options (the
// same state file): what `redback serve` is after a restart.
func (h *harness) restart() {
	h.t.Helper()
	api, err := New(h.svc, h.jobs, h.api.opt)
	if err != nil {
		h.t.Fatal(err)
	}
	h.api = api
}

// TestCodeReplayAcrossRestart: a code accepted before a restart is refused
// after it (the state file remembers its step), for logins and for the
// fresh codes of destructive calls; the next code works.
func TestCodeReplayAcrossRestart(t *testing.T) {
	h := newHarness(t)
	code := h.code(secretAdmin, 0)
	if res := h.do("POST", "/api/auth/login", loginBody(code), nil); res.code != http.StatusOK {
		t.Fatalf("login: %d %s", res.code, res.body)
	}
	bobNext := h.code(secretBob, 1)
	bob := h.login(secretBob)
	res := h.do("DELETE", "/api/backup/delete/redis_backup_20240101_000000.json", "", with(auth(bob), "X-TOTP-Code", bobNext))
	if res.code != http.StatusNotFound { // the code was good; the archive is missing
		t.Fatalf("delete with bob's fresh code: %d %s", res.code, res.body)
	}
	h.restart()
	if res := h.do("POST", "/api/auth/login", loginBody(code), nil); res.code != http.StatusUnauthorized {
		t.Fatalf("admin's code replayed after a restart: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/auth/login", loginBody(bobNext), nil); res.code != http.StatusUnauthorized {
		t.Fatalf("bob's fresh code replayed after a restart: %d %s", res.code, res.body)
	}
	h.clock.Advance(30 * time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("the next code after a restart: %d %s", res.code, res.body)
	}
	// The state file names admins and steps only.
	data, err := os.ReadFile(h.api.opt.StateFile)
	if err != nil || strings.Contains(string(data), secretAdmin) || !strings.Contains(string(data), `"admin"`) {
		t.Fatalf("state file: %v %s", err, data)
	}
	if fi, err := os.Stat(h.api.opt.StateFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi.Mode(), err)
	}
}

// TestNoStateFileRefusesTheCodesOfTheStart: without a state file, the
// codes that the previous process might have accepted (up to one step
// ahead of the clock) are refused after a restart; the code after them
// works.
func TestNoStateFileRefusesTheCodesOfTheStart(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.StateFile = "" })
	for _, off := range []int{-1, 0, 1} {
		if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, off)), nil); res.code != http.StatusUnauthorized {
			t.Fatalf("code of step %+d at start: %d %s", off, res.code, res.body)
		}
	}
	h.clock.Advance(60 * time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("a code two steps after the start: %d %s", res.code, res.body)
	}
}

// TestUnwritableStateFile: the API refuses to start when its state file
// cannot be written (not at the first login), and a corrupt one is not
// taken for an empty one.
func TestUnwritableStateFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	o := h.api.opt
	o.StateFile = filepath.Join(dir, "state.json")
	if err := os.WriteFile(o.StateFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(h.svc, h.jobs, o); err == nil || !strings.Contains(err.Error(), "not a redback API state file") {
		t.Fatalf("corrupt state file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o.StateFile = filepath.Join(dir, "file", "state.json") // under a file: cannot be created
	if _, err := New(h.svc, h.jobs, o); err == nil || !strings.Contains(err.Error(), "api.state_file") {
		t.Fatalf("unwritable state file: %v", err)
	}
}

// from sends the request as a client behind the trusted proxy.
func from(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

func trustProxy(t *testing.T) harnessOpt {
	return func(_ *config.Config, o *Options) { o.TrustedProxies = mustPrefixes(t, "192.0.2.1") }
}

// TestOneClientCannotLockEveryone: one client failing code after code,
// window after window, is locked for the day by its own daily cap long
// before the global cap, and everyone else still logs in. The addresses
// of one IPv6 /64 are one client.
func TestOneClientCannotLockEveryone(t *testing.T) {
	h := newHarness(t, trustProxy(t), func(_ *config.Config, o *Options) {
		o.LoginMaxFailures, o.LoginClientDailyCap, o.LoginDailyCap = 5, 20, 30
	})
	failures := 0
	for round := 0; round < 50; round++ {
		for i := 0; i < 5; i++ {
			ip := "2001:db8:1:2::" + string(rune('a'+(round*5+i)%6)) // one /64, many addresses
			if res := h.do("POST", "/api/auth/login", loginBody("000000"), from(ip)); res.code == http.StatusUnauthorized {
				failures++
			}
		}
		h.clock.Advance(5*time.Minute + time.Second)
	}
	if failures != 20 {
		t.Fatalf("one client made %d failed attempts in a few hours, want its daily cap, 20", failures)
	}
	if res := h.do("POST", "/api/auth/login", loginBody("000000"), from("2001:db8:1:2::99")); res.code != http.StatusTooManyRequests {
		t.Fatalf("the client is not locked: %d", res.code)
	}
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("2001:db8:1:3::1")); res.code != http.StatusOK {
		t.Fatalf("another client: %d %s", res.code, res.body)
	}
}

// TestUnlockLiftsTheGlobalLock: failures from several clients reach the
// global cap and lock everyone out, until RequestUnlock (what `redback
// totp unlock` does) writes its request: then the next login works.
func TestUnlockLiftsTheGlobalLock(t *testing.T) {
	h := newHarness(t, trustProxy(t), func(_ *config.Config, o *Options) {
		o.LoginMaxFailures, o.LoginClientDailyCap, o.LoginDailyCap = 3, 3, 9
	})
	for _, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		for i := 0; i < 3; i++ {
			if res := h.do("POST", "/api/auth/login", loginBody("000000"), from(ip)); res.code != http.StatusUnauthorized {
				t.Fatalf("failure from %s: %d", ip, res.code)
			}
		}
	}
	if !strings.Contains(h.logs.String(), "logins locked for everyone") {
		t.Errorf("the lock was not logged:\n%s", h.logs)
	}
	res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("203.0.113.5"))
	if res.code != http.StatusTooManyRequests {
		t.Fatalf("global lock: %d %s", res.code, res.body)
	}
	path, err := RequestUnlock(h.api.opt.StateFile, time.Now())
	if err != nil || path != h.api.opt.StateFile+".unlock" {
		t.Fatalf("RequestUnlock: %q %v", path, err)
	}
	time.Sleep(1100 * time.Millisecond) // the API looks at most once a second
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("203.0.113.5")); res.code != http.StatusOK {
		t.Fatalf("after unlock: %d %s", res.code, res.body)
	}
	if !strings.Contains(h.logs.String(), "logins unlocked") {
		t.Errorf("the unlock was not logged")
	}
	// The request is acted on once: new failures lock again.
	for _, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		for i := 0; i < 3; i++ {
			h.do("POST", "/api/auth/login", loginBody("000000"), from(ip))
		}
	}
	time.Sleep(1100 * time.Millisecond)
	h.clock.Advance(30 * time.Second)
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), from("203.0.113.5")); res.code != http.StatusTooManyRequests {
		t.Fatalf("an old unlock request lifted a new lock: %d", res.code)
	}
	if _, err := RequestUnlock("", time.Now()); err == nil {
		t.Fatal("RequestUnlock without a state file")
	}
}

// TestMalformedCodesAreNoAttempts: strings that cannot be codes are
// refused like bad codes but never counted.
func TestMalformedCodesAreNoAttempts(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 50; i++ {
		if res := h.do("POST", "/api/auth/login", loginBody("12345x"), nil); res.code != http.StatusUnauthorized {
			t.Fatalf("malformed code %d: %d", i, res.code)
		}
	}
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("login after malformed codes: %d %s", res.code, res.body)
	}
}

// TestStateFileWriteFailureRefusesTheCode: a right code that cannot be
// recorded is refused with 503 (a restart could accept it again), without
// counting as a failed code, and stays used.
func TestStateFileWriteFailureRefusesTheCode(t *testing.T) {
	h := newHarness(t)
	state := h.api.opt.StateFile
	// A non-empty folder where the file should be: the rename fails.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	code := h.code(secretAdmin, 0)
	res := h.do("POST", "/api/auth/login", loginBody(code), nil)
	if res.code != http.StatusServiceUnavailable || res.json()["success"] != false || strings.Contains(string(res.body), state) {
		t.Fatalf("login with an unwritable state file: %d %s", res.code, res.body)
	}
	if !strings.Contains(h.logs.String(), "cannot record a used TOTP code") {
		t.Errorf("the failure is not logged")
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if res := h.do("POST", "/api/auth/login", loginBody(code), nil); res.code != http.StatusUnauthorized {
		t.Fatalf("the refused code was accepted later: %d %s", res.code, res.body)
	}
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 1)), nil); res.code != http.StatusOK {
		t.Fatalf("the next code: %d %s", res.code, res.body)
	}
}
