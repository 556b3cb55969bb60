package api

import (
	"context"
	"net/http"
	"strconv"

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
	return s.runJob(w, r, t.Name, jobs.KindBackup, "", req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
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
	// DBMap sends a database of the archive to another of the server
	// ({"0": 3}: the command line's --db 0:3).
	DBMap map[string]int `json:"db_map"`
	// At, instead of Filename, restores the state at that time from the
	// continuous archive (RFC 3339, or "-5m").
	At string `json:"at"`
}

// restore restores an archive as a job. With overwrite (and no dry run) it
// needs a fresh code as well as the token.
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
	if req.Overwrite && !req.DryRun { // a dry run writes nothing
		if err := s.requireFreshCode(r); err != nil {
			return err
		}
	}
	o := agent.RestoreOptions{Overwrite: req.Overwrite, DryRun: req.DryRun, TTL: req.TTL, Identities: s.opt.Identities,
		Selection: agent.Selection{Match: req.Match, Exclude: req.Exclude, Types: req.Types}}
	if req.DB != nil {
		o.Selection.DBs = []int{*req.DB}
	}
	if o.DBMap, err = parseDBMap(req.DBMap); err != nil {
		return err
	}
	return s.runJob(w, r, t.Name, jobs.KindRestore, name, req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
		o.Progress = progressTo(report)
		res, err := t.Service.Restore(ctx, name, o)
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
}

// maxDB bounds a database number (the server's own limit is lower).
const maxDB = 1 << 20

// parseDBMap reads a restore's db_map: database numbers as keys and
// values.
func parseDBMap(m map[string]int) (map[int]int, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[int]int, len(m))
	for k, to := range m {
		from, err := strconv.Atoi(k)
		if err != nil || from < 0 || from > maxDB || strconv.Itoa(from) != k || to < 0 || to > maxDB {
			return nil, badRequest("db_map: want database numbers, as {\"0\": 3}")
		}
		out[from] = to
	}
	return out, nil
}

// Kinds of the jobs the API runs besides backups and restores (neither
// excludes another job).
const (
	kindVerify = "verify"
	kindDrill  = "drill"
	kindDelete = "delete"
)

// deleteBackup deletes an archive; it needs a fresh code. It runs as a
// job, so that GET /api/jobs lists it, and answers when it is done.
// restoreAt restores the state at req.At as a job; it always needs a
// fresh code (it replaces what the server holds when it is not empty).
func (s *Server) restoreAt(w http.ResponseWriter, r *http.Request, t Target, req restoreRequest) error {
	if req.Filename != "" || req.DryRun || req.TTL != "" || len(req.Match)+len(req.Exclude)+len(req.Types) > 0 || req.DB != nil || len(req.DBMap) > 0 {
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
	return s.runJob(w, r, t.Name, jobs.KindRestore, "at "+req.At, req.Async, func(ctx context.Context, report func(jobs.Progress)) (any, error) {
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
	t, name, err := s.archiveCall(w, r, false, nil)
	if err != nil {
		return err
	}
	if err := s.requireFreshCode(r); err != nil {
		return err
	}
	return s.runJob(w, r, t.Name, kindDelete, name, false, func(ctx context.Context, _ func(jobs.Progress)) (any, error) {
		res, err := t.Service.Delete(ctx, name)
		if err != nil {
			return nil, err // answered as an error
		}
		return res, nil
	})
}

// archiveCall reads what a call on one archive names: the target, the
// archive of the path ({filename}; with latest, `latest` resolved to the
// newest archive's name) and, when body is not nil, the JSON body into it.
func (s *Server) archiveCall(w http.ResponseWriter, r *http.Request, latest bool, body any) (Target, string, error) {
	t, err := s.target(r)
	if err != nil {
		return Target{}, "", err
	}
	read := pathName
	if latest {
		read = pathRef
	}
	name, err := read(r)
	if err != nil {
		return Target{}, "", err
	}
	if body != nil {
		if err := decodeBody(w, r, body); err != nil {
			return Target{}, "", err
		}
	}
	if name == agent.Latest {
		if name, err = t.Service.Resolve(r.Context(), name); err != nil {
			return Target{}, "", err
		}
	}
	return t, name, nil
}

// verifyRequest is POST /api/backup/verify/{filename}'s body (optional).
type verifyRequest struct {
	Async bool `json:"async"`
}

// verify reads an archive end to end as a job (Service.Verify) and
// records the outcome in its manifest: answered with the VerifyResult, or
// at once with 202 and the job id when async.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	t, name, err := s.archiveCall(w, r, false, &req)
	if err != nil {
		return err
	}
	if _, err := t.Service.Stat(r.Context(), name); err != nil {
		return err
	}
	return s.runJob(w, r, t.Name, kindVerify, name, req.Async, func(ctx context.Context, _ func(jobs.Progress)) (any, error) {
		res, err := t.Service.Verify(ctx, name, s.opt.Identities)
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
}

// drill runs a restore drill of an archive (or latest) as a job: it is
// restored into the scratch server of drill.redis_url or
// drill.server_binary and compared with what it records; the outcome is
// recorded in its manifest. Admins (or a machine token with the drill
// scope); a failed drill answers 422 with the result.
func (s *Server) drill(w http.ResponseWriter, r *http.Request) error {
	var req verifyRequest
	t, name, err := s.archiveCall(w, r, true, &req)
	if err != nil {
		return err
	}
	if _, err := t.Service.Stat(r.Context(), name); err != nil {
		return err
	}
	return s.runJob(w, r, t.Name, kindDrill, name, req.Async, func(ctx context.Context, _ func(jobs.Progress)) (any, error) {
		res, err := t.Service.Drill(ctx, name, agent.DrillOptions{Identities: s.opt.Identities})
		if err != nil {
			res.Error = publicMessage(err)
		}
		return res, err
	})
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
