package scheduler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/agent/scheduler/schedulertest"
)

// fakeJob stands for the agent: it records backups and plays the sink's
// newest archive.
type fakeJob struct {
	clk *schedulertest.Clock

	mu      sync.Mutex
	last    time.Time // newest archive
	runs    []time.Time
	dues    []time.Time
	running int
	maxRun  int
	// dur is how long each backup takes (fake time).
	dur time.Duration
	// outcome, when set, decides the result of backup n (0-based).
	outcome func(n int) error
}

func (f *fakeJob) LastBackup(context.Context) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, nil
}

func (f *fakeJob) Backup(_ context.Context, due time.Time) error {
	f.mu.Lock()
	now := f.clk.Now()
	n := len(f.runs)
	f.runs = append(f.runs, now)
	f.dues = append(f.dues, due)
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	out := f.outcome
	dur := f.dur
	f.mu.Unlock()
	var err error
	if out != nil {
		err = out(n)
	}
	if dur > 0 {
		f.clk.Advance(dur)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if err == nil {
		f.last = now
	}
	return err
}

func (f *fakeJob) times(loc *time.Location) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.runs {
		out = append(out, r.In(loc).Format("01-02 15:04"))
	}
	return out
}

type harness struct {
	t       *testing.T
	clk     *schedulertest.Clock
	job     *fakeJob
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	skips   []string
	logs    *bytes.Buffer
	logMu   sync.Mutex
	stopped bool
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs a scheduler of s from start, with last as the newest archive.
func start(t *testing.T, s config.Schedule, begin, last time.Time, o scheduler.Options, job func(*fakeJob)) *harness {
	t.Helper()
	h := &harness{t: t, clk: schedulertest.NewClock(begin), logs: &bytes.Buffer{}, done: make(chan error, 1)}
	h.job = &fakeJob{clk: h.clk, last: last}
	if job != nil {
		job(h.job)
	}
	o.Clock = h.clk
	o.OnSkip = func(r string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.skips = append(h.skips, r)
	}
	o.Log = slog.New(slog.NewTextHandler(lockedWriter{&h.logMu, h.logs}, nil))
	if o.MaxWait == 0 {
		o.MaxWait = 48 * time.Hour
	}
	sch := scheduler.New(mustPlan(t, s), h.job, o)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- sch.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// until lets fake time pass up to end, firing each timer in turn.
func (h *harness) until(end time.Time) {
	h.t.Helper()
	for {
		if !h.clk.WaitTimers(1, 10*time.Second) {
			select {
			case err := <-h.done:
				h.t.Fatalf("scheduler returned: %v", err)
			default:
			}
			h.t.Fatal("scheduler is not waiting on the clock")
		}
		next, _ := h.clk.Next()
		if next.After(end) {
			h.clk.Set(end)
			h.clk.WaitTimers(1, 10*time.Second)
			return
		}
		h.clk.Set(next)
	}
}

func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return after cancel")
	}
}

func (h *harness) skipped() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.skips...)
}

func (h *harness) log() string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.logs.String()
}

// The seed's defaults (every 24 h and daily at 03:00) through the DST
// nights of both zones: a first backup at start (none existed), then one
// each day at 03:00 on the wall clock, none doubled or skipped. Waits are
// capped at a minute, as in production.
func TestSeedDefaultsAcrossDST(t *testing.T) {
	for _, n := range dstNights {
		t.Run(n.zone+n.day.Format("-01-02"), func(t *testing.T) {
			loc := mustLoc(t, n.zone)
			begin := time.Date(n.day.Year(), n.day.Month(), n.day.Day()-2, 14, 0, 0, 0, loc)
			h := start(t, config.Schedule{IntervalHours: 24, DailyAt: "03:00", Timezone: n.zone}, begin, time.Time{},
				scheduler.Options{MaxWait: time.Minute}, nil)
			h.until(begin.Add(5 * 24 * time.Hour))
			h.stop()
			want := []string{begin.Format("01-02 15:04")}
			for d := -1; d <= 3; d++ {
				want = append(want, time.Date(n.day.Year(), n.day.Month(), n.day.Day()+d, 3, 0, 0, 0, loc).Format("01-02 15:04"))
			}
			if got := h.job.times(loc); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("backups at %v, want %v", got, want)
			}
			if s := h.skipped(); len(s) != 0 {
				t.Fatalf("skipped %v", s)
			}
		})
	}
}

func TestIntervalOnly(t *testing.T) {
	begin := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	h := start(t, config.Schedule{IntervalHours: 12, Timezone: "UTC"}, begin, time.Time{}, scheduler.Options{}, nil)
	h.until(begin.Add(48 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 10:00,06-01 22:00,06-02 10:00,06-02 22:00,06-03 10:00" {
		t.Fatalf("backups at %s", got)
	}
}

func TestCronAndDailyCoalesce(t *testing.T) {
	begin := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	last := begin.Add(-time.Hour)
	h := start(t, config.Schedule{DailyAt: "03:00", Cron: []string{"0 3 * * *", "30 12 * * 1"}, Timezone: "UTC"}, begin, last, scheduler.Options{}, nil)
	h.until(begin.Add(48 * time.Hour))
	// 1 June 2026 is a Monday.
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 12:30,06-02 03:00,06-03 03:00" {
		t.Fatalf("backups at %s", got)
	}
}

// A backup that outlasts the next ticks: those ticks are skipped (logged
// and counted), never run concurrently nor queued.
func TestOverlapIsSkipped(t *testing.T) {
	begin := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	last := begin.Add(-time.Hour)
	h := start(t, config.Schedule{IntervalHours: 6, DailyAt: "03:00", Timezone: "UTC"}, begin, last, scheduler.Options{}, func(f *fakeJob) {
		f.outcome = func(n int) error {
			if n == 0 { // the 03:00 backup takes 14 hours
				f.clk.Advance(14 * time.Hour)
			}
			return nil
		}
	})
	h.until(begin.Add(30 * time.Hour))
	// Last backup 01:00; 03:00 runs until 17:00 (the interval ticks of
	// 09:00 and 15:00 are skipped); then 6 h after the last tick: 21:00,
	// and 03:00.
	got := h.job.times(time.UTC)
	want := []string{"06-01 03:00", "06-01 21:00", "06-02 03:00"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("backups at %v, want %v", got, want)
	}
	if s := h.skipped(); strings.Join(s, ",") != "running,running" {
		t.Fatalf("skipped %v, want two ticks while running", s)
	}
	if h.job.maxRun != 1 {
		t.Fatalf("%d backups at once", h.job.maxRun)
	}
	if !strings.Contains(h.log(), "scheduled backup skipped") {
		t.Fatal("skip not logged")
	}
}

// The Backuper refusing (an API backup or restore runs) is a skipped tick.
func TestBusyIsSkipped(t *testing.T) {
	begin := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	h := start(t, config.Schedule{DailyAt: "03:00", Timezone: "UTC"}, begin, begin.Add(-time.Hour), scheduler.Options{}, func(f *fakeJob) {
		f.outcome = func(n int) error {
			if n == 0 {
				return scheduler.Skip("busy", errors.New("a backup or restore is already running"))
			}
			return nil
		}
	})
	h.until(begin.Add(48 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 03:00,06-02 03:00" {
		t.Fatalf("tries at %s", got)
	}
	if s := h.skipped(); strings.Join(s, ",") != "busy" {
		t.Fatalf("skipped %v", s)
	}
}

// Down for five days: one catch-up backup at start, not five.
func TestMissedSlotsCaughtUpOnce(t *testing.T) {
	begin := time.Date(2026, 6, 10, 10, 0, 0, 0, time.UTC)
	last := time.Date(2026, 6, 5, 3, 0, 0, 0, time.UTC)
	h := start(t, config.Schedule{DailyAt: "03:00", Cron: []string{"0 */4 * * *"}, Timezone: "UTC"}, begin, last, scheduler.Options{}, nil)
	h.until(begin.Add(5 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-10 10:00,06-10 12:00" {
		t.Fatalf("backups at %s", got)
	}
	if d := h.job.dues[0]; !d.Equal(time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("catch-up serves %v, want the latest missed slot 08:00", d)
	}
	if !strings.Contains(h.log(), "catching up once") {
		t.Fatal("catch-up not logged")
	}
}

// A restart in the middle of an interval keeps it: the time of the last
// backup comes from the newest archive.
func TestRestartKeepsInterval(t *testing.T) {
	begin := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	last := begin.Add(-2 * time.Hour) // the previous process backed up at 08:00
	h := start(t, config.Schedule{IntervalHours: 6, Timezone: "UTC"}, begin, last, scheduler.Options{}, nil)
	h.until(begin.Add(10 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 14:00,06-01 20:00" {
		t.Fatalf("backups at %s", got)
	}
}

// A backup taken by hand (or by another agent) in between counts.
func TestManualBackupPostponesInterval(t *testing.T) {
	begin := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	h := start(t, config.Schedule{IntervalHours: 6, Timezone: "UTC"}, begin, begin, scheduler.Options{MaxWait: time.Hour}, nil)
	h.until(begin.Add(3 * time.Hour))
	h.job.mu.Lock()
	h.job.last = begin.Add(3 * time.Hour) // `redback backup` at 13:00
	h.job.mu.Unlock()
	h.until(begin.Add(12 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 19:00" {
		t.Fatalf("backups at %s", got)
	}
}

func TestFailureDoesNotRetryAtOnce(t *testing.T) {
	begin := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	h := start(t, config.Schedule{IntervalHours: 6, Timezone: "UTC"}, begin, time.Time{}, scheduler.Options{}, func(f *fakeJob) {
		f.outcome = func(n int) error {
			if n == 0 {
				return errors.New("connection refused")
			}
			return nil
		}
	})
	h.until(begin.Add(7 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 10:00,06-01 16:00" {
		t.Fatalf("backups at %s", got)
	}
	if !strings.Contains(h.log(), "scheduled backup failed") {
		t.Fatal("failure not logged")
	}
}

func TestJitter(t *testing.T) {
	begin := time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC)
	var asked []int64
	h := start(t, config.Schedule{DailyAt: "03:00", Timezone: "UTC"}, begin, begin.Add(-time.Hour),
		scheduler.Options{Jitter: 10 * time.Minute, Rand: func(n int64) int64 {
			asked = append(asked, n)
			return int64(7 * time.Minute)
		}}, nil)
	h.until(begin.Add(26 * time.Hour))
	if got := strings.Join(h.job.times(time.UTC), ","); got != "06-01 03:07,06-02 03:07" {
		t.Fatalf("backups at %s", got)
	}
	if len(asked) != 3 || asked[0] != int64(10*time.Minute) {
		t.Fatalf("rand asked %v (once per slot)", asked)
	}
}

func TestNoFutureSlot(t *testing.T) {
	p := mustPlan(t, config.Schedule{Cron: []string{"0 0 30 2 *"}, Timezone: "UTC"})
	clk := schedulertest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	err := scheduler.New(p, &fakeJob{clk: clk}, scheduler.Options{Clock: clk}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no future slot") {
		t.Fatalf("Run: %v", err)
	}
}

func TestSkipError(t *testing.T) {
	inner := errors.New("held by host2")
	err := fmt.Errorf("wrapped: %w", scheduler.Skip("lease", inner))
	var s *scheduler.SkipError
	if !errors.As(err, &s) || s.Reason != "lease" || !errors.Is(err, inner) {
		t.Fatalf("%v", err)
	}
}
