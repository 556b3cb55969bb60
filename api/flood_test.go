package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

// serveLoopback serves the API on a loopback port the way `redback serve`
// does (HTTPServer on Listener) and returns its address and listener.
func serveLoopback(t *testing.T, h *harness) (string, *connLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := h.api.Listener(ln).(*connLimiter)
	hs := h.api.HTTPServer()
	go func() { _ = hs.Serve(cl) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String(), cl
}

// dialFrom opens a connection to addr from the loopback address src
// (127.0.0.0/8 is all loopback on Linux: each is another client).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return d.Dial("tcp", addr)
}

// roundTrip sends one request on a new connection from src and returns
// the status code and body (0 when the server closed the connection).
func roundTrip(t *testing.T, src, addr, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	c, err := dialFrom(src, addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: redback\r\nConnection: close\r\n", method, path)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(c, b.String()); err != nil {
		return 0, err.Error()
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// TestFloodOfSlowLoginsOnLoopback is issue #11's red team, bounded: 300
// connections from 20 loopback addresses each send the headers of a login
// and part of its body, then stall. While they do, /healthz and /metrics
// answer at once (from another client and from a flooding one), and an
// admin logs in. Each stalled body is cut at BodyTimeout; none counts as a
// failed code, so nobody is locked out afterwards; the connections never
// exceed the caps.
func TestFloodOfSlowLoginsOnLoopback(t *testing.T) {
	const (
		sources  = 20
		perSrc   = 15
		flood    = sources * perSrc
		maxConns = 200
		reserve  = 16
	)
	h := newHarness(t, func(_ *config.Config, o *Options) {
		o.MaxConns, o.MaxConnsPerClient, o.ReserveConns = maxConns, 8, reserve
		o.MaxLogins, o.MaxLoginsPerClient = 64, 2
		o.HeaderTimeout, o.BodyTimeout = time.Second, time.Second
		o.LoginDailyCap = 100 // the old default, that the red team tripped
	})
	addr, cl := serveLoopback(t, h)

	// The flood: the headers of a login with a 100-byte body, and 12 bytes of it.
	start := time.Now()
	conns := make([]net.Conn, 0, flood)
	for i := 0; i < flood; i++ {
		src := fmt.Sprintf("127.0.0.%d", 10+i%sources)
		c, err := dialFrom(src, addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, "POST /api/auth/login HTTP/1.1\r\nHost: redback\r\nContent-Type: application/json\r\n"+
			"Content-Length: 100\r\n\r\n{\"code\": \"12")
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	sent := time.Since(start)
	time.Sleep(100 * time.Millisecond) // let the server take them in

	cl.mu.Lock()
	ordinary, reserved := cl.ordinary, cl.reserved
	cl.mu.Unlock()
	if ordinary > maxConns || reserved > reserve {
		t.Fatalf("the caps did not hold: %d ordinary, %d reserve connections", ordinary, reserved)
	}

	// Under the flood: the probes answer, from a quiet client and from a
	// flooding one (whose own slots are full: the reserve serves it).
	var worst time.Duration
	for _, src := range []string{"127.0.0.3", "127.0.0.10", "127.0.0.3", "127.0.0.29"} {
		t0 := time.Now()
		code, body := roundTrip(t, src, addr, "GET", "/healthz", "", nil)
		took := time.Since(t0)
		worst = max(worst, took)
		if code != http.StatusOK || !strings.Contains(body, `"ok"`) {
			t.Fatalf("/healthz from %s under the flood: %d %s", src, code, body)
		}
		if took > 2*time.Second { // a few milliseconds in practice; generous for loaded machines
			t.Fatalf("/healthz from %s took %s under the flood", src, took)
		}
	}
	if code, body := roundTrip(t, "127.0.0.10", addr, "GET", "/metrics", "", nil); code != http.StatusOK || !strings.Contains(body, "redback_http_connections") {
		t.Fatalf("/metrics under the flood: %d", code)
	}
	// A request that is no probe, from a flooding client over its cap: busy.
	if code, body := roundTrip(t, "127.0.0.11", addr, "GET", "/api/backup/list", "", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, `"success": false`) {
		t.Fatalf("a non-probe request on a reserve connection: %d %s", code, body)
	}
	// An admin logs in during the flood.
	code, body := roundTrip(t, "127.0.0.2", addr, "POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil)
	if code != http.StatusOK || !strings.Contains(body, `"token"`) {
		t.Fatalf("login during the flood: %d %s", code, body)
	}

	// Every stalled connection ends by the server's hand: a 408 (body
	// timeout), a 429 or 503 (over a cap), or a close, within seconds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ends := map[string]int{}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			end := "closed"
			switch {
			case err == nil:
				end = res.Status
				res.Body.Close()
			case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			default:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					end = "still open"
				}
			}
			mu.Lock()
			ends[end]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	drained := time.Since(start)
	if ends["still open"] > 0 {
		t.Fatalf("stalled connections the server kept open: %v", ends)
	}
	cl.mu.Lock()
	refused := cl.refused
	cl.mu.Unlock()
	t.Logf("flood: %d connections from %d addresses sent in %s; peak held %d ordinary + %d reserve; %d refused at accept; "+
		"ends %v; all ended %s after the start; worst /healthz under the flood %s",
		flood, sources, sent.Round(time.Millisecond), ordinary, reserved, refused, ends, drained.Round(time.Millisecond), worst.Round(time.Microsecond))

	// No stalled body was a failed code: nobody is locked out.
	h.api.limiter.mu.Lock()
	failures := len(h.api.limiter.global.failures)
	h.api.limiter.mu.Unlock()
	if failures != 0 {
		t.Fatalf("the flood counted %d failed codes", failures)
	}
	h.clock.Advance(30 * time.Second)
	for _, src := range []string{"127.0.0.10", "127.0.0.29"} {
		if code, body := roundTrip(t, src, addr, "POST", "/api/auth/login", loginBody(h.code(secretBob, 0)), nil); code != http.StatusOK {
			t.Fatalf("login from %s after the flood: %d %s", src, code, body)
		}
		h.clock.Advance(30 * time.Second)
	}
}

// TestHalfSentHeadersAreCut: a connection that never finishes its headers
// is closed at HeaderTimeout, and one that sends nothing at all too.
func TestHalfSentHeadersAreCut(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) {
		o.HeaderTimeout, o.BodyTimeout = 500*time.Millisecond, 500*time.Millisecond
	})
	addr, _ := serveLoopback(t, h)
	for _, part := range []string{"", "GET /healthz HTTP/1.1\r\nHost: x\r\n"} {
		c, err := dialFrom("127.0.0.1", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, part)
		t0 := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("headers %q: the server kept the connection open", part)
		}
		if took := time.Since(t0); took > 2*time.Second {
			t.Fatalf("headers %q: closed after %s", part, took)
		}
		c.Close()
	}
}

// stallingBody is a request body that gives a few bytes and then fails as
// a read past its deadline does.
type stallingBody struct{ sent bool }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (b *stallingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, `{"code": "12`), nil
	}
	return 0, timeoutErr{}
}

// TestIncompleteBodiesAreNotFailures: login bodies that never complete
// (cut by the body timeout, or by the client) are answered 408 or 400 and
// count as no failed code: many of them lock out neither their client nor
// anyone, and the client's real code then works.
func TestIncompleteBodiesAreNotFailures(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.LoginDailyCap = 10 })
	for i := 0; i < 30; i++ {
		req, _ := http.NewRequest("POST", "/api/auth/login", &stallingBody{})
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.api.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestTimeout {
			t.Fatalf("stalled body %d: %d %s", i, rec.Code, rec.Body)
		}
		req, _ = http.NewRequest("POST", "/api/auth/login", io.MultiReader(strings.NewReader(`{"code": "1`), errReader{io.ErrUnexpectedEOF}))
		req.RemoteAddr = "192.0.2.1:1234"
		rec = httptest.NewRecorder()
		h.api.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("cut body %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if res := h.do("POST", "/api/auth/login", loginBody(h.code(secretAdmin, 0)), nil); res.code != http.StatusOK {
		t.Fatalf("login after 60 incomplete bodies: %d %s", res.code, res.body)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
