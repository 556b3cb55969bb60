// Package scheduler takes backups when a Plan says so: every interval, at a
// daily time (the seed's 03:00) and at cron expressions, in a time zone.
//
// Its contract:
//   - Never two backups at once: the scheduler runs one backup at a time,
//     and a tick that comes while a backup runs (here, or through the API:
//     the Backuper answers busy) is recorded as skipped, not queued.
//   - A slot missed while the agent was down is caught up once at start,
//     however many slots were missed.
//   - The time of the last backup survives a restart: it is the creation
//     time of the newest archive in the sink (Backuper.LastBackup), so no
//     state file can disagree with the storage, backups taken by hand or
//     by another agent count, and a new host picks up where the old left.
//   - Daylight saving time neither skips nor doubles a daily slot (see Plan).
//
// The job of an agent (backup, retention, metrics, notifications, lease)
// is assembled by package agent/scheduled.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backuper is what the scheduler runs.
type Backuper interface {
	// LastBackup returns the creation time of the newest archive, or the
	// zero time when there is none.
	LastBackup(ctx context.Context) (time.Time, error)
	// Backup takes one backup for the tick due at due. It returns a
	// *SkipError when it did not run (busy, lease held elsewhere, already
	// done since due). Cancelling ctx aborts the backup.
	Backup(ctx context.Context, due time.Time) error
}

// SkipError says why a tick did not lead to a backup.
type SkipError struct {
	// Reason is a short label for metrics: "running", "busy", "lease", "done".
	Reason string
	Err    error
}

func (e *SkipError) Error() string {
	if e.Err == nil {
		return "skipped: " + e.Reason
	}
	return "skipped: " + e.Reason + ": " + e.Err.Error()
}

func (e *SkipError) Unwrap() error { return e.Err }

// Options tune a Scheduler. The zero value is valid.
type Options struct {
	// Clock is the source of time (RealClock when nil).
	Clock Clock
	// Jitter delays each backup by a random duration in [0, Jitter).
	Jitter time.Duration
	// Rand returns a random int64 in [0, n) (rand.Int64N when nil).
	Rand func(n int64) int64
	// MaxWait bounds one wait (default one minute), so that the
	// scheduler notices a wall clock that jumped or a host that slept.
	MaxWait time.Duration
	// Log receives the scheduler's decisions (discarded when nil).
	Log *slog.Logger
	// OnSkip is called for every skipped tick, with its reason.
	OnSkip func(reason string)
	// OnNext is called when the time of the next backup changes.
	OnNext func(t time.Time)
}

// Scheduler runs backups as its Plan says. Create it with New.
type Scheduler struct {
	plan *Plan
	job  Backuper
	o    Options

	last      time.Time // start of the newest backup: the interval counts from it
	cursor    time.Time // calendar slots up to here are done with
	jitterFor time.Time
	jitter    time.Duration
	announced time.Time
}

// New returns a scheduler of plan running job.
func New(plan *Plan, job Backuper, o Options) *Scheduler {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Int64N
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{plan: plan, job: job, o: o}
}

// Run schedules backups until ctx is cancelled, then returns nil (a backup
// in progress is cancelled with ctx). It returns an error only when the plan
// has no future slot at all.
func (s *Scheduler) Run(ctx context.Context) error {
	clk := s.o.Clock
	now := clk.Now()
	last, err := s.job.LastBackup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.o.Log.Warn("cannot read the time of the last backup; assuming none", "err", err)
	}
	s.last = last
	s.cursor = now
	if !last.IsZero() && last.Before(now) {
		s.cursor = last
	}
	s.o.Log.Info("scheduler started", "plan", s.plan.String(), "last_backup", fmtTime(last))
	for {
		now = clk.Now()
		due := s.nextDue(now)
		if due.IsZero() {
			return errors.New("schedule: no future slot (check the cron expressions)")
		}
		fire := due.Add(s.jitterOf(due))
		if fire.After(now) {
			if !fire.Equal(s.announced) {
				s.announced = fire
				s.o.Log.Info("next scheduled backup", "at", fmtTime(fire))
				if s.o.OnNext != nil {
					s.o.OnNext(fire)
				}
			}
			t := clk.NewTimer(min(fire.Sub(now), s.o.MaxWait))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C():
			}
			continue
		}
		s.fire(ctx, now)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// nextDue returns the earliest time a backup is due, possibly in the past.
func (s *Scheduler) nextDue(now time.Time) time.Time {
	var due time.Time
	if s.plan.Interval > 0 {
		if s.last.IsZero() {
			due = now // never backed up: now
		} else {
			due = s.plan.NextInterval(s.last)
		}
	}
	if n := s.plan.NextSlot(s.cursor); !n.IsZero() && (due.IsZero() || n.Before(due)) {
		due = n
	}
	return due
}

func (s *Scheduler) jitterOf(due time.Time) time.Duration {
	if s.o.Jitter <= 0 {
		return 0
	}
	if !due.Equal(s.jitterFor) {
		s.jitterFor = due
		s.jitter = time.Duration(s.o.Rand(int64(s.o.Jitter)))
	}
	return s.jitter
}

// dueSlots returns the latest tick at or before now and how many calendar
// slots fell due since the cursor.
func (s *Scheduler) dueSlots(now time.Time) (latest time.Time, missed int) {
	for t := s.plan.NextSlot(s.cursor); !t.IsZero() && !t.After(now); t = s.plan.NextSlot(t) {
		latest = t
		if missed++; missed >= 100000 {
			latest = now
			break
		}
	}
	if s.plan.Interval > 0 {
		i := now
		if !s.last.IsZero() {
			i = s.plan.NextInterval(s.last)
		}
		if !i.After(now) && i.After(latest) {
			latest = i
		}
	}
	return latest, missed
}

func (s *Scheduler) fire(ctx context.Context, now time.Time) {
	// Someone else (a manual backup, another agent) may have backed up
	// since: that counts.
	if l, err := s.job.LastBackup(ctx); err != nil {
		s.o.Log.Warn("cannot read the time of the last backup", "err", err)
	} else if l.After(s.last.Add(time.Minute)) {
		// (Our own archives are created seconds after the start of their
		// backup: they must not shift the interval.)
		s.last = l
		if l.After(s.cursor) && !l.After(now) {
			s.cursor = l
		}
	}
	due, missed := s.dueSlots(now)
	if due.IsZero() {
		return // served already
	}
	if missed > 1 {
		s.o.Log.Info("catching up once for missed slots", "missed", missed, "latest", fmtTime(due))
	}
	start := now
	err := s.job.Backup(ctx, due)
	end := s.o.Clock.Now()
	if ctx.Err() != nil {
		return
	}
	var skip *SkipError
	switch {
	case errors.As(err, &skip):
		s.skipped(skip.Reason, due, skip.Err)
	case err != nil:
		s.o.Log.Error("scheduled backup failed", "due", fmtTime(due), "err", err)
	}
	if start.After(s.last) {
		s.last = start
	}
	// Ticks that came while the backup ran are skipped, not queued.
	for t := s.plan.NextSlot(start); !t.IsZero() && !t.After(end); t = s.plan.NextSlot(t) {
		s.skipped("running", t, nil)
	}
	if s.plan.Interval > 0 {
		for t := s.plan.NextInterval(s.last); !t.After(end); t = s.plan.NextInterval(t) {
			s.skipped("running", t, nil)
			s.last = t
		}
	}
	if end.After(s.cursor) {
		s.cursor = end
	}
}

func (s *Scheduler) skipped(reason string, tick time.Time, err error) {
	args := []any{"reason", reason, "tick", fmtTime(tick)}
	if err != nil {
		args = append(args, "detail", err.Error())
	}
	s.o.Log.Warn("scheduled backup skipped", args...)
	if s.o.OnSkip != nil {
		s.o.OnSkip(reason)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Format(time.RFC3339)
}

// Error helpers for Backupers.

// Skip returns a *SkipError.
func Skip(reason string, err error) error { return &SkipError{Reason: reason, Err: err} }
