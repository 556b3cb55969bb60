package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

func TestLeaseAgainstRedis(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	const key = "redback:lease:test"

	a, err := New(rdb, key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(srv.Client(t, 0), key, 10*time.Second)
	if a.Token() == b.Token() {
		t.Fatal("two holders share a token")
	}
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("second acquire: %v, want ErrHeld", err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("lease key has PTTL %v: it must expire on its own", ttl)
	}
	// b cannot renew or release a's lease.
	if err := b.Renew(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("b renews a's lease: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rdb.Get(ctx, key).Val(); got != a.Token() {
		t.Fatalf("b's release deleted a's lease: key holds %q", got)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("release left the key")
	}
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
	_ = b.Release(ctx)

	// Do refuses while another holds it, without running fn.
	_ = a.Acquire(ctx)
	ran := false
	if err := b.Do(ctx, func(context.Context) error { ran = true; return nil }); !errors.Is(err, ErrHeld) || ran {
		t.Fatalf("Do while held: %v (ran %v)", err, ran)
	}
	_ = a.Release(ctx)
}

// A holder killed mid-way (it never releases) blocks others only until
// the TTL runs out.
func TestKilledHolderExpires(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	dead, _ := New(srv.Client(t, 0), "lease", time.Second)
	if err := dead.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// The holder's process dies: nothing renews or releases the key.
	next, _ := New(srv.Client(t, 0), "lease", time.Second)
	if err := next.Acquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire while held: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := next.Acquire(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrHeld) || time.Now().After(deadline) {
			t.Fatalf("lease of a dead holder still blocks after its TTL: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Do renews the lease while fn runs, and cancels fn when the lease is lost.
func TestDoRenewsAndNoticesLoss(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	l, _ := New(rdb, "lease", 1500*time.Millisecond)

	err := l.Do(ctx, func(ctx context.Context) error {
		// Wait for a renewal: the TTL climbs back up.
		low := rdb.PTTL(ctx, "lease").Val()
		deadline := time.Now().Add(5 * time.Second)
		for {
			time.Sleep(20 * time.Millisecond)
			cur := rdb.PTTL(ctx, "lease").Val()
			if cur > low+100*time.Millisecond {
				return nil
			}
			if cur < low {
				low = cur
			}
			if time.Now().After(deadline) {
				return errors.New("never renewed")
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, "lease").Val() != 0 {
		t.Fatal("Do did not release")
	}

	// Someone takes the key over (an operator, a holder that thought ours
	// expired): fn's context is cancelled and the other's key survives.
	err = l.Do(ctx, func(ctx context.Context) error {
		rdb.Set(ctx, "lease", "intruder", 0)
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, ErrLost) {
		t.Fatalf("Do after takeover: %v, want ErrLost", err)
	}
	if got := rdb.Get(ctx, "lease").Val(); got != "intruder" {
		t.Fatalf("release deleted another holder's key: %q", got)
	}
}
