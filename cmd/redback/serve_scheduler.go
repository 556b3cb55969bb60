package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/agent/scheduler/job"
)

func init() {
	serveRunners = append(serveRunners, serveScheduler)
}

// serveScheduler starts the scheduler inside `redback serve` when
// schedule.enabled is set. Its backups run as jobs of the API's job
// manager: they show in /api/jobs, exclude API backups and restores, and
// may finish within api.shutdown_timeout when serve stops.
func serveScheduler(_ context.Context, svc *agent.Service, jm *jobs.Manager, log *slog.Logger) (func(context.Context) error, error) {
	cfg := svc.Config()
	if !cfg.Schedule.Enabled {
		log.Info("scheduler disabled (schedule.enabled: false)")
		return func(context.Context) error { return nil }, nil
	}
	sch, closeJob, err := newScheduler(svc, cfg, log, func(j *job.Job) scheduler.Backuper {
		return managedJob{j: j, jm: jm}
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
	j  *job.Job
	jm *jobs.Manager
}

func (m managedJob) LastBackup(ctx context.Context) (time.Time, error) { return m.j.LastBackup(ctx) }

// Backup starts the backup as a "backup" job and waits for it. A running
// API backup or restore makes it a skipped tick; when ctx ends first (serve
// stops) the job goes on under the manager's shutdown rules.
func (m managedJob) Backup(ctx context.Context, due time.Time) error {
	id, err := m.jm.Start(jobs.KindBackup, func(jctx context.Context, report func(jobs.Progress)) (any, error) {
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
