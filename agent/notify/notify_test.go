package notify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
)

// noSleep records the waits instead of sleeping.
type noSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (n *noSleep) sleep(_ context.Context, d time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waits = append(n.waits, d)
	return nil
}

func okEvent() Event {
	res := agent.BackupResult{Success: true, Filename: "redis_backup_20260301_030000.json.gz", Size: 2048, SizeMB: 0, KeysCount: 42, Compressed: true}
	return NewEvent("main", "host1", time.Date(2026, 3, 1, 3, 0, 1, 0, time.UTC), res, nil)
}

func TestWebhookRetriesAndSigns(t *testing.T) {
	const secret = "s3cr3t-hmac-key"
	var (
		mu     sync.Mutex
		bodies [][]byte
		sigs   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		sigs = append(sigs, r.Header.Get(SignatureHeader))
		n := len(bodies)
		mu.Unlock()
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
		}
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	wh, err := NewWebhook(config.Webhook{URL: srv.URL + "/hook/T0KEN", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	wh.Backoff.Sleep = ns.sleep
	if err := wh.Notify(context.Background(), okEvent()); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 3 {
		t.Fatalf("%d requests, want 3 (503, 503, 200)", len(bodies))
	}
	if fmt.Sprint(ns.waits) != "[1s 2s]" {
		t.Fatalf("waits %v, want [1s 2s]", ns.waits)
	}
	// The receiver's check: HMAC-SHA256 of the raw body.
	for i, b := range bodies {
		if !hmac.Equal([]byte(sigs[i]), []byte(Sign([]byte(secret), b))) || !strings.HasPrefix(sigs[i], "sha256=") {
			t.Fatalf("request %d: signature %q does not verify", i, sigs[i])
		}
		if hmac.Equal([]byte(sigs[i]), []byte(Sign([]byte("wrong"), b))) {
			t.Fatal("a wrong key verifies")
		}
	}
	var got Event
	if err := json.Unmarshal(bodies[2], &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != Succeeded || !got.Success || got.Target != "main" || got.Result.KeysCount != 42 || got.Result.Filename == "" {
		t.Fatalf("body %s", bodies[2])
	}
}

func TestWebhookGivesUpBoundedAndRedacts(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	wh, err := NewWebhook(config.Webhook{URL: srv.URL + "/services/T000/B000/XXXXSECRET?token=abc", MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	wh.Backoff.Sleep = ns.sleep
	err = wh.Notify(context.Background(), okEvent())
	if err == nil || n != 4 || len(ns.waits) != 3 {
		t.Fatalf("err %v after %d tries, waits %v", err, n, ns.waits)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "token") {
		t.Fatalf("error leaks the URL: %v", err)
	}
}

func TestWebhookPermanentAndRetryAfter(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if r.URL.Path == "/gone" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if n == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	wh, _ := NewWebhook(config.Webhook{URL: srv.URL + "/gone"})
	ns := &noSleep{}
	wh.Backoff.Sleep = ns.sleep
	if err := wh.Notify(context.Background(), okEvent()); err == nil || n != 1 {
		t.Fatalf("404: err %v after %d tries (want one, no retry)", err, n)
	}
	n = 0
	wh, _ = NewWebhook(config.Webhook{URL: srv.URL + "/ok"})
	wh.Backoff.Sleep = ns.sleep
	if err := wh.Notify(context.Background(), okEvent()); err != nil || n != 2 {
		t.Fatalf("429: err %v after %d tries", err, n)
	}
	if ns.waits[len(ns.waits)-1] != 7*time.Second {
		t.Fatalf("Retry-After not honoured: %v", ns.waits)
	}
}

func TestSlackPayload(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	wh, _ := NewWebhook(config.Webhook{URL: srv.URL, Format: "slack"})
	e := NewEvent("main", "", time.Now(), agent.BackupResult{}, errors.New("dial tcp: connection refused"))
	if err := wh.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	text, _ := m["text"].(string)
	if len(m) != 1 || !strings.Contains(text, "FAILED") || !strings.Contains(text, "connection refused") {
		t.Fatalf("slack body %s", body)
	}
}

func TestHeartbeatOnlyAfterSuccess(t *testing.T) {
	var pings int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pings++ }))
	defer srv.Close()
	set, err := FromConfig(config.Notify{Heartbeat: config.Heartbeat{URL: srv.URL + "/ping/uuid"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fail := NewEvent("main", "", time.Now(), agent.BackupResult{}, errors.New("boom"))
	if err := set.Notify(context.Background(), fail); err != nil || pings != 0 {
		t.Fatalf("failure: err %v, %d pings", err, pings)
	}
	if err := set.Notify(context.Background(), okEvent()); err != nil || pings != 1 {
		t.Fatalf("success: err %v, %d pings", err, pings)
	}
}

func TestFromConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  config.Notify
		want string
	}{
		{config.Notify{Webhooks: []config.Webhook{{URL: "ftp://x"}}}, "notify.webhooks[0]: url"},
		{config.Notify{Webhooks: []config.Webhook{{URL: "https://x", Format: "xml"}}}, "format"},
		{config.Notify{Webhooks: []config.Webhook{{URL: "https://x", On: []string{"always"}}}}, "notify.webhooks[0].on"},
		{config.Notify{Email: config.Email{Host: "smtp.example.com", From: "a@example.com"}}, "notify.email: to"},
		{config.Notify{Email: config.Email{Host: "smtp.example.com", From: "nope", To: []string{"b@example.com"}}}, "from"},
		{config.Notify{Email: config.Email{Host: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"}, TLS: "ssl3"}}, "tls"},
		{config.Notify{Heartbeat: config.Heartbeat{URL: "hc-ping.com/x"}}, "notify.heartbeat: url"},
	} {
		_, err := FromConfig(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
	s, err := FromConfig(config.Notify{
		Webhooks: []config.Webhook{{URL: "https://hooks.example.com/x", Secret: "k"}},
		Email:    config.Email{Host: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"}},
	}, slog.New(slog.DiscardHandler))
	if err != nil || s.Len() != 2 {
		t.Fatalf("%v %d", err, s.Len())
	}
}

// smtpServer accepts one message over plain SMTP with AUTH PLAIN; it
// answers 451 to the first DATA when failFirst is set.
type smtpServer struct {
	ln        net.Listener
	failFirst bool
	mu        sync.Mutex
	auth      string
	from      string
	rcpts     []string
	data      string
	sessions  int
}

func startSMTP(t *testing.T, failFirst bool) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, failFirst: failFirst}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	s.mu.Lock()
	s.sessions++
	session := s.sessions
	s.mu.Unlock()
	r := bufio.NewReader(c)
	say := func(l string) { fmt.Fprintf(c, "%s\r\n", l) }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-test")
			say("250 AUTH PLAIN")
		case strings.HasPrefix(cmd, "AUTH PLAIN "):
			raw, _ := base64.StdEncoding.DecodeString(line[len("AUTH PLAIN "):])
			s.mu.Lock()
			s.auth = string(raw)
			s.mu.Unlock()
			say("235 ok")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			s.mu.Lock()
			s.from = line[len("MAIL FROM:"):]
			s.mu.Unlock()
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			s.mu.Lock()
			s.rcpts = append(s.rcpts, line[len("RCPT TO:"):])
			s.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			if s.failFirst && session == 1 {
				say("451 try again later")
				continue
			}
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.data = b.String()
			s.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		case cmd == "RSET", cmd == "NOOP":
			say("250 ok")
		default:
			say("502 not implemented")
		}
	}
}

func TestEmail(t *testing.T) {
	srv := startSMTP(t, true)
	host, port, _ := net.SplitHostPort(srv.ln.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	m, err := NewMailer(config.Email{
		Host: host, Port: p, Username: "backup", Password: "pa55word", TLS: "none",
		From: "redback@example.com", To: []string{"ops@example.com", "dba@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	m.Backoff.Sleep = ns.sleep
	fail := NewEvent("main\r\nBcc: evil@example.com", "host1", time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), agent.BackupResult{}, errors.New("dial tcp: refused"))
	if err := m.Notify(context.Background(), fail); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sessions != 2 || len(ns.waits) != 1 {
		t.Fatalf("%d sessions, waits %v: want a retry after the 451", srv.sessions, ns.waits)
	}
	if srv.auth != "\x00backup\x00pa55word" {
		t.Fatalf("AUTH PLAIN %q", srv.auth)
	}
	if srv.from != "<redback@example.com>" || len(srv.rcpts) != 4 { // 2 per session
		t.Fatalf("from %q rcpts %v", srv.from, srv.rcpts)
	}
	for _, want := range []string{"Subject: [redback] backup of main  Bcc: evil@example.com FAILED\r\n", "To: ops@example.com, dba@example.com\r\n", "dial tcp: refused", "\"event\": \"backup.failed\""} {
		if !strings.Contains(srv.data, want) {
			t.Errorf("message lacks %q:\n%s", want, srv.data)
		}
	}
	if strings.Contains(srv.data, "\r\nBcc:") || strings.Contains(srv.data, "pa55word") {
		t.Fatalf("header injection or password in the message:\n%s", srv.data)
	}
}

func TestEmailRequiresStartTLS(t *testing.T) {
	srv := startSMTP(t, false)
	host, port, _ := net.SplitHostPort(srv.ln.Addr().String())
	var p int
	fmt.Sscan(port, &p)
	m, err := NewMailer(config.Email{Host: host, Port: p, From: "a@example.com", To: []string{"b@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ns := &noSleep{}
	m.Backoff.Sleep = ns.sleep
	err = m.Notify(context.Background(), okEvent())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || len(ns.waits) != 0 {
		t.Fatalf("err %v, waits %v", err, ns.waits)
	}
}

func TestSummaryOfASuspectBackup(t *testing.T) {
	e := NewEvent("main", "", time.Now(), agent.BackupResult{Success: true, Filename: "x.json.gz", Suspect: "suspect: 0 keys, after 500 in y.json.gz"}, nil)
	if s := summary(e); !strings.Contains(s, "SUSPECT") || !strings.Contains(s, "0 keys, after 500") {
		t.Fatalf("summary %q", s)
	}
}

// kinds records the kinds of the events it gets.
type kinds struct{ got []Kind }

func (k *kinds) Notify(_ context.Context, e Event) error { k.got = append(k.got, e.Kind); return nil }

// TestDrillFailedGoesWithFailures: a notifier that takes failures takes
// failed drills too; one that takes successes only does not.
func TestDrillFailedGoesWithFailures(t *testing.T) {
	var all, fails, wins kinds
	s := &Set{}
	s.Add("all", &all)
	s.Add("failures", &fails, Failed)
	s.Add("successes", &wins, Succeeded)
	e := NewDrillEvent("prod", "h", time.Unix(1, 0), agent.DrillResult{Filename: "redis_backup_20260101_000000.json", Error: "drill failed: x"})
	if err := s.Notify(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(all.got) != 1 || len(fails.got) != 1 || fails.got[0] != DrillFailed || len(wins.got) != 0 {
		t.Fatalf("all %v failures %v successes %v", all.got, fails.got, wins.got)
	}
	if got := summary(e); got != "redback: restore drill of prod (on h) FAILED: drill failed: x" {
		t.Fatalf("summary %q", got)
	}
}
