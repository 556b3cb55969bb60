package api

import (
	"context"
	"net/http"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/jobs"
)

// createRequest is POST /api/backup/create's body (all optional).
type createRequest struct {
	// Compress overrides backup.compress (the seed's default: true).
	Compress *bool `json:"compress"`
	Async    bool  `json:"async"`
}

// createBackup takes a backup as a job: answered with the BackupResult
// when done, or at once with 202 and the job id when async.
func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	var req createRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	return s.runJob(w, r, t.Name, jobs.KindBackup, req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
		res, err := t.Service.Backup(ctx, agent.BackupOptions{Compress: req.Compress, Progress: progressTo(report)})
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
}

// restoreRequest is POST /api/backup/restore's body.
type restoreRequest struct {
	Filename  string `json:"filename"`
	Overwrite bool   `json:"overwrite"`
	DryRun    bool   `json:"dry_run"`
	// TTL is "relative" or "absolute" ("" takes restore.ttl).
	TTL   string `json:"ttl"`
	Async bool   `json:"async"`
	// Match, Exclude, Types and DB restore only the keys they pick.
	Match   []string `json:"match"`
	Exclude []string `json:"exclude"`
	Types   []string `json:"types"`
	DB      *int     `json:"db"`
	// At, instead of Filename, restores the state at that time from the
	// continuous archive (RFC 3339, or "-5m").
	At string `json:"at"`
}

// restore restores an archive as a job. With overwrite it needs a fresh
// code as well as the token.
func (s *Server) restore(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	var req restoreRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.At != "" {
		return s.restoreAt(w, r, t, req)
	}
	name, err := checkRef(req.Filename)
	if err != nil {
		return err
	}
	if name == agent.Latest {
		if name, err = t.Service.Resolve(r.Context(), name); err != nil {
			return err
		}
	}
	if req.TTL != "" {
		if err := agent.ValidateTTLMode(req.TTL); err != nil {
			return badRequest("ttl: want relative or absolute")
		}
	}
	if _, err := t.Service.Stat(r.Context(), name); err != nil {
		return err
	}
	if req.Overwrite {
		if err := s.requireFreshCode(r); err != nil {
			return err
		}
	}
	o := agent.RestoreOptions{Overwrite: req.Overwrite, DryRun: req.DryRun, TTL: req.TTL, Identities: s.opt.Identities,
		Selection: agent.Selection{Match: req.Match, Exclude: req.Exclude, Types: req.Types}}
	if req.DB != nil {
		o.Selection.DBs = []int{*req.DB}
	}
	return s.runJob(w, r, t.Name, jobs.KindRestore, req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
		o.Progress = progressTo(report)
		res, err := t.Service.Restore(ctx, name, o)
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
}

// restoreAt restores the state at req.At as a job; it always needs a
// fresh code (it replaces what the server holds when it is not empty).
func (s *Server) restoreAt(w http.ResponseWriter, r *http.Request, t Target, req restoreRequest) error {
	if req.Filename != "" || req.DryRun || req.TTL != "" || len(req.Match)+len(req.Exclude)+len(req.Types) > 0 || req.DB != nil {
		return badRequest("at restores the whole server from its continuous archive: give no filename, dry_run, ttl, match, exclude, types or db")
	}
	at, err := agent.ParseAt(req.At, s.opt.Now())
	if err != nil {
		return badRequest("at: want RFC 3339 (2026-01-02T14:02:36Z) or a time before now (-5m)")
	}
	if err := s.requireFreshCode(r); err != nil {
		return err
	}
	o := agent.RestoreOptions{Overwrite: req.Overwrite, Identities: s.opt.Identities}
	return s.runJob(w, r, t.Name, jobs.KindRestore, req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
		o.Progress = progressTo(report)
		res, err := t.Service.RestoreAt(ctx, at, o)
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
}

// deleteBackup deletes an archive; it needs a fresh code.
func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if err := s.requireFreshCode(r); err != nil {
		return err
	}
	res, err := t.Service.Delete(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	res, err := t.Service.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, publicList(r, res))
	return nil
}

func (s *Server) backupStats(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	res, err := t.Service.Stats(r.Context())
	if err != nil {
		return err
	}
	res.Storage = publicStorage(r, res.Storage)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// progressTo adapts the engine's progress reports to a job's.
func progressTo(report func(jobs.Progress)) func(agent.Progress) {
	return func(p agent.Progress) {
		report(jobs.Progress{KeysDone: p.KeysDone, KeysTotal: p.KeysTotal, Bytes: p.Bytes})
	}
}
