// Package job is one scheduled backup of an agent.Service, as the
// scheduler runs it: under the lease (when enabled), a backup, then
// retention, metrics and notifications.
package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/lease"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/sinks"
)

// Service is what a Job needs of an agent.Service.
type Service interface {
	Backup(ctx context.Context, o agent.BackupOptions) (agent.BackupResult, error)
	// Delete refuses an archive being read with an error wrapping
	// agent.ErrBusy.
	Delete(ctx context.Context, name string) (agent.DeleteResult, error)
	Sink() *sinks.Sink
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
	// Metrics records outcomes (metrics.Default() when nil).
	Metrics *metrics.Metrics
	// Lease, when set, must be held for a backup to run.
	Lease *lease.Lease
	Log   *slog.Logger
	// Now is the clock of metrics and events (time.Now when nil).
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
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Target == "" {
		o.Target = "default"
	}
	o.Log = o.Log.With("target", o.Target)
	o.Metrics.Target(o.Target)
	host, _ := os.Hostname()
	return &Job{svc: svc, o: o, host: host}
}

// FromConfig assembles the job of an agent's target from its configuration:
// the target's name (named after the Redis address when ""), retention in
// the schedule's time zone, notifications, the lease (a client of the
// backed-up Redis; close it with the returned func), default metrics.
func FromConfig(svc *agent.Service, target string, cfg config.Config, log *slog.Logger) (*Job, func() error, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, err := scheduler.NewPlan(cfg.Schedule)
	if err != nil {
		return nil, nil, err
	}
	pol := retention.FromConfig(cfg.Retention, plan.Location)
	if err := pol.Validate(); err != nil {
		return nil, nil, err
	}
	ns, err := notify.FromConfig(cfg.Notify, log)
	if err != nil {
		return nil, nil, err
	}
	if target == "" {
		target = TargetName(svc.RedisOptions())
	}
	o := Options{Target: target, Policy: pol, Log: log}
	if ns.Len() > 0 {
		o.Notify = ns
	}
	closer := func() error { return nil }
	if cfg.Lease.Enabled {
		rdb := redis.NewClient(svc.RedisOptions())
		l, err := lease.New(rdb, cfg.Lease.Key, cfg.Lease.TTL)
		if err != nil {
			rdb.Close()
			return nil, nil, fmt.Errorf("lease: %w", err)
		}
		o.Lease = l
		closer = rdb.Close
	}
	return New(svc, o), closer, nil
}

// TargetName is the default name of a Redis server: its address and
// database ("localhost:6379/0"), never its password.
func TargetName(o *redis.Options) string {
	if o == nil {
		return "default"
	}
	return o.Addr + "/" + strconv.Itoa(o.DB)
}

// Target returns the job's target name.
func (j *Job) Target() string { return j.o.Target }

// Metrics returns the collectors the job records to.
func (j *Job) Metrics() *metrics.Metrics { return j.o.Metrics }

// LastBackup returns the creation time of the newest archive in the sink.
func (j *Job) LastBackup(ctx context.Context) (time.Time, error) {
	infos, err := j.svc.Sink().List(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("list archives: %w", err)
	}
	var last time.Time
	for _, in := range infos {
		if in.Created.After(last) {
			last = in.Created
		}
	}
	return last, nil
}

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
func (j *Job) Run(ctx context.Context, due time.Time, progress func(engine.Progress)) (agent.BackupResult, error) {
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

func (j *Job) run(ctx context.Context, due time.Time, progress func(engine.Progress)) (agent.BackupResult, error) {
	if last, err := j.LastBackup(ctx); err == nil && !due.IsZero() && !last.Before(due) {
		return agent.BackupResult{}, scheduler.Skip("done", fmt.Errorf("an archive from %s already serves this tick", last.UTC().Format(time.RFC3339)))
	}
	start := j.o.Now()
	res, err := j.svc.Backup(ctx, agent.BackupOptions{Compress: j.o.Compress, Progress: progress})
	if errors.Is(err, agent.ErrBusy) {
		return res, scheduler.Skip("busy", err)
	}
	end := j.o.Now()
	j.o.Metrics.Started(j.o.Target, start)
	if err != nil {
		j.o.Metrics.Failed(j.o.Target)
		if ctx.Err() != nil {
			return res, err // shutting down: nobody to tell
		}
		j.notify(ctx, notify.NewEvent(j.o.Target, j.host, end, res, err))
		return res, err
	}
	j.o.Metrics.Succeeded(j.o.Target, end, end.Sub(start), res.Size, res.KeysCount)
	j.o.Metrics.Suspect(j.o.Target, res.Suspect != "")
	if pr, _, perr := Prune(ctx, j.svc, j.o.Policy, false, j.o.Log); perr != nil {
		j.o.Log.Error("retention failed", "err", perr)
	} else if len(pr.Deleted) > 0 {
		j.o.Metrics.Pruned(j.o.Target, len(pr.Deleted))
	}
	j.notify(ctx, notify.NewEvent(j.o.Target, j.host, end, res, nil))
	return res, nil
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

// Prune applies policy to svc's archives: it deletes what retention.Plan
// does not keep, except archives being read (svc.Delete refuses those with
// ErrBusy: they are reported as kept), and returns the result in `redback
// prune`'s shape (Keep is the policy's keep_last) with the decisions. With
// dryRun nothing is deleted (and archives being read are not looked for).
func Prune(ctx context.Context, svc Service, policy retention.Policy, dryRun bool, log *slog.Logger) (agent.PruneResult, []retention.Decision, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := agent.PruneResult{Success: true, DryRun: dryRun, Keep: policy.Last, Kept: []string{}, Deleted: []string{}}
	fail := func(err error) (agent.PruneResult, []retention.Decision, error) {
		res.Success = false
		res.Error = err.Error()
		return res, nil, err
	}
	if err := policy.Validate(); err != nil {
		return fail(fmt.Errorf("%w: %v", agent.ErrInvalid, err))
	}
	infos, err := svc.Sink().List(ctx)
	if err != nil {
		return fail(fmt.Errorf("list archives: %w", err))
	}
	archives := retention.FromInfos(infos)
	ds := retention.Plan(archives, policy, time.Now())
	if sus := retention.Suspects(archives, policy.SuspectDrop); len(sus) > 0 {
		res.Suspect = sus
	}
	for _, d := range ds {
		if d.Keep {
			res.Kept = append(res.Kept, d.Name)
			continue
		}
		if dryRun {
			res.Deleted = append(res.Deleted, d.Name)
			continue
		}
		_, derr := svc.Delete(ctx, d.Name)
		switch {
		case errors.Is(derr, agent.ErrBusy):
			log.Info("archive spared: being read", "file", d.Name)
			res.Kept = append(res.Kept, d.Name)
			continue
		case errors.Is(derr, agent.ErrNotFound):
		case derr != nil:
			return fail(fmt.Errorf("delete %s: %w", d.Name, derr))
		}
		log.Info("archive pruned", "file", d.Name, "created", d.Created.UTC().Format(time.RFC3339))
		res.Deleted = append(res.Deleted, d.Name)
	}
	return res, ds, nil
}
