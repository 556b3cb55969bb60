package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// Test secrets (base32, 20 bytes each).
const (
	secretAdmin = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	secretBob   = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	readToken   = "machine-token-0123456789abcdef"
)

// fakeClock is a settable clock shared by the API under test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// harness is the API over a real agent, a throw-away Redis and a storage
// folder, with a fake clock for the TOTP side.
type harness struct {
	t       *testing.T
	redis   *redistest.Server
	storage string
	svc     *agent.Service
	jobs    *jobs.Manager
	api     *Server
	clock   *fakeClock
	logs    *syncBuffer
	// secrets seen by the test: none may appear in logs.
	secrets []string
}

type harnessOpt func(*config.Config, *Options)

func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, redis: redistest.Start(t), storage: t.TempDir(), logs: &syncBuffer{},
		clock: &fakeClock{t: time.Now().Truncate(time.Second)}}
	cfg := config.Default()
	cfg.Redis.URL = h.redis.URL(0)
	cfg.Storage = h.storage
	o := Options{
		Admins:     []Admin{{Name: "admin", Secret: secretAdmin}, {Name: "bob", Secret: secretBob}},
		ReadTokens: []ReadToken{mustReadToken(t, "monitor", readToken)},
		Now:        h.clock.Now,
		StateFile:  filepath.Join(t.TempDir(), "api-state.json"),
	}
	for _, f := range opts {
		f(&cfg, &o)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Log = log
	svc, err := agent.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.jobs = jobs.New(jobs.Options{})
	h.api, err = New(svc, h.jobs, o)
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = []string{secretAdmin, secretBob, readToken}
	t.Cleanup(func() {
		_ = h.jobs.Shutdown(context.Background())
		_ = svc.Close()
		logs := h.logs.String()
		for _, s := range h.secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("a secret, token or code reached the logs: %q", s)
			}
		}
	})
	return h
}

func mustReadToken(t *testing.T, name, tok string) ReadToken {
	t.Helper()
	sum := sha256Hex(tok)
	rt, err := parseReadToken(name, sum)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// code returns the TOTP code of secret at the fake clock's time plus
// offset steps.
func (h *harness) code(secret string, offset int) string {
	h.t.Helper()
	c, err := totp.GenerateCode(secret, h.clock.Now().Add(time.Duration(offset)*30*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// login logs in with the admin's current code and returns the token.
func (h *harness) login(secret string) string {
	h.t.Helper()
	res := h.do("POST", "/api/auth/login", `{"code":"`+h.code(secret, 0)+`"}`, nil)
	if res.code != http.StatusOK {
		h.t.Fatalf("login: %d %s", res.code, res.body)
	}
	tok, _ := res.json()["token"].(string)
	if tok == "" {
		h.t.Fatalf("login gave no token: %s", res.body)
	}
	h.secrets = append(h.secrets, tok)
	return tok
}

// response is a recorded answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	return m
}

// do sends a request through the whole router. headers may hold
// "Authorization" etc.; a token alone may be given as "Bearer".
func (h *harness) do(method, target, body string, headers map[string]string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.api.Handler().ServeHTTP(rec, req)
	return response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// auth returns the headers that carry token.
func auth(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// with adds a header to a header map.
func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

// fill writes generated keys into database 0.
func (h *harness) fill(keys int) {
	h.t.Helper()
	if err := datagen.Fill(context.Background(), h.redis.Client(h.t, 0), datagen.Spec{Keys: keys, TTLPercent: 10, Seed: 7}); err != nil {
		h.t.Fatal(err)
	}
}

// storageState lists every file under the storage folder with its size
// and modification time, to prove a request changed nothing.
func (h *harness) storageState() string {
	h.t.Helper()
	var lines []string
	err := filepath.WalkDir(h.storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, p+" "+info.ModTime().String()+" "+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// redisState is the server's DEBUG DIGEST (changes with any write).
func (h *harness) redisState() string {
	h.t.Helper()
	s, err := h.redis.Client(h.t, 0).Do(context.Background(), "DEBUG", "DIGEST").Text()
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// backup takes a backup through the API and returns its file name.
func (h *harness) backup(token string) string {
	h.t.Helper()
	res := h.do("POST", "/api/backup/create", `{}`, auth(token))
	if res.code != http.StatusOK {
		h.t.Fatalf("create: %d %s", res.code, res.body)
	}
	name, _ := res.json()["filename"].(string)
	return name
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// writeFile creates a file in the storage folder.
func (h *harness) writeFile(name string, data []byte) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.storage, name), data, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		p, err := parseProxy(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
