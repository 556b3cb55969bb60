package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/agent/scheduler/job"
)

func init() {
	serveRunners = append(serveRunners, serveScheduler)
}

// serveScheduler starts the scheduler of one target inside `redback serve`
// when its schedule.enabled is set. Its backups run as jobs of the API's
// job manager, in the target's slot: they show in /api/jobs, exclude the
// API's backups and restores of the same target (not of the others), and
// may finish within api.shutdown_timeout when serve stops.
func serveScheduler(_ context.Context, t serveTarget, jm *jobs.Manager, log *slog.Logger) (func(context.Context) error, error) {
	cfg := t.cfg
	if !cfg.Schedule.Enabled {
		log.Info("scheduler disabled (schedule.enabled: false)", "target", t.name)
		return func(context.Context) error { return nil }, nil
	}
	sch, closeJob, err := newScheduler(t.svc, t.name, cfg, t.clock, log, func(j *job.Job) scheduler.Backuper {
		return managedJob{j: j, jm: jm, slot: t.name}
	})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		defer closeJob()
		return sch.Run(ctx)
	}, nil
}

// managedJob runs a scheduled backup as a job of the job manager.
type managedJob struct {
	j    *job.Job
	jm   *jobs.Manager
	slot string // the target's name
}

func (m managedJob) LastBackup(ctx context.Context) (time.Time, error) { return m.j.LastBackup(ctx) }

// Backup starts the backup as a "backup" job and waits for it. A running
// API backup or restore makes it a skipped tick; when ctx ends first (serve
// stops) the job goes on under the manager's shutdown rules.
func (m managedJob) Backup(ctx context.Context, due time.Time) error {
	id, err := m.jm.StartIn(m.slot, jobs.KindBackup, func(jctx context.Context, report func(jobs.Progress)) (any, error) {
		res, err := m.j.Run(jctx, due, func(p engine.Progress) {
			report(jobs.Progress{KeysDone: p.KeysDone, KeysTotal: p.KeysTotal, Bytes: p.Bytes})
		})
		return res, err
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
