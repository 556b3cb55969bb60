package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defences against floods of connections and slow requests: the API is
// served by HTTPServer on Listener.
//
//   - Listener caps the open connections (MaxConns), and those of one
//     client (MaxConnsPerClient: an IPv4 address or IPv6 /64 that is no
//     trusted proxy). Beyond the caps, ReserveConns more connections are
//     accepted that serve only /healthz, /readyz and /metrics, one request
//     each, within HeaderTimeout; any other request on them gets a 503.
//     Beyond those, new connections are closed at once. Accept never
//     blocks, so a flood cannot keep the probes waiting in the backlog.
//   - HTTPServer bounds the headers (HeaderTimeout, 64 KiB) and the idle
//     time between requests (IdleTimeout); front bounds the body
//     (BodyTimeout, from the end of the headers; cleared once the body is
//     read, so that a long restore or download is not cut).
//   - login admits MaxLogins requests at once, MaxLoginsPerClient from one
//     client; probes and requests with a token are not counted.

// probePaths are served on reserve connections and never counted as
// logins.
var probePaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

var (
	httpConns = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "redback_http_connections",
		Help: "Open API connections, by slot: ordinary, or reserve (probes only).",
	}, []string{"slot"})
	httpConnsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "redback_http_connections_refused_total",
		Help: "API connections closed at once because every slot, the reserve included, was taken.",
	})
)

func init() {
	prometheus.MustRegister(httpConns, httpConnsRefused)
}

// HTTPServer returns the http.Server that serves the API: Handler with the
// header and idle timeouts of Options, a 64 KiB header cap and an error log
// that is sampled (a flood of TLS handshake errors is a few lines). Serve it
// on Listener(ln), wrapped in TLS after Listener when needed:
//
//	ln = srv.Listener(ln)
//	if tlsConf != nil { ln = tls.NewListener(ln, tlsConf) }
//	hs := srv.HTTPServer()
//	hs.Serve(ln)
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.opt.HeaderTimeout,
		IdleTimeout:       s.opt.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          newErrorLog(s.sample, s.log),
		ConnContext:       connContext,
	}
}

// Listener wraps ln with the connection caps of Options (see above).
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &connLimiter{
		Listener:  ln,
		srv:       s,
		max:       s.opt.MaxConns,
		perClient: s.opt.MaxConnsPerClient,
		reserve:   s.opt.ReserveConns,
		life:      s.opt.HeaderTimeout,
		byClient:  map[string]int{},
	}
}

// connLimiter is the Listener of the API.
type connLimiter struct {
	net.Listener
	srv       *Server
	max       int
	perClient int
	reserve   int
	life      time.Duration // a reserve connection's whole life

	mu       sync.Mutex
	ordinary int
	reserved int
	refused  int
	byClient map[string]int
}

// Accept returns the next connection that fits under the caps, closing at
// once those that do not.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, capped := l.client(c)
		l.mu.Lock()
		switch {
		case l.ordinary < l.max && (!capped || l.byClient[key] < l.perClient):
			l.ordinary++
			if capped {
				l.byClient[key]++
			}
			l.mu.Unlock()
			httpConns.WithLabelValues("ordinary").Inc()
			return &limitedConn{Conn: c, l: l, key: key, capped: capped}, nil
		case l.reserved < l.reserve:
			l.reserved++
			l.mu.Unlock()
			httpConns.WithLabelValues("reserve").Inc()
			lc := &limitedConn{Conn: c, l: l, reserve: true, until: time.Now().Add(l.life)}
			_ = c.SetDeadline(lc.until)
			return lc, nil
		}
		l.refused++
		l.mu.Unlock()
		httpConnsRefused.Inc()
		l.srv.sample.log(l.srv.log, slog.LevelWarn, "connection refused: too many connections",
			"remote", key, "max_connections", l.max)
		_ = c.Close()
	}
}

// client is the key of c's client, and whether the per-client cap applies
// (not to a trusted proxy, whose connections carry many clients).
func (l *connLimiter) client(c net.Conn) (string, bool) {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String(), false
	}
	a := ap.Addr().Unmap().WithZone("")
	if l.srv.trusted(a) {
		return a.String(), false
	}
	return clientKey(a.String()), true
}

// release gives back c's slot.
func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.reserve {
		l.reserved--
		httpConns.WithLabelValues("reserve").Dec()
		return
	}
	l.ordinary--
	httpConns.WithLabelValues("ordinary").Dec()
	if c.capped {
		if l.byClient[c.key]--; l.byClient[c.key] <= 0 {
			delete(l.byClient, c.key)
		}
	}
}

// limitedConn is a connection of connLimiter. A reserve connection's
// deadlines never lie beyond its end of life.
type limitedConn struct {
	net.Conn
	l       *connLimiter
	key     string
	capped  bool
	reserve bool
	until   time.Time
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

func (c *limitedConn) clamp(t time.Time) time.Time {
	if c.reserve && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

func (c *limitedConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *limitedConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *limitedConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// reserveKey marks the context of a request on a reserve connection.
type reserveKey struct{}

// connContext is HTTPServer's ConnContext: it marks reserve connections.
func connContext(ctx context.Context, c net.Conn) context.Context {
	for {
		if lc, ok := c.(*limitedConn); ok {
			if lc.reserve {
				return context.WithValue(ctx, reserveKey{}, true)
			}
			return ctx
		}
		nc, ok := c.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			return ctx
		}
		c = nc.NetConn()
	}
}

// bodyDeadlineKey holds the ResponseController whose read deadline bounds
// the request's body, for decodeBody to clear once the body is read.
type bodyDeadlineKey struct{}

// errConnsBusy answers a request that is no probe on a reserve connection.
var errConnsBusy = &limitedError{wait: time.Second, status: http.StatusServiceUnavailable,
	msg: "server busy: too many connections; try again shortly"}

// front is the API's outermost handler: it serves only the probes on a
// reserve connection (closing it after one request), and bounds the time a
// request's body may take.
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(reserveKey{}) != nil {
			w.Header().Set("Connection", "close")
			if !probePaths[r.URL.Path] {
				s.refuseBusy(w, r)
				return
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(s.opt.BodyTimeout)) == nil {
				r = r.WithContext(context.WithValue(r.Context(), bodyDeadlineKey{}, rc))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// busyAnswer is the answer to a request that is no probe on a reserve
// connection.
var busyAnswer = func() string {
	body, _ := json.MarshalIndent(errorBody{Error: errConnsBusy.Error()}, "", "  ")
	return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n" +
		"Cache-Control: no-store\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)+1) + "\r\n\r\n" + string(body) + "\n"
}()

// refuseBusy answers 503 to a request that is no probe on a reserve
// connection and closes the connection at once: net/http would otherwise
// linger on it for half a second when the body is left unread, and a
// flood would keep the reserve full.
func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request) {
	s.sample.log(s.log, slog.LevelWarn, "request refused: too many connections", "remote", s.clientIP(r))
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil { // not HTTP/1 (tests): answer as usual
		s.writeError(w, r, errConnsBusy)
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = buf.WriteString(busyAnswer)
	_ = buf.Flush()
	_ = c.Close()
}

// bodyRead lifts the body's deadline once it has been read.
func bodyRead(r *http.Request) {
	if rc, ok := r.Context().Value(bodyDeadlineKey{}).(*http.ResponseController); ok {
		_ = rc.SetReadDeadline(time.Time{})
	}
}

// gate limits requests in progress, in all and per client.
type gate struct {
	max, perClient int

	mu  sync.Mutex
	n   int
	per map[string]int
}

func newGate(max, perClient int) *gate {
	return &gate{max: max, perClient: perClient, per: map[string]int{}}
}

var (
	errLoginsBusy = &limitedError{wait: time.Second, status: http.StatusServiceUnavailable,
		msg: "too many logins in progress: try again shortly"}
	errClientLoginsBusy = &limitedError{wait: time.Second,
		msg: "too many logins in progress from this client: finish them first"}
)

// enter admits one request of key, or returns the error that refuses it;
// an admitted request must leave.
func (g *gate) enter(key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.per[key] >= g.perClient {
		return errClientLoginsBusy
	}
	if g.n >= g.max {
		return errLoginsBusy
	}
	g.n++
	g.per[key]++
	return nil
}

func (g *gate) leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.per[key]--; g.per[key] <= 0 {
		delete(g.per, key)
	}
}
