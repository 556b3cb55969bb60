package console_test

// The console in a real browser: Debian's Chromium, headless, driven by
// chromedp, against the real `redback serve` binary and a real
// redis-server. Screenshots go to $REDBACK_ARTIFACTS (default
// $TMPDIR/redback-artifacts/console). A missing Chromium fails the test.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

// Secrets of the two admins (base32, 20 bytes): the desktop run logs in
// as admin, the phone run as ops, so that each has its own codes.
const (
	secretAdmin = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	secretOps   = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
)

// chromiumPath finds the browser: $REDBACK_CHROMIUM or /usr/bin/chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("REDBACK_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Chromium is not installed at %s (scripts/install-test-deps.sh installs Debian's chromium): %v", p, err)
	}
	return p
}

// artifacts is the folder screenshots are saved in.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REDBACK_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "redback-artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.png")) // a past run's
	for _, f := range old {
		_ = os.Remove(f)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// codes hands out TOTP codes that the agent accepts once each: every code
// is of a later time step than the last one given for the same secret,
// within the step of clock skew the agent allows.
type codes struct {
	mu   sync.Mutex
	last map[string]int64
}

func (c *codes) next(t *testing.T, secret string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Unix() / 30
	step := max(c.last[secret]+1, now-1)
	for step > time.Now().Unix()/30+1 { // all used up: wait for the clock
		time.Sleep(time.Second)
	}
	// A code of the previous step must not expire on its way: with under
	// 3 s left of the step, take the current one.
	if step == now-1 && time.Now().Unix()%30 >= 27 {
		step = now
	}
	c.last[secret] = step
	code, err := totp.GenerateCode(secret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// agent is a running `redback serve`.
type agent struct {
	base    string
	storage string
	redis   *redis.Client
	bin     string // the redback binary, and its configuration
	cfgPath string
}

// cli runs the redback binary with the agent's configuration.
func (a *agent) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(a.bin, append([]string{"--config", a.cfgPath}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redback %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// startAgent builds redback, fills a Redis with keys, and serves.
func startAgent(t *testing.T) *agent {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "redback")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/redback-dev/redback/cmd/redback").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rs := redistest.Start(t)
	rc := rs.Client(t, 0)
	ctx := context.Background()
	pipe := rc.Pipeline()
	for i := 0; i < 600; i++ {
		pipe.Set(ctx, fmt.Sprintf("user:%d", i), fmt.Sprintf("value-%d", i), 0)
	}
	pipe.HSet(ctx, "user:42:profile", "name", "Ada", "city", "London")
	pipe.Set(ctx, "user:42:session", "s3cr3t", time.Hour)
	pipe.RPush(ctx, "queue:jobs", "a", "b", "c")
	pipe.ZAdd(ctx, "scores", redis.Z{Score: 1.5, Member: "ada"})
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "1-1", Values: []any{"kind", "login"}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rc.XGroupCreate(ctx, "events", "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(dir, "backups")
	cfg := fmt.Sprintf(`redis:
  url: %q
storage: %q
backup:
  keys_per_second: 400
  scan_count: 20
schedule:
  enabled: false
api:
  listen: "127.0.0.1:0"
  totp_secret: %q
  admins:
    - name: ops
      totp_secret: %q
  ready_max_age: 1h
  shutdown_timeout: 5s
`, rs.URL(0), storage, secretAdmin, secretOps)
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the process holds its own copy
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`msg="api listening" addr=(\S+)`)
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logs, _ := os.ReadFile(logPath)
		if m := re.FindSubmatch(logs); m != nil {
			return &agent{base: "http://" + string(m[1]), storage: storage, redis: rc, bin: bin, cfgPath: cfgPath}
		}
		if time.Now().After(end) {
			t.Fatalf("redback serve did not start:\n%s", logs)
		}
	}
}

// session is one browser tab on the console, with what it must never do
// recorded: requests to another origin, script errors, policy violations.
type session struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string
	prefix string

	mu         sync.Mutex
	foreign    []string
	exceptions []string
}

func newSession(t *testing.T, base, shots, prefix string, emulate chromedp.Action[chromedp.Void]) *session {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	s := &session{t: t, ctx: ctx, base: base, shots: shots, prefix: prefix}
	// The first run starts the browser, on a context without a timeout
	// (a timeout there would end the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	s.run("start the browser", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{})
		return err
	}), emulate, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		// Every Content-Security-Policy violation is kept for the end.
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`})
		return err
	}))
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u := e.Request.URL
			if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "blob:"+base+"/") && !strings.HasPrefix(u, "data:") {
				s.mu.Lock()
				s.foreign = append(s.foreign, u)
				s.mu.Unlock()
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if ex := e.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
				msg += " " + ex.Description
			}
			s.mu.Lock()
			s.exceptions = append(s.exceptions, msg)
			s.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs actions within 30 s, failing the test with what as context.
func (s *session) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		s.fail(what, err)
	}
}

// fail ends the test with the page's text and a screenshot.
func (s *session) fail(what string, err error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	s.shot("failed")
	s.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

// shot saves a full-page screenshot as PREFIX-NAME.png.
func (s *session) shot(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(s.shots, s.prefix+"-"+name+".png"), png, 0o644); err != nil {
		s.t.Error(err)
	}
}

// text is the text of the first element sel (a CSS selector) matches.
func (s *session) text(sel string) string {
	s.t.Helper()
	return value(s, "read "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// value runs one action within 30 s and returns its value.
func value[T any](s *session, what string, a chromedp.Action[T]) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		s.fail(what, err)
	}
	return v
}

// eval evaluates a script and returns its value.
func eval[T any](s *session, js string) T {
	s.t.Helper()
	return value(s, "evaluate "+js, chromedp.Evaluate[T](js))
}

// waitText waits until the element sel holds want.
func (s *session) waitText(sel, want string) {
	s.t.Helper()
	js := fmt.Sprintf(`[...document.querySelectorAll(%q)].some((e) => e.offsetParent !== null && e.textContent.includes(%q))`, sel, want)
	s.run(fmt.Sprintf("wait for %q in %s", want, sel), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
		return err
	}))
}

// button is the XPath of the visible button (or link) whose text is label.
func button(label string) string {
	return fmt.Sprintf(`//*[(self::button or self::a) and normalize-space(.)=%q and not(ancestor-or-self::*[@hidden]) and not(ancestor::dialog[not(@open)])]`, label)
}

// clean checks what the page must never do.
func (s *session) clean() {
	s.t.Helper()
	csp := eval[[]string](s, `window.__csp`)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(csp) > 0 {
		s.t.Errorf("Content-Security-Policy violations: %v", csp)
	}
	if len(s.foreign) > 0 {
		s.t.Errorf("requests beyond the agent: %v", s.foreign)
	}
	if len(s.exceptions) > 0 {
		s.t.Errorf("script errors: %v", s.exceptions)
	}
}

// unlabelled lists the form fields of the page that have no accessible
// name (a label, aria-label or aria-labelledby).
const unlabelled = `[...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map((e) => e.id || e.name || e.outerHTML)`

func (s *session) checkLabels(where string) {
	s.t.Helper()
	bad := eval[[]string](s, unlabelled)
	if len(bad) > 0 {
		s.t.Errorf("%s: fields without a label: %v", where, bad)
	}
	if low := eval[[]string](s, lowContrast); len(low) > 0 {
		s.t.Errorf("%s: text below WCAG AA contrast: %v", where, low)
	}
}

// lowContrast lists the visible texts (of the open dialog, when one is
// open) whose colour on their background is below WCAG AA: 4.5:1, or 3:1
// for large text (24px, or 18.66px bold). Disabled controls are exempt.
const lowContrast = `(() => {
  const rgb = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const v = m[1].split(',').map(Number); return { r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1 }; };
  const lum = (c) => { const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255 }; };
  const root = document.querySelector('dialog[open]') || document.body;
  const out = [];
  for (const e of root.querySelectorAll('*')) {
    if (e.closest('svg') || e.closest(':disabled') || !e.offsetParent && e.tagName !== 'DIALOG') continue;
    const text = [...e.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join('');
    if (!text) continue;
    const st = getComputedStyle(e);
    const fg = rgb(st.color), b = bg(e);
    const l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) out.push(text.slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return out;
})()`

func (s *session) login(c *codes, secret string) {
	s.t.Helper()
	s.run("open the console", chromedp.Navigate(s.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-code")))
	s.shot("01-login")
	s.run("log in", chromedp.SendKeys(chromedp.CSS("#login-code"), c.next(s.t, secret)),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS(".card")))
}

// TestConsoleInBrowser walks through the console as an admin would, on a
// desktop and on a phone-sized screen.
func TestConsoleInBrowser(t *testing.T) {
	shots := artifacts(t)
	a := startAgent(t)
	c := &codes{last: map[string]int64{}}
	ctx := context.Background()

	t.Run("desktop", func(t *testing.T) {
		s := newSession(t, a.base, shots, "desktop", chromedp.EmulateViewport(1280, 900))
		downloads := t.TempDir()
		s.run("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
			return err
		}))
		s.login(c, secretAdmin)
		if got := s.text(".card"); !strings.Contains(got, "no backup yet") || !strings.Contains(got, "Needs attention") {
			t.Fatalf("dashboard before any backup: %q", got)
		}
		s.checkLabels("dashboard")
		s.shot("02-dashboard-empty")

		// Back up now, from Operations: live progress, then the history.
		s.run("operations", chromedp.Click(chromedp.Search(button("Operations"))), chromedp.WaitVisible(chromedp.CSS("table.history")))
		s.run("back up now", chromedp.Click(chromedp.Search(`//button[starts-with(normalize-space(.), 'Back up')]`)),
			chromedp.WaitVisible(chromedp.CSS("#activity progress")))
		figures := value(s, "progress figures", chromedp.Poll[string](`(() => { const f = document.querySelector('#activity .job-figures');
  return f && / of 605 keys/.test(f.textContent) && /keys\/s/.test(f.textContent) && !/^0 of/.test(f.textContent) ? f.textContent : null })()`))
		s.shot("03-backup-progress")
		s.waitText("#activity .job.succeeded", "Done: 605 keys")
		s.waitText("table.history tbody", "succeeded")
		if got := s.text("table.history tbody tr"); !strings.Contains(got, "backup") || !strings.Contains(got, "admin") || !strings.Contains(got, "redis_backup_") {
			t.Fatalf("history row: %q", got)
		}
		s.shot("04-operations")
		t.Logf("progress seen while the backup ran: %s", figures)

		// The archive is listed; verify it; download it.
		s.run("archives", chromedp.Click(chromedp.Search(button("Archives"))), chromedp.WaitVisible(chromedp.CSS("table.archives tbody tr[data-name]")))
		name := eval[string](s, `document.querySelector('table.archives tbody tr[data-name]').dataset.name`)
		if !strings.HasPrefix(name, "redis_backup_") {
			t.Fatalf("listed archive %q", name)
		}
		s.run("verify", chromedp.Click(chromedp.Search(`//button[normalize-space(.)='Verify']`)))
		s.waitText("#activity .job.succeeded", "Verified: 605 keys")
		s.waitText("table.archives tbody", "yes")
		s.run("download", chromedp.Click(chromedp.Search(`//button[normalize-space(.)='Download']`)))
		want, err := os.ReadFile(filepath.Join(a.storage, name))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if got, err = os.ReadFile(filepath.Join(downloads, name)); err == nil && len(got) == len(want) {
				break
			}
		}
		if string(got) != string(want) {
			t.Fatalf("downloaded %d bytes, the archive has %d", len(got), len(want))
		}
		s.checkLabels("archives")
		// Sorting works from the keyboard: focus a column's button, press Enter.
		s.run("sort by size with the keyboard", chromedp.Focus(chromedp.CSS("table.archives th:nth-child(3) button")), chromedp.KeyEvent("\r"))
		if got := eval[string](s, `document.querySelector('table.archives th:nth-child(3)').getAttribute('aria-sort')`); got != "ascending" {
			t.Fatalf("after Enter on the Size column: aria-sort %q", got)
		}
		if got := eval[string](s, `document.activeElement.textContent`); !strings.HasPrefix(got, "Size") {
			t.Fatalf("the focus moved to %q", got)
		}
		s.shot("05-archives")
		if got := s.text("table.archives tbody"); !strings.Contains(got, "never drilled") {
			t.Fatalf("an archive never drilled: %q", got)
		}
		// A restore drill (into a scratch server redback starts) and a pin
		// with a note, from the command line: the console shows both.
		server, err := redistest.Binary()
		if err != nil {
			t.Fatal(err)
		}
		a.cli(t, "drill", name, "--server-binary", server)
		a.cli(t, "pin", name, "--note", "before the 14:00 deploy")
		// The dashboard now shows the archive, verified and drilled, and its charts.
		s.run("dashboard", chromedp.Click(chromedp.Search(button("Dashboard"))), chromedp.WaitVisible(chromedp.CSS(".chart svg")))
		if got := s.text(".card"); !strings.Contains(got, "Healthy") || !strings.Contains(got, name) || !regexp.MustCompile(`Verified\s*yes`).MatchString(got) ||
			!regexp.MustCompile(`Restore drill\s*restorable \(passed\)`).MatchString(got) {
			t.Fatalf("dashboard after a verified and drilled backup: %q", got)
		}
		if n := eval[int](s, `document.querySelectorAll('.chart svg[role=img]').length`); n != 3 {
			t.Fatalf("%d charts drawn, want 3", n)
		}
		s.shot("05b-dashboard")
		s.run("archives again", chromedp.Click(chromedp.Search(button("Archives"))), chromedp.WaitVisible(chromedp.CSS("table.archives tbody tr[data-name]")))
		if got := s.text("table.archives tbody"); !strings.Contains(got, "pinned") || !strings.Contains(got, "before the 14:00 deploy") ||
			!strings.Contains(got, "restorable (passed)") {
			t.Fatalf("the archive's row after a drill and a pin: %q", got)
		}
		s.shot("05c-drilled-pinned")
		a.cli(t, "unpin", name) // a pinned archive cannot be deleted, as the test does later

		// Browse it: find one key and look at it.
		s.run("browse", chromedp.Click(chromedp.Search(`//a[normalize-space(.)='Browse']`)), chromedp.WaitVisible(chromedp.CSS("table.keys tbody tr")))
		s.run("search user:42:*", chromedp.SendKeys(chromedp.CSS("#browse-match"), "user:42:*"),
			chromedp.Click(chromedp.Search(button("Search"))))
		s.waitText("table.keys caption", "2 keys")
		s.run("show user:42:profile", chromedp.Click(chromedp.Search(button("user:42:profile"))))
		s.waitText(".detail", "London")
		if got := s.text(".detail"); !strings.Contains(got, "hash") || !strings.Contains(got, "Ada") {
			t.Fatalf("key detail: %q", got)
		}
		s.checkLabels("archive browser")
		s.shot("06-browser")

		// Lose that key, and change another; restore only the lost one:
		// dry run first (nothing written), then for real.
		if err := a.redis.Del(ctx, "user:42:profile").Err(); err != nil {
			t.Fatal(err)
		}
		a.redis.Set(ctx, "user:1", "changed", 0)
		s.run("select the key", chromedp.Click(chromedp.CSS(`input[aria-label="Select user:42:profile"]`)))
		s.waitText("#browse-selected", "1 selected")
		s.run("open the restore dialog", chromedp.Click(chromedp.CSS("#restore-selected")), chromedp.WaitVisible(chromedp.CSS("#restore-dry")))
		match := eval[string](s, `document.getElementById('restore-match').value`)
		if match != "user:42:profile" {
			t.Fatalf("the dialog's pattern is %q", match)
		}
		s.checkLabels("restore dialog")
		s.run("dry run", chromedp.Click(chromedp.CSS("#restore-dry")))
		s.waitText("#restore-report", "Dry run: nothing was written")
		dry := s.text("#restore-report")
		if n := a.redis.Exists(ctx, "user:42:profile").Val(); n != 0 {
			t.Fatal("the dry run wrote the key")
		}
		if !regexp.MustCompile(`Would restore / restored\s*1\b`).MatchString(dry) || !regexp.MustCompile(`Left out by the selection\s*604\b`).MatchString(dry) {
			t.Fatalf("dry run report: %q", dry)
		}
		s.shot("07-dry-run")
		s.run("restore for real", chromedp.Click(chromedp.CSS("#restore-real")))
		s.waitText("#restore-report", "Restored")
		if v := a.redis.HGetAll(ctx, "user:42:profile").Val(); v["name"] != "Ada" || v["city"] != "London" || len(v) != 2 {
			t.Fatalf("restored hash: %v", v)
		}
		if v := a.redis.Get(ctx, "user:1").Val(); v != "changed" {
			t.Fatalf("a key outside the selection was restored: user:1 = %q", v)
		}
		s.shot("08-restored")
		s.run("close the dialog", chromedp.Click(chromedp.CSS("#restore-close")), chromedp.WaitNotVisible(chromedp.CSS("#restore")))

		// The session ends under the admin's feet (the token revoked): the
		// next search asks for a new code, then goes on with what was typed.
		status := value(s, "revoke the token", chromedp.Evaluate[int](`fetch('/api/auth/logout', {method: 'POST', headers: {Authorization: 'Bearer ' + state.token}}).then((r) => r.status)`,
			func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
		if status != 200 {
			t.Fatalf("logout behind the page's back: %d", status)
		}
		s.run("search again", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[chromedp.Void](`document.getElementById('browse-match').value = ''`)(ctx, t)
			return err
		}), chromedp.SendKeys(chromedp.CSS("#browse-match"), "queue:*"),
			chromedp.Click(chromedp.Search(button("Search"))), chromedp.WaitVisible(chromedp.CSS("#reauth-code")))
		s.shot("09-session-ended")
		s.run("log in again", chromedp.SendKeys(chromedp.CSS("#reauth-code"), c.next(t, secretAdmin)),
			chromedp.Click(chromedp.CSS(`#reauth button[type=submit]`)), chromedp.WaitNotVisible(chromedp.CSS("#reauth")))
		s.waitText("table.keys tbody", "queue:jobs")
		pattern := eval[string](s, `document.getElementById('browse-match').value`)
		if pattern != "queue:*" {
			t.Fatalf("after the new login the pattern is %q", pattern)
		}

		// Delete it: a confirmation with a fresh code.
		s.run("archives again", chromedp.Click(chromedp.Search(button("← Archives"))), chromedp.WaitVisible(chromedp.CSS("table.archives tbody tr[data-name]")))
		s.run("delete", chromedp.Click(chromedp.Search(`//button[normalize-space(.)='Delete']`)), chromedp.WaitVisible(chromedp.CSS("#confirm-code")))
		s.run("wrong code", chromedp.SendKeys(chromedp.CSS("#confirm-code"), "000000"), chromedp.Click(chromedp.CSS("#confirm-ok")))
		s.waitText("#confirm-error", "invalid or already used")
		if _, err := os.Stat(filepath.Join(a.storage, name)); err != nil {
			t.Fatalf("a wrong code deleted the archive: %v", err)
		}
		s.shot("10-delete-confirm")
		s.run("fresh code", chromedp.SendKeys(chromedp.CSS("#confirm-code"), c.next(t, secretAdmin)), chromedp.Click(chromedp.CSS("#confirm-ok")),
			chromedp.WaitNotVisible(chromedp.CSS("#confirm")))
		s.waitText("table.archives caption", "0 of 0 archives")
		if _, err := os.Stat(filepath.Join(a.storage, name)); !os.IsNotExist(err) {
			t.Fatalf("the archive is still stored: %v", err)
		}
		s.shot("11-deleted")
		s.run("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-code")))
		s.clean()
	})

	t.Run("phone", func(t *testing.T) {
		s := newSession(t, a.base, shots, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
		s.login(c, secretOps)
		s.run("back up from the dashboard", chromedp.Click(chromedp.Search(button("Back up now"))))
		s.waitText("#activity .job.succeeded", "Done: 605 keys")
		s.waitText(".card", "Healthy")
		s.shot("02-dashboard")
		s.run("archives", chromedp.Click(chromedp.Search(button("Archives"))), chromedp.WaitVisible(chromedp.CSS("table.archives tbody tr[data-name]")))
		s.shot("03-archives")
		s.run("browse", chromedp.Click(chromedp.Search(`//a[normalize-space(.)='Browse']`)), chromedp.WaitVisible(chromedp.CSS("table.keys tbody tr")),
			chromedp.SendKeys(chromedp.CSS("#browse-match"), "user:42:*"), chromedp.Click(chromedp.Search(button("Search"))))
		s.waitText("table.keys caption", "2 keys")
		s.run("show the session key", chromedp.Click(chromedp.Search(button("user:42:session"))))
		s.waitText(".detail", "s3cr3t")
		s.shot("04-browser")
		// Overwrite a changed key: the dry run needs no code, the real
		// restore asks for a fresh one in the dialog.
		a.redis.Set(ctx, "user:42:session", "hijacked", 0)
		s.run("restore this key", chromedp.Click(chromedp.Search(button("Restore this key"))), chromedp.WaitVisible(chromedp.CSS("#restore-dry")),
			chromedp.Click(chromedp.CSS(`input[name="restore-mode"][value="overwrite"]`)), chromedp.WaitVisible(chromedp.CSS("#restore-code")),
			chromedp.Click(chromedp.CSS("#restore-dry")))
		s.waitText("#restore-report", "Dry run: nothing was written")
		if v := a.redis.Get(ctx, "user:42:session").Val(); v != "hijacked" {
			t.Fatalf("the dry run wrote: %q", v)
		}
		s.run("restore without a code", chromedp.Click(chromedp.CSS("#restore-real")))
		s.waitText("#restore-error", "fresh six-digit code")
		s.run("restore with a code", chromedp.SendKeys(chromedp.CSS("#restore-code"), c.next(t, secretOps)), chromedp.Click(chromedp.CSS("#restore-real")))
		s.waitText("#restore-report", "Restored")
		if v := a.redis.Get(ctx, "user:42:session").Val(); v != "s3cr3t" {
			t.Fatalf("after the restore: %q", v)
		}
		if ttl := a.redis.PTTL(ctx, "user:42:session").Val(); ttl <= 0 {
			t.Fatalf("the restored key lost its TTL: %v", ttl)
		}
		s.shot("05-restored")
		overflow := eval[bool](s, `document.documentElement.scrollWidth > window.innerWidth + 1`)
		if overflow {
			t.Error("the restore dialog's page is wider than the phone")
		}
		s.run("close the dialog", chromedp.Click(chromedp.CSS("#restore-close")), chromedp.WaitNotVisible(chromedp.CSS("#restore")))
		for _, view := range []string{"Dashboard", "Archives", "Operations"} {
			s.run(view, chromedp.Click(chromedp.Search(button(view))))
			s.waitText("h1", map[string]string{"Dashboard": "Dashboard", "Archives": "Archives of", "Operations": "Operations"}[view])
			overflow = eval[bool](s, `document.documentElement.scrollWidth > window.innerWidth + 1`)
			if overflow {
				t.Errorf("%s is wider than the phone", view)
			}
		}
		s.shot("06-operations")
		s.clean()
	})
}
