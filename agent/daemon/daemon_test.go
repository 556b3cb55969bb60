package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/scheduler/schedulertest"
	"github.com/redback-dev/redback/internal/redistest"
)

func target(t *testing.T, name string, url string) Target {
	cfg := config.Default()
	cfg.Redis.URL = url
	cfg.Storage = t.TempDir()
	cfg.Schedule.Enabled = true
	cfg.Schedule.IntervalHours = 1
	return Target{Name: name, Listed: true, Config: cfg}
}

// TestScheduledBackupsRunAsJobs: with a job manager, a due tick of every
// target runs as a job in its slot and writes an archive; Run returns nil
// when its context ends, and closing the daemon closes the Services.
func TestScheduledBackupsRunAsJobs(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(t, 0).Set(context.Background(), "k", "v", 0)
	ts := []Target{target(t, "a", srv.URL(0)), target(t, "b", srv.URL(0))}
	clock := schedulertest.NewClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	jm := jobs.New(jobs.Options{})
	d, err := Open(context.Background(), ts, Options{Clock: clock, Jobs: jm, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Targets(); len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("targets %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	if !clock.WaitTimers(2, 10*time.Second) {
		t.Fatal("the schedulers did not arm their timers")
	}
	clock.Advance(2 * time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for _, tg := range ts {
		for {
			entries, _ := os.ReadDir(tg.Config.Storage)
			n := 0
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "redis_backup_") && !strings.HasSuffix(e.Name(), ".manifest.json") && !strings.Contains(e.Name(), "tmp") {
					n++
				}
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("target %s: no archive after a due tick: %v", tg.Name, entries)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := jm.StartIn("a", jobs.KindBackup, nil); !errors.Is(err, jobs.ErrClosed) {
		t.Fatalf("the job manager takes jobs after Run: %v", err)
	}
}

// TestFailingRunnerStopsAll: a runner's failure stops the others (their
// contexts end) and is Run's error.
func TestFailingRunnerStopsAll(t *testing.T) {
	srv := redistest.Start(t)
	tg := target(t, "a", srv.URL(0))
	tg.Config.Schedule.Enabled = false
	d, err := Open(context.Background(), []Target{tg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err = d.Run(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return ctx.Err() },
		func(context.Context) error { return boom },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want boom", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the other runner was not stopped before Run returned")
	}
}

// TestOpenFailureNamesTargetAndClosesOthers: a target that cannot be
// opened stops Open with an error naming it.
func TestOpenFailureNamesTargetAndClosesOthers(t *testing.T) {
	srv := redistest.Start(t)
	good := target(t, "good", srv.URL(0))
	bad := target(t, "bad", "http://not-redis")
	_, err := Open(context.Background(), []Target{good, bad}, Options{})
	if err == nil || !strings.Contains(err.Error(), "target bad") || !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("Open: %v", err)
	}
}

// TestOpenLogsFailedChecks: Open runs redback check's checks for every
// target and logs the failures as warnings, naming the target; the agent
// opens anyway (a Redis that is down now may be up at the first tick).
func TestOpenLogsFailedChecks(t *testing.T) {
	srv := redistest.Start(t)
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ts := []Target{target(t, "up", srv.URL(0)), target(t, "down", "redis://127.0.0.1:1/0")}
	d, err := Open(context.Background(), ts, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var up, down []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(l, `msg="check failed at start"`) {
			continue
		}
		switch {
		case strings.Contains(l, "target=up"):
			up = append(up, l)
		case strings.Contains(l, "target=down"):
			down = append(down, l)
		}
	}
	// Both have no archive yet; only "down" has an unreachable Redis.
	if len(up) != 1 || !strings.Contains(up[0], `check="newest archive"`) {
		t.Errorf("target up: %q", up)
	}
	if len(down) != 2 || !strings.Contains(down[0], "check=redis") || !strings.Contains(down[0], "connection refused") {
		t.Errorf("target down: %q", down)
	}
}
