package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/redback-dev/redback/agent/jobs"
)

// targetParam is the query parameter that selects a target.
const targetParam = "target"

// target returns the target that ?target= names, or the first one when
// the parameter is absent. An unknown name is a 404; the parameter given
// twice (or empty) a 400.
func (s *Server) target(r *http.Request) (Target, error) {
	vals, ok := r.URL.Query()[targetParam]
	if !ok {
		return s.targets[0], nil
	}
	if len(vals) != 1 || vals[0] == "" {
		return Target{}, badRequest("give ?%s= once, with a target's name", targetParam)
	}
	for _, t := range s.targets {
		if t.Name == vals[0] {
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("%w: no target named %q (GET /api/targets lists them)", errNotFound, truncate(vals[0], 64))
}

// targetView is one entry of GET /api/targets.
type targetView struct {
	Name    string `json:"name"`
	Default bool   `json:"default"`
	// Redis is the server's address and database (never a password).
	Redis string `json:"redis"`
	// Storage describes the location without credentials.
	Storage      string     `json:"storage"`
	TotalBackups int        `json:"total_backups"`
	LatestBackup *backupRef `json:"latest_backup"`
	// NextRun and LastRun are the scheduler's (null without one, or
	// before its first run).
	NextRun *string  `json:"next_run"`
	LastRun *lastRun `json:"last_run"`
	// Error says why the storage could not be read (the rest is then
	// partial).
	Error string `json:"error,omitempty"`
	// Running is the id of the backup or restore running for the target.
	Running string `json:"running_job,omitempty"`
	// Health is "ok", "warning" (Warnings say what needs action) or
	// "error" (Redis or the storage cannot be reached).
	Health   string   `json:"health"`
	Warnings []string `json:"warnings"`
}

type backupRef struct {
	Filename  string `json:"filename"`
	CreatedAt string `json:"created_at"`
}

// lastRun is the outcome of the last scheduled backup.
type lastRun struct {
	StartedAt string `json:"started_at"`
	// Outcome is "succeeded" or "failed".
	Outcome string `json:"outcome"`
}

// listTargets answers GET /api/targets: every target with its storage,
// its newest archive and the scheduler's next and last run.
func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) error {
	out := struct {
		Targets []targetView `json:"targets"`
	}{Targets: make([]targetView, 0, len(s.targets))}
	for i, t := range s.targets {
		v := targetView{Name: t.Name, Default: i == 0}
		v.Redis = t.Service.Address()
		st, err := t.Service.Stats(r.Context())
		if err != nil {
			v.Error = publicMessage(err)
		} else {
			v.Storage, v.TotalBackups = publicStorage(r, st.Storage), st.TotalBackups
			if l := st.LatestBackup; l != nil {
				v.LatestBackup = &backupRef{Filename: l.Filename, CreatedAt: l.CreatedAt}
			}
		}
		if s.opt.Status != nil {
			ms := s.opt.Status.Status(t.Name)
			if !ms.NextRun.IsZero() {
				next := rfc3339(ms.NextRun)
				v.NextRun = &next
			}
			if !ms.LastAttempt.IsZero() {
				v.LastRun = &lastRun{StartedAt: rfc3339(ms.LastAttempt), Outcome: "succeeded"}
				if ms.LastFailed {
					v.LastRun.Outcome = "failed"
				}
			}
		}
		if job, ok := s.jobs.RunningIn(t.Name); ok {
			v.Running = job.ID
		}
		s.health(r.Context(), t, &v)
		out.Targets = append(out.Targets, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// health fills v's Health and Warnings: Redis and the storage reachable
// (else "error"); a backup, the newest within ready_max_age, a last
// scheduled backup and a last backup asked of the API that did not fail
// (else "warning").
func (s *Server) health(ctx context.Context, t Target, v *targetView) {
	v.Health, v.Warnings = "ok", []string{}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := t.Service.Ping(ctx); err != nil {
		v.Health = "error"
		v.Warnings = append(v.Warnings, "Redis does not answer: "+publicMessage(err))
	}
	if v.Error != "" {
		v.Health = "error"
		v.Warnings = append(v.Warnings, "the storage cannot be read: "+v.Error)
	}
	warn := func(msg string) {
		if v.Health == "ok" {
			v.Health = "warning"
		}
		v.Warnings = append(v.Warnings, msg)
	}
	if v.Error == "" && v.LatestBackup == nil {
		warn("no backup yet")
	}
	if max := s.opt.ReadyMaxAge; max > 0 && v.LatestBackup != nil {
		if created, err := time.Parse(time.RFC3339, v.LatestBackup.CreatedAt); err == nil {
			if age := s.opt.Now().Sub(created); age > max {
				warn(fmt.Sprintf("the newest backup is %s old (ready_max_age %s)", age.Round(time.Second), max))
			}
		}
	}
	if v.LastRun != nil && v.LastRun.Outcome == "failed" {
		warn("the last scheduled backup failed (" + v.LastRun.StartedAt + ")")
	}
	for _, j := range s.jobs.List() {
		if j.Slot != t.Name || j.Kind != jobs.KindBackup || j.Status == jobs.Running || j.Info.By == "scheduler" {
			continue // the scheduler's own are last_run
		}
		if j.Status == jobs.Failed {
			warn("the last backup failed: " + publicMessage(j.Err))
		}
		break // the last finished backup only
	}
}
