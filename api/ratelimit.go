package api

import (
	"sync"
	"time"
)

// dailyWindow is the window of the global cap on failures.
const dailyWindow = 24 * time.Hour

// failureLimiter limits failed TOTP codes, per client and globally. An
// attempt is admitted (Begin) before its code is checked and counts against
// the limits while it is checked, so parallel guesses cannot slip past a
// limit; End records whether it failed.
type failureLimiter struct {
	perKey   int
	window   time.Duration
	dailyCap int
	now      func() time.Time

	mu       sync.Mutex
	keys     map[string]*attempts
	global   attempts
	lastTidy time.Time
}

// attempts are the failures within the window (oldest first) and the
// attempts being checked.
type attempts struct {
	failures []time.Time
	inFlight int
}

func newFailureLimiter(perKey int, window time.Duration, dailyCap int, now func() time.Time) *failureLimiter {
	return &failureLimiter{perKey: perKey, window: window, dailyCap: dailyCap, now: now, keys: map[string]*attempts{}}
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
	a.expire(now, l.window)
	l.global.expire(now, dailyWindow)
	if wait := a.wait(now, l.window, l.perKey); wait > 0 {
		return wait
	}
	if wait := l.global.wait(now, dailyWindow, l.dailyCap); wait > 0 {
		return wait
	}
	a.inFlight++
	l.global.inFlight++
	return 0
}

// End closes an attempt admitted by Begin, recording a failure unless ok.
func (l *failureLimiter) End(key string, ok bool) {
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
	if !ok {
		a.failures = append(a.failures, now)
		l.global.failures = append(l.global.failures, now)
	}
}

// expire drops failures older than window.
func (a *attempts) expire(now time.Time, window time.Duration) {
	i := 0
	for i < len(a.failures) && now.Sub(a.failures[i]) >= window {
		i++
	}
	a.failures = a.failures[i:]
}

// wait is how long until one more attempt is allowed under limit: until
// the oldest counted failure leaves the window (at least a second).
func (a *attempts) wait(now time.Time, window time.Duration, limit int) time.Duration {
	if len(a.failures)+a.inFlight < limit {
		return 0
	}
	if len(a.failures) == 0 {
		return time.Second // attempts in flight fill the quota
	}
	return max(a.failures[0].Add(window).Sub(now), time.Second)
}

// tidyLocked forgets idle clients now and then, so the map stays small.
func (l *failureLimiter) tidyLocked(now time.Time) {
	if now.Sub(l.lastTidy) < time.Minute {
		return
	}
	l.lastTidy = now
	for k, a := range l.keys {
		a.expire(now, l.window)
		if len(a.failures) == 0 && a.inFlight == 0 {
			delete(l.keys, k)
		}
	}
}
