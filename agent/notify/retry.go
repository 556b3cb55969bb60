package notify

import (
	"context"
	"errors"
	"time"
)

// Backoff retries an operation with exponential backoff: waits of Base,
// 2*Base, 4*Base, ... capped at Max, for at most Attempts tries.
type Backoff struct {
	Attempts int
	Base     time.Duration
	Max      time.Duration
	// Sleep waits d or until ctx ends (a real sleep when nil); tests
	// record the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultBackoff is 5 tries, waiting 1 s, 2 s, 4 s, 8 s in between.
var DefaultBackoff = Backoff{Attempts: 5, Base: time.Second, Max: 30 * time.Second}

// permanent marks an error not worth retrying.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retryAfter asks for a specific wait before the next try.
type retryAfter struct {
	error
	d time.Duration
}

func (r retryAfter) Unwrap() error { return r.error }

// Do calls op until it succeeds, returns a permanent error, the tries run
// out or ctx ends; it returns op's last error.
func (b Backoff) Do(ctx context.Context, op func(ctx context.Context) error) error {
	attempts := max(b.Attempts, 1)
	sleep := b.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	wait := b.Base
	var err error
	for i := range attempts {
		if err = op(ctx); err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) || i == attempts-1 || ctx.Err() != nil {
			break
		}
		d := wait
		var ra retryAfter
		if errors.As(err, &ra) && ra.d > d {
			d = ra.d
		}
		if b.Max > 0 && d > b.Max {
			d = b.Max
		}
		if serr := sleep(ctx, d); serr != nil {
			return err
		}
		wait *= 2
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
