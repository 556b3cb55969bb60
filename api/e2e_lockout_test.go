package api

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

// TestServeReplayAndUnlockEndToEnd runs the real `redback serve`: a code
// accepted before a restart is refused after it (the state file in the
// storage folder remembers it); failed codes from a few clients lock every
// login; `redback totp unlock`, run beside it with the same configuration,
// lifts the lock.
func TestServeReplayAndUnlockEndToEnd(t *testing.T) {
	needTools(t, "oathtool")
	bin := redbackBinary(t)
	dir := t.TempDir()
	rs := redistest.Start(t)
	secret := totpInit(t, bin, "admin")
	storage := filepath.Join(dir, "backups")
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`redis:
  url: %q
storage: %q
schedule:
  enabled: false
api:
  listen: "127.0.0.1:0"
  login_max_failures: 2
  login_client_daily_cap: 2
  login_daily_cap: 5
  shutdown_timeout: 5s
`, rs.URL(0), storage)), 0o600)
	env := "REDBACK_TOTP_SECRET=" + secret

	cmd, addr, logs := startServe(t, bin, cfgPath, env)
	code := oathCode(t, secret, 0)
	if st, body := roundTrip(t, "127.0.0.1", addr, "POST", "/api/auth/login", loginBody(code), nil); st != http.StatusOK {
		t.Fatalf("login: %d %s", st, body)
	}
	stopServe(t, cmd, logs, 20*time.Second)
	if _, err := os.Stat(filepath.Join(storage, ".redback", "api-state.json")); err != nil {
		t.Fatalf("no state file in the storage folder: %v", err)
	}

	cmd, addr, logs = startServe(t, bin, cfgPath, env)
	defer stopServe(t, cmd, logs, 20*time.Second)
	if st, body := roundTrip(t, "127.0.0.1", addr, "POST", "/api/auth/login", loginBody(code), nil); st != http.StatusUnauthorized ||
		!strings.Contains(string(body), "already used") {
		t.Fatalf("the code replayed after a restart: %d %s", st, body)
	}
	// A right code already used is no failed attempt; three clients fail
	// five times in all: the daily cap of all (5) is reached.
	for j, src := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.8"} {
		for i := 0; i < 2 && 2*j+i < 5; i++ {
			if st, body := roundTrip(t, src, addr, "POST", "/api/auth/login", loginBody("000000"), nil); st != http.StatusUnauthorized {
				t.Fatalf("failure from %s: %d %s", src, st, body)
			}
		}
	}
	next := oathCode(t, secret, 1)
	if st, body := roundTrip(t, "127.0.0.7", addr, "POST", "/api/auth/login", loginBody(next), nil); st != http.StatusTooManyRequests {
		t.Fatalf("logins are not locked: %d %s", st, body)
	}
	out, err := exec.Command(bin, "--config", cfgPath, "totp", "unlock").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Unlock requested") || strings.Contains(string(out), "Warning") {
		t.Fatalf("totp unlock: %v\n%s", err, out)
	}
	time.Sleep(1100 * time.Millisecond) // serve looks at most once a second
	if st, body := roundTrip(t, "127.0.0.7", addr, "POST", "/api/auth/login", loginBody(next), nil); st != http.StatusOK {
		t.Fatalf("login after unlock: %d %s\n%s", st, body, logs.String())
	}
	if !strings.Contains(logs.String(), "logins unlocked") || !strings.Contains(logs.String(), "logins locked for everyone") {
		t.Fatalf("the lock and the unlock are not in the log:\n%s", logs.String())
	}
}

// TestTOTPUnlockWithoutStateFile: with bucket storage and no
// api.state_file, `redback totp unlock` says that serve keeps its counters
// in memory (exit 2); with api.state_file it writes beside it.
func TestTOTPUnlockWithoutStateFile(t *testing.T) {
	bin := redbackBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte("storage: \"s3://bucket/p?region=x\"\n"), 0o600)
	cmd := exec.Command(bin, "--config", cfgPath, "totp", "unlock")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "api.state_file is not set") {
		t.Fatalf("unlock without a state file: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state", "api.json")
	os.WriteFile(cfgPath, []byte("storage: \"s3://bucket/p?region=x\"\napi:\n  state_file: "+state+"\n"), 0o600)
	out, err = exec.Command(bin, "--config", cfgPath, "totp", "unlock").CombinedOutput()
	if err != nil || !strings.Contains(string(out), state+".unlock") || !strings.Contains(string(out), "Warning: there is no API state file") {
		t.Fatalf("unlock with a state file: %v\n%s", err, out)
	}
	if fi, err := os.Stat(state + ".unlock"); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("unlock file: %v", err)
	}
}
