package scheduled

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/scheduler"
)

// Driller is what a DrillJob needs of an agent.Service.
type Driller interface {
	Drill(ctx context.Context, ref string, o agent.DrillOptions) (agent.DrillResult, error)
	// LastDrill is the start of the newest drill recorded in storage.
	LastDrill(ctx context.Context) (time.Time, error)
}

var _ Driller = (*agent.Service)(nil)

// DrillOptions assemble a DrillJob.
type DrillOptions struct {
	// Target names the Redis server in metrics, logs and notifications.
	Target string
	// Identities open encrypted archives (restore.identities).
	Identities []age.Identity
	// Notify receives failed drills (none when nil).
	Notify Notifier
	// Metrics records outcomes (metrics.DefaultDrills() when nil).
	Metrics *metrics.Drills
	Log     *slog.Logger
	// Now is the clock of metrics and events (time.Now when nil).
	Now func() time.Time
}

// DrillJob runs restore drills of one target: after each scheduled backup
// (Job's Options.Drill), or on its own schedule as a scheduler.Backuper
// (drill.schedule a cron expression).
type DrillJob struct {
	svc  Driller
	o    DrillOptions
	host string
}

var _ scheduler.Backuper = (*DrillJob)(nil)

// NewDrill returns the drill job of svc.
func NewDrill(svc Driller, o DrillOptions) *DrillJob {
	if o.Metrics == nil {
		o.Metrics = metrics.DefaultDrills()
	}
	host := defaults(&o.Target, &o.Log, &o.Now)
	o.Metrics.Target(o.Target)
	return &DrillJob{svc: svc, o: o, host: host}
}

// DrillFromConfig assembles the drill job of a target whose drill section
// is enabled (nil when it is not): restore.identities, notifications,
// default metrics.
func DrillFromConfig(svc *agent.Service, target string, cfg config.Config, log *slog.Logger) (*DrillJob, error) {
	if !cfg.Drill.Enabled {
		return nil, nil
	}
	ids, err := agent.ConfigKeys(cfg.Restore).Load()
	if err != nil {
		return nil, fmt.Errorf("drill: %w", err)
	}
	ns, err := notify.FromConfig(cfg.Notify, log)
	if err != nil {
		return nil, err
	}
	if target == "" {
		target = svc.Address()
	}
	o := DrillOptions{Target: target, Identities: ids, Log: log}
	if ns.Len() > 0 {
		o.Notify = ns
	}
	return NewDrill(svc, o), nil
}

// Run drills archive ref (a name or agent.Latest), records the outcome in
// the metrics, and notifies a failure: an archive that did not restore to
// what it records, or a drill that could not run (no scratch server, one
// holding foreign keys). A busy drill is a *scheduler.SkipError
// ("busy"), neither counted nor notified.
func (d *DrillJob) Run(ctx context.Context, ref string) (agent.DrillResult, error) {
	start := d.o.Now()
	res, err := d.svc.Drill(ctx, ref, agent.DrillOptions{Identities: d.o.Identities})
	if errors.Is(err, agent.ErrBusy) {
		return res, scheduler.Skip("busy", err)
	}
	end := d.o.Now()
	if err != nil && ctx.Err() != nil {
		return res, err // shutting down: not the archive's fault
	}
	d.o.Metrics.Drilled(d.o.Target, start, end, err == nil, res.Compared)
	if err == nil {
		return res, nil
	}
	if d.o.Notify != nil {
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = d.o.Notify.Notify(nctx, notify.NewDrillEvent(d.o.Target, d.host, end, res)) // failures are logged by the notifier
	}
	return res, err
}

// LastBackup (for the scheduler) is the start of the newest drill.
func (d *DrillJob) LastBackup(ctx context.Context) (time.Time, error) { return d.svc.LastDrill(ctx) }

// Backup (for the scheduler) drills the newest archive for the tick due
// at due, unless a drill at least as new as due exists ("done").
func (d *DrillJob) Backup(ctx context.Context, due time.Time) error {
	if last, err := d.svc.LastDrill(ctx); err == nil && !due.IsZero() && !last.Before(due) {
		return scheduler.Skip("done", fmt.Errorf("a drill from %s already serves this tick", last.UTC().Format(time.RFC3339)))
	}
	_, err := d.Run(ctx, agent.Latest)
	return err
}
