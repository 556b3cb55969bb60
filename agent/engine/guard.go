// Panics: every goroutine of the engine runs guarded, so that a panic is the
// error of the dump or restore it happened in, never the end of the process.

package engine

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrInternal marks a panic caught inside the engine: a bug, reported as the
// error of the dump or restore it happened in (never the end of the
// process that runs it).
var ErrInternal = errors.New("internal error (a bug in redback: please report it)")

// guard returns fn with any panic turned into an ErrInternal error. Every
// goroutine of the engine runs guarded: a recover in the caller does not
// catch a panic in another goroutine.
func guard(fn func() error) func() error {
	return func() (err error) {
		defer recoverTo(&err)
		return fn()
	}
}

// recoverTo, deferred, turns a panic into *err.
func recoverTo(err *error) {
	if p := recover(); p != nil {
		stack := debug.Stack()
		if len(stack) > 4096 {
			stack = stack[:4096]
		}
		*err = fmt.Errorf("%w: %v\n%s", ErrInternal, p, stack)
	}
}
