// Package lease lets several agents that share one Redis take turns: a
// lease is a key in that Redis, set with SET key token NX PX ttl, renewed
// while its holder works and deleted by it afterwards only if it still
// holds the token (a compare-and-delete script). A holder that dies blocks
// nobody past the TTL (restic #2736: locks that outlive a crash).
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrHeld is returned by Acquire and Do when another holder has the lease.
var ErrHeld = errors.New("lease held by another agent")

// ErrLost means the lease expired or was taken while it was being held.
var ErrLost = errors.New("lease lost")

// Lease is one agent's claim on a key. It is not safe for concurrent use
// by several goroutines except through Do.
type Lease struct {
	rdb   redis.Cmdable
	key   string
	ttl   time.Duration
	token string
}

var (
	renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)
)

// New returns a lease on key with the given TTL (at least a second). The
// token identifies this holder: host name, process id and 8 random bytes.
func New(rdb redis.Cmdable, key string, ttl time.Duration) (*Lease, error) {
	if key == "" {
		return nil, errors.New("lease: empty key")
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("lease: ttl %v is shorter than a second", ttl)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Lease{rdb: rdb, key: key, ttl: ttl, token: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))}, nil
}

// Token returns this holder's token (what the key holds while we have it).
func (l *Lease) Token() string { return l.token }

// Acquire takes the lease: nil when taken, ErrHeld when another holder
// has it, or a Redis error.
func (l *Lease) Acquire(ctx context.Context) error {
	ok, err := l.rdb.SetNX(ctx, l.key, l.token, l.ttl).Result()
	if err != nil {
		return fmt.Errorf("lease: acquire: %w", err)
	}
	if !ok {
		return ErrHeld
	}
	return nil
}

// Renew extends the lease by its TTL; ErrLost when we no longer hold it.
func (l *Lease) Renew(ctx context.Context) error {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("lease: renew: %w", err)
	}
	if n == 0 {
		return ErrLost
	}
	return nil
}

// Release deletes the key if it still holds our token (another holder's
// lease is never deleted).
func (l *Lease) Release(ctx context.Context) error {
	if _, err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Int64(); err != nil {
		return fmt.Errorf("lease: release: %w", err)
	}
	return nil
}

// Do acquires the lease, runs fn while renewing it every TTL/3, and
// releases it. If the lease is lost (Redis unreachable for a TTL, or the
// key taken), fn's context is cancelled and Do returns ErrLost joined with
// fn's error. It returns ErrHeld without running fn when another holder
// has the lease.
func (l *Lease) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := l.Acquire(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-done:
				return
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
			rctx, rcancel := context.WithTimeout(runCtx, l.ttl/3)
			err := l.Renew(rctx)
			rcancel()
			switch {
			case err == nil:
				lastOK = time.Now()
			case errors.Is(err, ErrLost), time.Since(lastOK) >= l.ttl:
				cancel(ErrLost)
				return
			}
		}
	}()
	err := fn(runCtx)
	close(done)
	<-renewed
	lost := errors.Is(context.Cause(runCtx), ErrLost)
	// Release with a fresh context: ours may be cancelled (shutdown).
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	rerr := l.Release(rctx)
	if lost {
		return errors.Join(ErrLost, err)
	}
	if err != nil {
		return err
	}
	return rerr
}
