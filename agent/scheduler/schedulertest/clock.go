// Package schedulertest provides a fake clock for tests of code that waits
// on a scheduler.Clock: time moves only when the test says so.
package schedulertest

import (
	"sort"
	"sync"
	"time"

	"github.com/redback-dev/redback/agent/scheduler"
)

// Clock is a fake scheduler.Clock. Its methods are safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever timers change
}

var _ scheduler.Clock = (*Clock)(nil)

// NewClock returns a clock reading now.
func NewClock(now time.Time) *Clock { return &Clock{now: now, changed: make(chan struct{})} }

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			t.c.notify()
			return true
		}
	}
	return false
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches now+d.
func (c *Clock) NewTimer(d time.Duration) scheduler.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	c.notify()
	return t
}

func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Set moves the clock to t (forwards or backwards) and fires the timers
// that are due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	for len(c.timers) > 0 && !c.timers[0].at.After(t) {
		x := c.timers[0]
		c.timers = c.timers[1:]
		x.ch <- t
	}
	c.notify()
}

// Advance moves the clock d forward (see Set).
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// WaitTimers blocks until n timers are pending or timeout passes (real
// time); it reports whether they are.
func (c *Clock) WaitTimers(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, ch := len(c.timers), c.changed
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// Next returns the time of the earliest pending timer.
func (c *Clock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].at, true
}
