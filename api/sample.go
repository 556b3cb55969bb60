package api

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"sync"
	"time"
)

// sampler thins out log lines that a client can cause at will (refused
// requests, failed logins, refused connections): for each kind, at most one
// line per interval; the next line written says how many were left out
// (suppressed=N). Each kind's first line is written at once.
type sampler struct {
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*sampleKind
}

type sampleKind struct {
	next       time.Time
	suppressed int
}

// maxSampleKinds bounds the kinds remembered (kinds are a fixed set of
// messages, and the first words of net/http's).
const maxSampleKinds = 256

func newSampler(every time.Duration, now func() time.Time) *sampler {
	return &sampler{every: every, now: now, kinds: map[string]*sampleKind{}}
}

// allow reports whether a line of kind may be written now and, if so, how
// many lines of the kind were left out since the last one.
func (s *sampler) allow(kind string) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := s.kinds[kind]
	if k == nil {
		if len(s.kinds) >= maxSampleKinds {
			clear(s.kinds)
		}
		k = &sampleKind{}
		s.kinds[kind] = k
	}
	if now.Before(k.next) {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.suppressed = 0
	k.next = now.Add(s.every)
	return true, n
}

// log writes msg with attrs at level to l unless the sampler leaves it
// out; the kind is msg.
func (s *sampler) log(l *slog.Logger, level slog.Level, msg string, attrs ...any) {
	ok, n := s.allow(msg)
	if !ok {
		return
	}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	l.Log(context.Background(), level, msg, attrs...)
}

// sampledWriter is the output of net/http's error log (TLS handshake
// errors and the like, one per connection a flood makes): the lines go to
// log at level Warn, sampled by their first words.
type sampledWriter struct {
	s   *sampler
	log *slog.Logger
}

func (w sampledWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimSpace(p))
	ok, n := w.s.allow("http: " + errorKind(msg))
	if ok {
		attrs := []any{}
		if n > 0 {
			attrs = append(attrs, "suppressed", n)
		}
		w.log.Warn(msg, attrs...)
	}
	return len(p), nil
}

// errorKind is the start of a net/http log line up to the first address,
// number or colon after its prefix ("http: TLS handshake error from ...":
// "http: TLS handshake error").
func errorKind(msg string) string {
	end := len(msg)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if (c >= '0' && c <= '9') || (c == ':' && i > 5) || c == '[' {
			end = i
			break
		}
		if i+6 <= len(msg) && msg[i:i+6] == " from " {
			end = i
			break
		}
	}
	return msg[:min(end, 60)]
}

// newErrorLog is an http.Server ErrorLog that samples through s.
func newErrorLog(s *sampler, l *slog.Logger) *log.Logger {
	return log.New(sampledWriter{s: s, log: l}, "", 0)
}
