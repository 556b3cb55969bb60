package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestStartWaitSucceeds(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	id, err := m.Start(KindBackup, func(ctx context.Context, report func(Progress)) (any, error) {
		report(Progress{KeysDone: 5, KeysTotal: 10})
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != Succeeded || s.Result != "ok" || s.Err != nil || s.Kind != KindBackup || s.Progress.KeysDone != 5 {
		t.Fatalf("snapshot %+v", s)
	}
	if s.FinishedAt.IsZero() || s.StartedAt.IsZero() {
		t.Fatalf("times not set: %+v", s)
	}
}

func TestFailureAndPanic(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	boom := errors.New("boom")
	id, _ := m.Start(KindRestore, func(context.Context, func(Progress)) (any, error) { return nil, boom })
	s, _ := m.Wait(context.Background(), id)
	if s.Status != Failed || !errors.Is(s.Err, boom) {
		t.Fatalf("snapshot %+v", s)
	}
	id, _ = m.Start(KindRestore, func(context.Context, func(Progress)) (any, error) { panic("bad") })
	s, _ = m.Wait(context.Background(), id)
	if s.Status != Failed || s.Err == nil {
		t.Fatalf("panic not turned into failure: %+v", s)
	}
	// The exclusive slot is free again.
	if _, ok := m.Running(); ok {
		t.Fatal("a job is still marked running")
	}
}

func TestOneExclusiveJobAtATime(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	release := make(chan struct{})
	id, err := m.Start(KindBackup, func(ctx context.Context, _ func(Progress)) (any, error) {
		<-release
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Start(KindRestore, func(context.Context, func(Progress)) (any, error) { return nil, nil })
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) || busy.ID != id || busy.Kind != KindBackup {
		t.Fatalf("second exclusive job: %v", err)
	}
	// A non-exclusive kind still runs.
	other, err := m.Start("verify", func(context.Context, func(Progress)) (any, error) { return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Wait(context.Background(), other); s.Status != Succeeded {
		t.Fatalf("verify: %+v", s)
	}
	close(release)
	m.Wait(context.Background(), id)
	if _, err := m.Start(KindRestore, func(context.Context, func(Progress)) (any, error) { return nil, nil }); err != nil {
		t.Fatalf("after the first finished: %v", err)
	}
}

func TestConcurrentStartsOneWins(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	release := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, busy := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Start(KindBackup, func(context.Context, func(Progress)) (any, error) { <-release; return nil, nil })
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if errors.Is(err, ErrBusy) {
				busy++
			}
		}()
	}
	wg.Wait()
	close(release)
	if ok != 1 || busy != 19 {
		t.Fatalf("ok %d busy %d", ok, busy)
	}
}

func TestJobOutlivesCallerContext(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	caller, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	id, _ := m.Start(KindBackup, func(ctx context.Context, _ func(Progress)) (any, error) {
		close(started)
		time.Sleep(50 * time.Millisecond)
		return "done", ctx.Err()
	})
	<-started
	cancel()
	if _, err := m.Wait(caller, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context: %v", err)
	}
	s, _ := m.Wait(context.Background(), id)
	if s.Status != Succeeded || s.Result != "done" {
		t.Fatalf("the job died with its caller: %+v", s)
	}
}

func TestForgetsOldAndExcessJobs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := New(Options{Keep: time.Minute, MaxFinished: 3, Now: clock})
	defer m.Shutdown(context.Background())
	var ids []string
	for i := 0; i < 5; i++ {
		id, _ := m.Start("x", func(context.Context, func(Progress)) (any, error) { return nil, nil })
		m.Wait(context.Background(), id)
		ids = append(ids, id)
	}
	for i, id := range ids {
		_, err := m.Get(id)
		if want := i >= 2; (err == nil) != want {
			t.Fatalf("job %d: err %v, want kept=%v", i, err, want)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := m.Get(ids[4]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired job is still there: %v", err)
	}
}

func TestShutdownWaitsThenCancels(t *testing.T) {
	m := New(Options{})
	cancelled := make(chan struct{})
	id, _ := m.Start(KindBackup, func(ctx context.Context, _ func(Progress)) (any, error) {
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("Shutdown returned before the job returned")
	}
	s, _ := m.Get(id)
	if s.Status != Failed {
		t.Fatalf("cancelled job: %+v", s)
	}
	if _, err := m.Start(KindBackup, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestShutdownLetsAJobFinish(t *testing.T) {
	m := New(Options{})
	id, _ := m.Start(KindBackup, func(ctx context.Context, _ func(Progress)) (any, error) {
		select {
		case <-time.After(30 * time.Millisecond):
			return "finished", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Get(id); s.Status != Succeeded {
		t.Fatalf("job: %+v", s)
	}
}

func TestSlotsRunSideBySide(t *testing.T) {
	m := New(Options{})
	defer m.Shutdown(context.Background())
	release := make(chan struct{})
	block := func(ctx context.Context, _ func(Progress)) (any, error) { <-release; return nil, nil }
	a, err := m.StartIn("a", KindBackup, block)
	if err != nil {
		t.Fatal(err)
	}
	// Another slot is free while a's backup runs.
	b, err := m.StartIn("b", KindBackup, block)
	if err != nil {
		t.Fatalf("slot b refused while slot a runs: %v", err)
	}
	// The same slot is not.
	_, err = m.StartIn("a", KindRestore, block)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.ID != a || busy.Slot != "a" {
		t.Fatalf("second job in slot a: %v", err)
	}
	if s, ok := m.RunningIn("b"); !ok || s.ID != b || s.Slot != "b" {
		t.Fatalf("RunningIn(b) = %+v %v", s, ok)
	}
	if _, ok := m.Running(); ok {
		t.Fatal("the default slot reports a running job")
	}
	close(release)
	m.Wait(context.Background(), a)
	m.Wait(context.Background(), b)
	if _, ok := m.RunningIn("a"); ok {
		t.Fatal("slot a still busy after its job ended")
	}
}

// TestListNewestFirst: List gives every remembered job, the last started
// first, with who started it; forgotten jobs are not listed.
func TestListNewestFirst(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	m := New(Options{Now: now, MaxFinished: 2})
	defer m.Shutdown(context.Background())
	var ids []string
	for i, by := range []string{"admin", "scheduler", "", "ops"} {
		id, err := m.StartWith("t", "verify", Info{By: by, Subject: "s" + by}, func(context.Context, func(Progress)) (any, error) { return i, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	release := make(chan struct{})
	running, err := m.StartWith("t", KindBackup, Info{By: "admin"}, func(context.Context, func(Progress)) (any, error) { <-release; return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	got := m.List()
	// MaxFinished 2: the two oldest finished jobs are forgotten.
	if len(got) != 3 || got[0].ID != running || got[1].ID != ids[3] || got[2].ID != ids[2] {
		t.Fatalf("list %+v", got)
	}
	if got[0].Status != Running || got[0].Info.By != "admin" || got[1].Info != (Info{By: "ops", Subject: "sops"}) || got[2].Info.By != "" || got[1].Result != 3 {
		t.Fatalf("list %+v", got)
	}
	close(release)
	m.Wait(context.Background(), running)
	mu.Lock()
	clock = clock.Add(2 * time.Hour)
	mu.Unlock()
	if got := m.List(); len(got) != 0 {
		t.Fatalf("after Keep: %+v", got)
	}
}
