// Package scheduled is one scheduled backup of an agent.Service, as the
// scheduler runs it: under the lease (when enabled), a backup, then
// retention, metrics and notifications.
package scheduled

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/lease"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/agent/scheduler"
)

// Service is what a Job needs of an agent.Service.
type Service interface {
	Backup(ctx context.Context, o agent.BackupOptions) (agent.BackupResult, error)
	// LastBackup is the creation time of the newest archive; Prune applies
	// retention, sparing archives being read.
	LastBackup(ctx context.Context) (time.Time, error)
	Prune(ctx context.Context, policy retention.Policy, dryRun bool) (agent.PruneResult, []retention.Decision, error)
}

var _ Service = (*agent.Service)(nil)

// Notifier sends an event (a *notify.Set).
type Notifier interface {
	Notify(ctx context.Context, e notify.Event) error
}

// Options assemble a Job.
type Options struct {
	// Target names the Redis server in metrics, logs and notifications
	// (default: the server's address and database).
	Target string
	// Compress overrides backup.compress (redback schedule's COMPRESS).
	Compress *bool
	// Policy is the retention applied after each successful backup.
	Policy retention.Policy
	// Notify receives the outcome of each backup (none when nil).
	Notify Notifier
	// Metrics holds the target's series (metrics.Default() when nil); the
	// outcomes of backups and prunes reach it through the Service's
	// observers (metrics.Observer), whoever started them.
	Metrics *metrics.Metrics
	// Lease, when set, must be held for a backup to run.
	Lease *lease.Lease
	// Drill, when set, drills each new archive after its backup (and
	// retention): drill.schedule after_backup.
	Drill *DrillJob
	Log   *slog.Logger
	// Now is the clock of events (time.Now when nil).
	Now func() time.Time
}

// Job implements scheduler.Backuper over a Service.
type Job struct {
	svc  Service
	o    Options
	host string
}

var _ scheduler.Backuper = (*Job)(nil)

// New returns the job of svc.
func New(svc Service, o Options) *Job {
	if o.Metrics == nil {
		o.Metrics = metrics.Default()
	}
	host := defaults(&o.Target, &o.Log, &o.Now)
	o.Metrics.Target(o.Target)
	return &Job{svc: svc, o: o, host: host}
}

// defaults fills what every job's options default alike: the target
// ("default"), the log (discarded when nil; with the target added) and the
// clock (time.Now). It returns the host's name, for events.
func defaults(target *string, log **slog.Logger, now *func() time.Time) string {
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
	if *now == nil {
		*now = time.Now
	}
	if *target == "" {
		*target = "default"
	}
	*log = (*log).With("target", *target)
	host, _ := os.Hostname()
	return host
}

// FromConfig assembles the job of an agent's target from its configuration:
// the target's name (named after the Redis address when ""), retention in
// the schedule's time zone, notifications, the lease (the Service's, closed
// with it), the metrics m (metrics.Default() when nil).
func FromConfig(svc *agent.Service, target string, cfg config.Config, log *slog.Logger, m *metrics.Metrics) (*Job, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, err := scheduler.NewPlan(cfg.Schedule)
	if err != nil {
		return nil, err
	}
	pol := retention.FromConfig(cfg.Retention, plan.Location)
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	ns, err := notify.FromConfig(cfg.Notify, log)
	if err != nil {
		return nil, err
	}
	if target == "" {
		target = svc.Address()
	}
	o := Options{Target: target, Policy: pol, Log: log, Metrics: m}
	if ns.Len() > 0 {
		o.Notify = ns
	}
	if cfg.Lease.Enabled {
		l, err := svc.Lease()
		if err != nil {
			return nil, err
		}
		o.Lease = l
	}
	if DrillsAfterBackup(cfg.Drill) {
		if o.Drill, err = DrillFromConfig(svc, target, cfg, log); err != nil {
			return nil, err
		}
	}
	return New(svc, o), nil
}

// Target returns the job's target name.
func (j *Job) Target() string { return j.o.Target }

// Metrics returns the collectors the job records to.
func (j *Job) Metrics() *metrics.Metrics { return j.o.Metrics }

// LastBackup returns the creation time of the newest archive.
func (j *Job) LastBackup(ctx context.Context) (time.Time, error) { return j.svc.LastBackup(ctx) }

// Backup runs one scheduled backup for the tick due at due (see Run).
func (j *Job) Backup(ctx context.Context, due time.Time) error {
	_, err := j.Run(ctx, due, nil)
	return err
}

// Run runs one scheduled backup for the tick due at due, reporting the
// dump's progress to progress (when not nil). It returns a
// *scheduler.SkipError when another agent holds the lease ("lease"), an
// archive at least as new as due exists ("done") or the Service is busy
// ("busy"). After a success it applies retention and notifies; after a
// failure it notifies. Notification and retention failures are logged,
// never returned.
func (j *Job) Run(ctx context.Context, due time.Time, progress func(agent.Progress)) (agent.BackupResult, error) {
	if j.o.Lease == nil {
		return j.run(ctx, due, progress)
	}
	var res agent.BackupResult
	err := j.o.Lease.Do(ctx, func(ctx context.Context) error {
		var err error
		res, err = j.run(ctx, due, progress)
		return err
	})
	if errors.Is(err, lease.ErrHeld) {
		return res, scheduler.Skip("lease", err)
	}
	return res, err
}

func (j *Job) run(ctx context.Context, due time.Time, progress func(agent.Progress)) (agent.BackupResult, error) {
	if last, err := j.LastBackup(ctx); err == nil && !due.IsZero() && !last.Before(due) {
		return agent.BackupResult{}, scheduler.Skip("done", fmt.Errorf("an archive from %s already serves this tick", last.UTC().Format(time.RFC3339)))
	}
	res, err := j.svc.Backup(ctx, agent.BackupOptions{Compress: j.o.Compress, Progress: progress})
	if errors.Is(err, agent.ErrBusy) {
		return res, scheduler.Skip("busy", err)
	}
	end := j.o.Now()
	// The Service's observers (metrics.Observer, attached by the daemon)
	// record the backup and the prune, as they do those of the API.
	if err != nil {
		if ctx.Err() != nil {
			return res, err // shutting down: nobody to tell
		}
		j.notify(ctx, notify.NewEvent(j.o.Target, j.host, end, res, err))
		return res, err
	}
	if _, _, perr := j.svc.Prune(ctx, j.o.Policy, false); perr != nil {
		j.o.Log.Error("retention failed", "err", perr)
	}
	j.notify(ctx, notify.NewEvent(j.o.Target, j.host, end, res, nil))
	if j.o.Drill != nil {
		// The drill's outcome is its own (metrics, manifest, notification):
		// the backup succeeded either way.
		if _, err := j.o.Drill.Run(ctx, res.Filename); err != nil {
			j.o.Log.Error("drill after backup failed", "file", res.Filename, "err", err)
		}
	}
	return res, nil
}

// DrillsAfterBackup says whether drill runs after each scheduled backup
// (enabled, schedule "" or config.DrillAfterBackup).
func DrillsAfterBackup(d config.Drill) bool {
	return d.Enabled && (d.Schedule == "" || d.Schedule == config.DrillAfterBackup)
}

func (j *Job) notify(ctx context.Context, e notify.Event) {
	if j.o.Notify == nil {
		return
	}
	// Notifications finish even when shutdown begins, within a minute.
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = j.o.Notify.Notify(nctx, e) // failures are logged by the notifier
}
