package redistest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 5 ms until it holds; a minute without fails t
// (something is stuck, not slow: the wait is never what a test asserts).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
