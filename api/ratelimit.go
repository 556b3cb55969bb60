package api

import (
	"net/netip"
	"sync"
	"time"
)

// dailyWindow is the window of the daily caps on failures.
const dailyWindow = 24 * time.Hour

// maxClients bounds the clients the limiter remembers; beyond it the
// clients without a failure in the window are forgotten first.
const maxClients = 100_000

// limits are the failure limits of a failureLimiter.
type limits struct {
	perClient   int           // failures per client within window
	window      time.Duration //
	clientDaily int           // failures per client within 24 h
	daily       int           // failures from everyone within 24 h
}

// failureLimiter limits failed TOTP codes: per client first (a few within
// a short window, more within a day), then globally (many within a day).
// One client alone can never reach the global cap: its own daily cap stops
// it far below. An attempt is admitted (Begin) once its code is known to
// be well formed, and counts against the limits while it is checked (a few
// microseconds), so parallel guesses cannot slip past a limit; End records
// whether it failed. A request whose body never arrives is never an
// attempt, so it cannot count or hold a place.
type failureLimiter struct {
	lim limits
	now func() time.Time

	mu       sync.Mutex
	keys     map[string]*attempts
	global   attempts
	locked   bool // the global cap was reached (for the log line)
	lastTidy time.Time
}

// attempts are failures within the day (oldest first) and the attempts
// being checked.
type attempts struct {
	failures []time.Time
	inFlight int
}

func newFailureLimiter(lim limits, now func() time.Time) *failureLimiter {
	lim.clientDaily = max(lim.clientDaily, lim.perClient)
	return &failureLimiter{lim: lim, now: now, keys: map[string]*attempts{}}
}

// clientKey is the key of the limits for a client address: an IPv4
// address, or the /64 of an IPv6 address (one site's or one host's
// allocation: a client that owns a /64 must not get 2^64 budgets).
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// Check returns how long key must wait (> 0) before an attempt is
// admitted, without admitting one: for refusing a locked client before
// reading its request.
func (l *failureLimiter) Check(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.waitLocked(l.keys[key], now)
}

// Begin admits an attempt from key, or returns how long the caller must
// wait (> 0) when key or everyone is locked. An admitted attempt must be
// followed by End.
func (l *failureLimiter) Begin(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tidyLocked(now)
	a := l.keys[key]
	if a == nil {
		a = &attempts{}
		l.keys[key] = a
	}
	if wait := l.waitLocked(a, now); wait > 0 {
		return wait
	}
	a.inFlight++
	l.global.inFlight++
	return 0
}

// End closes an attempt admitted by Begin, recording a failure unless ok.
// It reports whether this failure reached the global cap (everyone is
// locked out from now on).
func (l *failureLimiter) End(key string, ok bool) (lockedNow bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.keys[key]
	if a == nil { // tidied away meanwhile
		a = &attempts{inFlight: 1}
		l.keys[key] = a
	}
	a.inFlight--
	l.global.inFlight--
	if ok {
		return false
	}
	a.failures = append(a.failures, now)
	l.global.failures = append(l.global.failures, now)
	if !l.locked && len(l.global.failures) >= l.lim.daily {
		l.locked = true
		return true
	}
	return false
}

// Reset forgets every failure (a `redback totp unlock`). Attempts in
// flight stay counted until they end.
func (l *failureLimiter) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, a := range l.keys {
		a.failures = nil
		if a.inFlight == 0 {
			delete(l.keys, k)
		}
	}
	l.global.failures = nil
	l.locked = false
}

// waitLocked is how long a (nil: no record) must wait: per client, then
// globally.
func (l *failureLimiter) waitLocked(a *attempts, now time.Time) time.Duration {
	l.global.expire(now, dailyWindow)
	if l.locked && len(l.global.failures) < l.lim.daily {
		l.locked = false
	}
	if a != nil {
		a.expire(now, dailyWindow)
		if wait := a.wait(now, l.lim.window, l.lim.perClient); wait > 0 {
			return wait
		}
		if wait := a.wait(now, dailyWindow, l.lim.clientDaily); wait > 0 {
			return wait
		}
	}
	return l.global.wait(now, dailyWindow, l.lim.daily)
}

// expire drops failures older than window.
func (a *attempts) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(a.failures) && now.Sub(a.failures[i]) >= window {
		i++
	}
	a.failures = a.failures[i:]
}

// wait is how long until one more attempt is allowed under limit failures
// within window: until enough counted failures leave the window (at least
// a second).
func (a *attempts) wait(now time.Time, window time.Duration, limit int) time.Duration {
	// The failures within window are the newest ones, a suffix.
	i := len(a.failures)
	for i > 0 && now.Sub(a.failures[i-1]) < window {
		i--
	}
	recent := a.failures[i:]
	if len(recent)+a.inFlight < limit {
		return 0
	}
	if len(recent) == 0 {
		return time.Second // attempts in flight fill the quota
	}
	// The attempt is allowed once all but limit-1-inFlight failures have
	// left the window.
	k := len(recent) + a.inFlight - limit
	k = min(max(k, 0), len(recent)-1)
	return max(recent[k].Add(window).Sub(now), time.Second)
}

// tidyLocked forgets idle clients now and then, so the map stays small.
func (l *failureLimiter) tidyLocked(now time.Time) {
	if now.Sub(l.lastTidy) < time.Minute && len(l.keys) < maxClients {
		return
	}
	l.lastTidy = now
	for k, a := range l.keys {
		a.expire(now, dailyWindow)
		if len(a.failures) == 0 && a.inFlight == 0 {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxClients {
		return
	}
	// Still full: forget those whose failures are all older than the short
	// window (their daily budget is forgotten with them, a lesser evil
	// than unbounded memory; the global cap still counts them).
	for k, a := range l.keys {
		if a.inFlight == 0 && (len(a.failures) == 0 || now.Sub(a.failures[len(a.failures)-1]) >= l.lim.window) {
			delete(l.keys, k)
		}
	}
}
