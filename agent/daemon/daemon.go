// Package daemon is the long-running agent of `redback serve` and `redback
// schedule`: it owns every target's agent.Service, its scheduler and its
// lease, runs them side by side with the caller's servers (the API), and
// stops them all gracefully. The command line only parses flags and wires.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/scheduled"
	"github.com/redback-dev/redback/agent/scheduler"
)

// Target is one Redis server of the configuration.
type Target struct {
	// Name labels the target in metrics, logs, notifications, job slots
	// and the API.
	Name string
	// Listed says the name comes from agent.yaml's targets list: the
	// target's log records then carry target=NAME.
	Listed bool
	Config config.Config
}

// Logger returns log with the target's name added when it is listed (the
// log of a single-server agent stays as it was).
func (t Target) Logger(log *slog.Logger) *slog.Logger {
	if t.Listed {
		return log.With("target", t.Name)
	}
	return log
}

// Options configure a Daemon.
type Options struct {
	// Log receives the daemon's records (default: discard).
	Log *slog.Logger
	// Clock drives the schedulers (nil: the real clock; tests set one).
	Clock scheduler.Clock
	// Jobs, when set, runs the scheduled backups as jobs of this manager in
	// the target's slot (serve: they show in /api/jobs and exclude the
	// API's backups and restores of the same target), and Run lets running
	// jobs finish for ShutdownTimeout when it stops.
	Jobs *jobs.Manager
	// ShutdownTimeout bounds the wait for running jobs at the end of Run
	// (default 5 minutes).
	ShutdownTimeout time.Duration
	// Archive runs the continuous archive of each target with
	// archiving.enabled (serve does; schedule does not).
	Archive bool
	// ScheduleAll schedules every target whatever its schedule.enabled
	// says (`redback schedule`); otherwise only the enabled ones are.
	ScheduleAll bool
	// Metrics records every operation of every target, scheduled or not,
	// and watches its storage (default metrics.Default()).
	Metrics *metrics.Metrics
}

// Running is one target as the Daemon runs it.
type Running struct {
	Target
	Service *agent.Service
}

// Daemon holds the targets' Services and schedulers. Create it with Open;
// Close it after Run returns.
type Daemon struct {
	o       Options
	targets []Running
	schs    []*scheduler.Scheduler
	// archiving are the continuous archives (archiving.enabled) to run.
	archiving []Runner
}

// Open opens every target's Service and assembles its scheduler (and
// lease). A target that fails stops it all: what was opened is closed, and
// the error names a listed target. A configuration error wraps
// agent.ErrInvalid.
func Open(ctx context.Context, ts []Target, o Options) (d *Daemon, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Minute
	}
	if o.Metrics == nil {
		o.Metrics = metrics.Default()
	}
	d = &Daemon{o: o}
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	named := func(t Target, err error) error {
		if t.Listed {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		return err
	}
	for _, t := range ts {
		svc, err := agent.New(ctx, t.Config, t.Logger(o.Log))
		if err != nil {
			return d, named(t, err)
		}
		d.targets = append(d.targets, Running{Target: t, Service: svc})
		name := t.Name
		if name == "" {
			name = svc.Address() // as scheduled.FromConfig names it
		}
		svc.Observe(o.Metrics.Observer(name))
		o.Metrics.Watch(ctx, name, svc.Inventory)
		// redback check's checks, logged: a failure is a warning (the
		// agent starts anyway: Redis may come up later, the first backup
		// is yet to be taken).
		for _, c := range svc.Check(ctx, t.Config.API.ReadyMaxAge) {
			if !c.OK {
				t.Logger(o.Log).Warn("check failed at start", "check", c.Name, "detail", c.Detail)
			}
		}
		if o.Archive && t.Config.Archiving.Enabled {
			d.archiving = append(d.archiving, svc.RunArchiving)
			watchArchiving(t, svc)
			o.Log.Info("archiving the replication stream (archiving.enabled)", "target", t.Name)
		}
		if sch, err := d.drillScheduler(t, svc); err != nil {
			return d, named(t, err)
		} else if sch != nil {
			d.schs = append(d.schs, sch)
			o.Log.Info("scheduling restore drills", "target", t.Name, "schedule", t.Config.Drill.Schedule)
		}
		if !o.ScheduleAll && !t.Config.Schedule.Enabled {
			o.Log.Info("scheduler disabled (schedule.enabled: false)", "target", t.Name)
			continue
		}
		sch, err := d.scheduler(t, svc)
		if err != nil {
			return d, named(t, err)
		}
		d.schs = append(d.schs, sch)
		attrs := []any{"compress", t.Config.Backup.Compress, "keep_last", t.Config.Retention.KeepLast, "storage", svc.Storage()}
		if t.Listed {
			attrs = append(attrs, "target", t.Name)
		}
		o.Log.Info("scheduling backups", attrs...)
	}
	return d, nil
}

// scheduler assembles the scheduler of one target.
func (d *Daemon) scheduler(t Target, svc *agent.Service) (*scheduler.Scheduler, error) {
	plan, err := scheduler.NewPlan(t.Config.Schedule)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	j, err := scheduled.FromConfig(svc, t.Name, t.Config, d.o.Log, d.o.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	var b scheduler.Backuper = j
	if d.o.Jobs != nil {
		b = managedJob{j: j, jm: d.o.Jobs, slot: t.Name}
	}
	m, target := d.o.Metrics, j.Target()
	return scheduler.New(plan, b, scheduler.Options{
		Clock:  d.o.Clock,
		Jitter: t.Config.Schedule.Jitter,
		Log:    d.o.Log.With("target", target),
		OnSkip: func(reason string) { m.Skipped(target, reason) },
		OnNext: func(t time.Time) { m.NextRun(target, t) },
	}), nil
}

// watchArchiving publishes the target's continuous archive in /metrics
// (labelled as its scheduled backups are).
func watchArchiving(t Target, svc *agent.Service) {
	label := t.Name
	if label == "" {
		label = svc.Address()
	}
	metrics.DefaultArchiving().Watch(label, func() (metrics.ArchivingStatus, bool) {
		st, ok := svc.ArchivingStatus()
		return metrics.ArchivingStatus{
			Connected: st.Connected, Received: st.Received, Durable: st.Durable,
			LastReceive: st.LastReceive, OldestPending: st.OldestPending,
			Segments: st.Segments, Bytes: st.Bytes, Gaps: st.Gaps, Bases: st.Resyncs,
		}, ok
	})
}

// drillScheduler assembles the scheduler of a target's drills when
// drill.schedule is a cron expression (nil otherwise: after_backup drills
// run in the backup job).
func (d *Daemon) drillScheduler(t Target, svc *agent.Service) (*scheduler.Scheduler, error) {
	dc := t.Config.Drill
	if !dc.Enabled || scheduled.DrillsAfterBackup(dc) {
		return nil, nil
	}
	plan, err := scheduler.NewPlan(config.Schedule{Cron: []string{dc.Schedule}, Timezone: t.Config.Schedule.Timezone})
	if err != nil {
		return nil, fmt.Errorf("%w: drill.schedule: %v", agent.ErrInvalid, err)
	}
	j, err := scheduled.DrillFromConfig(svc, t.Name, t.Config, d.o.Log)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	return scheduler.New(plan, j, scheduler.Options{Clock: d.o.Clock, Log: d.o.Log.With("target", t.Name, "of", "drills")}), nil
}

// Targets returns the targets in the order given to Open.
func (d *Daemon) Targets() []Running { return d.targets }

// Runner is a long-lived part run beside the schedulers (the API). It runs
// until ctx is cancelled and must return soon after, stopping gracefully;
// nil or ctx's error then. Any other error stops the Daemon.
type Runner func(ctx context.Context) error

// Run runs the schedulers and the runners until ctx is cancelled or one of
// them fails, then stops them: the schedulers and runners get their
// context cancelled; running jobs (Options.Jobs) may finish within
// ShutdownTimeout, then they are cancelled. It returns the failure, or nil
// after a stop asked for by ctx.
func (d *Daemon) Run(ctx context.Context, runners ...Runner) error {
	for _, sch := range d.schs {
		runners = append(runners, sch.Run)
	}
	runners = append(runners, d.archiving...)
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	failed := make(chan error, len(runners))
	var wg sync.WaitGroup
	for _, run := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				failed <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
		d.o.Log.Info("shutting down: no new requests; waiting for running jobs", "timeout", d.o.ShutdownTimeout)
	case runErr = <-failed:
		d.o.Log.Error("shutting down after a failure", "err", runErr)
	}
	stop()
	if d.o.Jobs != nil {
		jctx, cancel := context.WithTimeout(context.Background(), d.o.ShutdownTimeout)
		if err := d.o.Jobs.Shutdown(jctx); err != nil {
			d.o.Log.Warn("a running job was cancelled at the shutdown timeout", "timeout", d.o.ShutdownTimeout)
		}
		cancel()
	}
	wg.Wait()
	d.o.Log.Info("stopped")
	return runErr
}

// Close closes every Service (and with it its lease's client).
func (d *Daemon) Close() error {
	var errs []error
	for _, t := range d.targets {
		errs = append(errs, t.Service.Close())
	}
	d.targets = nil
	return errors.Join(errs...)
}

// managedJob runs a scheduled backup as a job of the job manager.
type managedJob struct {
	j    *scheduled.Job
	jm   *jobs.Manager
	slot string // the target's name
}

func (m managedJob) LastBackup(ctx context.Context) (time.Time, error) { return m.j.LastBackup(ctx) }

// Backup starts the backup as a "backup" job (by "scheduler") and waits for it. A running
// API backup or restore makes it a skipped tick; when ctx ends first (the
// daemon stops) the job goes on under the manager's shutdown rules.
func (m managedJob) Backup(ctx context.Context, due time.Time) error {
	id, err := m.jm.StartWith(m.slot, jobs.KindBackup, jobs.Info{By: "scheduler"}, func(jctx context.Context, report func(jobs.Progress)) (any, error) {
		return m.j.Run(jctx, due, func(p agent.Progress) {
			report(jobs.Progress{KeysDone: p.KeysDone, KeysTotal: p.KeysTotal, Bytes: p.Bytes})
		})
	})
	switch {
	case errors.Is(err, jobs.ErrBusy):
		return scheduler.Skip("busy", err)
	case errors.Is(err, jobs.ErrClosed):
		return ctx.Err()
	case err != nil:
		return err
	}
	snap, err := m.jm.Wait(ctx, id)
	if err != nil {
		return err
	}
	return snap.Err
}
