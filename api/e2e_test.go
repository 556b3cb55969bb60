package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// redbackBinary builds cmd/redback once per test run.
func redbackBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "redback-e2e")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "redback")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/redback-dev/redback/cmd/redback").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// needTools fails (never skips) when a command the test drives is missing.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed (run scripts/install-test-deps.sh): %v", n, err)
		}
	}
}

// totpInit runs `redback totp init` and returns the new secret.
func totpInit(t *testing.T, bin, account string) string {
	t.Helper()
	out, err := exec.Command(bin, "totp", "init", "--account", account).Output()
	if err != nil {
		t.Fatalf("totp init: %v", err)
	}
	m := regexp.MustCompile(`otpauth://\S+`).Find(out)
	if m == nil {
		t.Fatalf("totp init printed no otpauth URL:\n%s", out)
	}
	u, err := url.Parse(string(m))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("issuer") != "redback" || u.Path != "/redback:"+account ||
		q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("otpauth URL %s", m)
	}
	sec := q.Get("secret")
	if _, err := ParseSecret(sec); err != nil {
		t.Fatalf("totp init made a bad secret: %v", err)
	}
	return sec
}

// oathCode computes a TOTP code with Debian's oathtool, at now+offset
// steps. It first waits out the last seconds of a step, so that the code
// is still in the server's window when it arrives.
func oathCode(t *testing.T, secret string, offset int) string {
	t.Helper()
	if s := time.Now().Unix() % 30; s >= 27 {
		time.Sleep(time.Duration(30-s)*time.Second + 300*time.Millisecond)
	}
	at := time.Now().Unix() + int64(offset*30)
	out, err := exec.Command("oathtool", "--totp", "-b", "--now", "@"+strconv.FormatInt(at, 10), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	code := strings.TrimSpace(string(out))
	if !isCode(code) {
		t.Fatalf("oathtool printed %q", code)
	}
	return code
}

// curlClient drives the API with curl.
type curlClient struct {
	t    *testing.T
	base string
	dir  string
}

// do runs curl with args against path and returns the status and body.
func (c *curlClient) do(path string, args ...string) (int, []byte) {
	c.t.Helper()
	bodyFile := filepath.Join(c.dir, "body")
	os.Remove(bodyFile)
	all := []string{"-sS", "-w", "%{http_code}"}
	if !containsArg(args, "-o") {
		all = append(all, "-o", bodyFile)
	}
	all = append(all, args...)
	all = append(all, c.base+path)
	out, err := exec.Command("curl", all...).Output()
	if err != nil {
		c.t.Fatalf("curl %v: %v", args, err)
	}
	code, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	body, _ := os.ReadFile(bodyFile)
	return code, body
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}

func (c *curlClient) json(want int, path string, args ...string) map[string]any {
	c.t.Helper()
	code, body := c.do(path, args...)
	if code != want {
		c.t.Fatalf("%s %v: %d, want %d: %s", path, args, code, want, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		c.t.Fatalf("%s: not JSON: %s", path, body)
	}
	return m
}

func bearerArg(tok string) []string { return []string{"-H", "Authorization: Bearer " + tok} }

// startServe runs `redback serve` with cfg and returns the process, its
// address and its log.
func startServe(t *testing.T, bin, cfgPath string, env ...string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	// cmd.Stderr as a plain writer: Wait returns only after every line the
	// process wrote has been copied (a StderrPipe read racing Wait can lose
	// the last lines, the shutdown record among them).
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="api listening" addr=(\S+)`)
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				addrc <- m[1]
				return
			}
		}
	}()
	select {
	case addr := <-addrc:
		return cmd, addr, logs
	case <-time.After(20 * time.Second):
		t.Fatalf("redback serve did not start:\n%s", logs.String())
	}
	return nil, "", nil
}

// TestServeEndToEnd builds redback, runs `redback serve` against a real
// Redis with secrets from `redback totp init`, computes codes with
// oathtool and drives every route with curl.
func TestServeEndToEnd(t *testing.T) {
	needTools(t, "oathtool", "curl")
	bin := redbackBinary(t)
	dir := t.TempDir()
	rs := redistest.Start(t)
	rc := rs.Client(t, 0)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		rc.Set(ctx, fmt.Sprintf("user:%d", i), fmt.Sprintf("value-%d", i), 0)
	}

	adminSecret := totpInit(t, bin, "admin")
	opsSecret := totpInit(t, bin, "ops")
	out, err := exec.Command(bin, "totp", "read-token", "--name", "ci").Output()
	if err != nil {
		t.Fatal(err)
	}
	readTok := regexp.MustCompile(`rbr_\S+`).FindString(string(out))
	sum := sha256.Sum256([]byte(readTok))
	if readTok == "" || !strings.Contains(string(out), hex.EncodeToString(sum[:])) {
		t.Fatalf("read-token output:\n%s", out)
	}
	secretFile := filepath.Join(dir, "totp.secret")
	os.WriteFile(secretFile, []byte(adminSecret+"\n"), 0o600)
	storage := filepath.Join(dir, "backups")
	cfg := fmt.Sprintf(`redis:
  url: %q
storage: %q
schedule:
  enabled: false
api:
  listen: "127.0.0.1:0"
  totp_secret_file: %q
  admins:
    - name: ops
      totp_secret: "${OPS_SECRET}"
  read_tokens:
    - name: ci
      sha256: %s
  ready_max_age: 1h
  shutdown_timeout: 10s
`, rs.URL(0), storage, secretFile, hex.EncodeToString(sum[:]))
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd, addr, logs := startServe(t, bin, cfgPath, "OPS_SECRET="+opsSecret)
	c := &curlClient{t: t, base: "http://" + addr, dir: dir}
	var seen []string // codes and tokens: none may reach the logs

	// Not ready yet: no backup.
	if code, _ := c.do("/readyz"); code != 503 {
		t.Fatalf("readyz before any backup: %d", code)
	}
	// Log in: the previous step's code, so that two later ones are free.
	code := oathCode(t, adminSecret, -1)
	login := c.json(200, "/api/auth/login", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"code":"`+code+`"}`)
	tok := login["token"].(string)
	seen = append(seen, code, tok)
	// The same code again: refused.
	c.json(401, "/api/auth/login", "-X", "POST", "-d", `{"code":"`+code+`"}`)

	created := c.json(200, "/api/backup/create", append(bearerArg(tok), "-X", "POST", "-d", `{"compress": true}`)...)
	name := created["filename"].(string)
	if created["success"] != true || created["keys_count"].(float64) != 200 {
		t.Fatalf("create: %v", created)
	}
	c.json(403, "/api/backup/create", append(bearerArg(readTok), "-X", "POST", "-d", `{}`)...)

	list := c.json(200, "/api/backup/list", bearerArg(readTok)...)
	b0 := list["backups"].([]any)[0].(map[string]any)
	if b0["filename"] != name {
		t.Fatalf("list: %v", list)
	}

	// Download, then resume a cut-off download with curl -C -.
	file := filepath.Join(dir, name)
	if code, _ := c.do("/api/backup/download/"+name, append(bearerArg(readTok), "-o", file)...); code != 200 {
		t.Fatalf("download: %d", code)
	}
	whole, _ := os.ReadFile(file)
	got := sha256.Sum256(whole)
	if int64(len(whole)) != int64(b0["size"].(float64)) || hex.EncodeToString(got[:]) != b0["sha256"] {
		t.Fatalf("downloaded %d bytes, sha256 %x; list says %v", len(whole), got, b0)
	}
	os.WriteFile(file, whole[:len(whole)/2], 0o600)
	if code, _ := c.do("/api/backup/download/"+name, append(bearerArg(readTok), "-C", "-", "-o", file)...); code != 206 {
		t.Fatalf("resumed download: %d", code)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, whole) {
		t.Fatal("the resumed download differs")
	}
	// Hostile names, as curl sends them.
	for _, p := range []string{"..%2f..%2fetc%2fpasswd", "%2e%2e%2fagent.yaml", "redis_backup_20240101_000000.json.gz%00"} {
		if code, _ := c.do("/api/backup/download/"+p, append(bearerArg(tok), "--path-as-is")...); code != 400 {
			t.Fatalf("download %s: %d", p, code)
		}
	}

	// Restore without overwrite: every key exists and is skipped.
	r := c.json(200, "/api/backup/restore", append(bearerArg(tok), "-X", "POST", "-d", `{"filename":"`+name+`"}`)...)
	if r["skipped_count"].(float64) != 200 || r["restored_count"].(float64) != 0 {
		t.Fatalf("restore: %v", r)
	}
	// Lose the data, restore with overwrite (fresh code needed).
	rc.FlushAll(ctx)
	c.json(403, "/api/backup/restore", append(bearerArg(tok), "-X", "POST", "-d", `{"filename":"`+name+`","overwrite":true}`)...)
	code = oathCode(t, adminSecret, 0)
	seen = append(seen, code)
	r = c.json(200, "/api/backup/restore", append(bearerArg(tok), "-H", "X-TOTP-Code: "+code, "-X", "POST",
		"-d", `{"filename":"`+name+`","overwrite":true}`)...)
	if r["restored_count"].(float64) != 200 {
		t.Fatalf("restore with overwrite: %v", r)
	}
	if n := rc.DBSize(ctx).Val(); n != 200 {
		t.Fatalf("after the restore Redis holds %d keys", n)
	}
	if stats := c.json(200, "/api/stats", bearerArg(readTok)...); stats["total_keys"].(float64) != 200 {
		t.Fatalf("/api/stats: %v", stats)
	}
	c.json(200, "/api/backup/stats", bearerArg(tok)...)
	if code, _ := c.do("/readyz"); code != 200 {
		t.Fatalf("readyz after a backup: %d", code)
	}

	// A second admin logs in and deletes, with a fresh code of their own.
	code = oathCode(t, opsSecret, 0)
	tok2 := c.json(200, "/api/auth/login", "-X", "POST", "-d", `{"code":"`+code+`"}`)["token"].(string)
	seen = append(seen, code, tok2)
	code = oathCode(t, opsSecret, 1)
	seen = append(seen, code)
	del := c.json(200, "/api/backup/delete/"+name, append(bearerArg(tok2), "-X", "DELETE", "-H", "X-TOTP-Code: "+code)...)
	if del["success"] != true || del["filename"] != name {
		t.Fatalf("delete: %v", del)
	}
	if l := c.json(200, "/api/backup/list", bearerArg(tok)...); len(l["backups"].([]any)) != 0 {
		t.Fatalf("list after delete: %v", l)
	}

	// An async backup, followed through its job.
	job := c.json(202, "/api/backup/create", append(bearerArg(tok), "-X", "POST", "-d", `{"async":true}`)...)
	id := job["job_id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for job["status"] == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		job = c.json(200, "/api/jobs/"+id, bearerArg(readTok)...)
	}
	if job["status"] != "succeeded" || job["result"].(map[string]any)["keys_count"].(float64) != 200 {
		t.Fatalf("job: %v", job)
	}
	if code, body := c.do("/metrics"); code != 200 || !bytes.Contains(body, []byte("redback_http_requests_total")) {
		t.Fatalf("metrics: %d", code)
	}

	// Logout ends the token.
	c.json(200, "/api/auth/logout", append(bearerArg(tok), "-X", "POST")...)
	c.json(401, "/api/backup/list", bearerArg(tok)...)

	// SIGTERM: a graceful stop, exit status 0.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	text := logs.String()
	if !strings.Contains(text, `msg=stopped`) || !strings.Contains(text, "audit=true") {
		t.Fatalf("log lacks the shutdown or the audit records:\n%s", text)
	}
	for _, s := range append(seen, adminSecret, opsSecret, readTok) {
		if strings.Contains(text, s) {
			t.Fatalf("a secret, token or code reached the log: %q", s)
		}
	}
}

// TestServeRefusesBadSecrets: no secret, a malformed one and a short one
// stop `redback serve` before it listens (exit status 2), without echoing
// the secret.
func TestServeRefusesBadSecrets(t *testing.T) {
	bin := redbackBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte("storage: "+filepath.Join(dir, "b")+"\napi:\n  listen: 127.0.0.1:0\n"), 0o600)
	for _, c := range []struct{ secret, want string }{
		{"", "no TOTP secret"},
		{"this is not base32!!", "not valid base32"},
		{"JBSWY3DPEHPK3PXP", "too short"},
	} {
		cmd := exec.Command(bin, "serve", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "REDBACK_TOTP_SECRET="+c.secret)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("secret %q: %v\n%s", c.secret, err, out)
		}
		if c.secret != "" && strings.Contains(string(out), c.secret) {
			t.Errorf("the secret is echoed: %s", out)
		}
	}
}

// serveSlow starts `redback serve` over a Redis of keys keys whose backups
// run at kps keys per second, with the given shutdown timeout; it returns
// a client, a token, the process, its log and the storage folder.
func serveSlow(t *testing.T, keys int, kps float64, timeout string) (*curlClient, string, *exec.Cmd, *syncBuffer, string) {
	t.Helper()
	needTools(t, "oathtool", "curl")
	bin := redbackBinary(t)
	dir := t.TempDir()
	rs := redistest.Start(t)
	rc := rs.Client(t, 0)
	pipe := rc.Pipeline()
	for i := 0; i < keys; i++ {
		pipe.Set(context.Background(), fmt.Sprintf("k:%d", i), i, 0)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	secret := totpInit(t, bin, "admin")
	storage := filepath.Join(dir, "backups")
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`redis:
  url: %q
storage: %q
backup:
  keys_per_second: %v
  scan_count: 20
schedule:
  enabled: false
api:
  listen: "127.0.0.1:0"
  shutdown_timeout: %s
`, rs.URL(0), storage, kps, timeout)), 0o600)
	cmd, addr, logs := startServe(t, bin, cfgPath, "REDBACK_TOTP_SECRET="+secret)
	c := &curlClient{t: t, base: "http://" + addr, dir: dir}
	tok := c.json(200, "/api/auth/login", "-X", "POST", "-d", `{"code":"`+oathCode(t, secret, 0)+`"}`)["token"].(string)
	return c, tok, cmd, logs, storage
}

// stopServe sends SIGTERM and waits for a clean exit.
func stopServe(t *testing.T, cmd *exec.Cmd, logs *syncBuffer, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(max):
		t.Fatalf("serve did not stop within %s:\n%s", max, logs.String())
	}
	return time.Since(start)
}

// archives lists the archive files in a storage folder.
func archives(t *testing.T, storage string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(storage, "redis_backup_*"))
	return m
}

// TestServeShutdownLetsAJobFinish: SIGTERM during a backup waits for it.
func TestServeShutdownLetsAJobFinish(t *testing.T) {
	c, tok, cmd, logs, storage := serveSlow(t, 800, 400, "30s") // ~1-2 s
	c.json(202, "/api/backup/create", append(bearerArg(tok), "-X", "POST", "-d", `{"async":true}`)...)
	took := stopServe(t, cmd, logs, 30*time.Second)
	t.Logf("stopped in %s:\n%s", took, logs.String())
	if a := archives(t, storage); len(a) != 1 {
		t.Fatalf("after a graceful stop: archives %v (stopped in %s)\n%s", a, took, logs.String())
	}
}

// TestServeShutdownCancelsALongJob: past shutdown_timeout the backup is
// cancelled and leaves no archive.
func TestServeShutdownCancelsALongJob(t *testing.T) {
	c, tok, cmd, logs, storage := serveSlow(t, 3000, 200, "1s") // ~14 s
	c.json(202, "/api/backup/create", append(bearerArg(tok), "-X", "POST", "-d", `{"async":true}`)...)
	time.Sleep(300 * time.Millisecond)
	took := stopServe(t, cmd, logs, 10*time.Second)
	if a := archives(t, storage); len(a) != 0 {
		t.Fatalf("a cancelled backup left %v", a)
	}
	if !strings.Contains(logs.String(), "cancelled at the shutdown timeout") {
		t.Fatalf("no word of the cancelled job (stopped in %s):\n%s", took, logs.String())
	}
	entries, _ := os.ReadDir(storage)
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left behind in the storage: %s", e.Name())
		}
	}
}
