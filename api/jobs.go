package api

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"time"

	"github.com/gorilla/mux"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/jobs"
)

// jobHeader names the job a create or restore request started (for the
// audit log and for clients that want it).
const jobHeader = "X-Redback-Job"

// jobIDRE is the shape of a job id.
var jobIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// jobView is GET /api/jobs/{id}'s body, and one entry of GET /api/jobs.
type jobView struct {
	JobID string `json:"job_id"`
	Kind  string `json:"kind"`
	// Target names the target the job ran for.
	Target     string        `json:"target,omitempty"`
	Status     jobs.Status   `json:"status"`
	Progress   jobs.Progress `json:"progress"`
	Result     any           `json:"result"` // null while running
	Error      *string       `json:"error"`  // null unless failed
	StartedAt  string        `json:"started_at"`
	FinishedAt string        `json:"finished_at,omitempty"`
	// By names who started the job: an admin, "scheduler", or "" when
	// unknown.
	By string `json:"by"`
	// Filename is the archive the job worked on, once known.
	Filename string `json:"filename,omitempty"`
	// DurationSeconds is the time from start to end (to now while
	// running); KeysPerSecond the keys done per second of it; ETASeconds,
	// while running with a known total, the time left at that rate.
	DurationSeconds float64  `json:"duration_seconds"`
	KeysPerSecond   float64  `json:"keys_per_second"`
	ETASeconds      *float64 `json:"eta_seconds,omitempty"`
}

// startedView answers an async request.
type startedView struct {
	JobID  string      `json:"job_id"`
	Status jobs.Status `json:"status"`
}

// runJob starts fn as a job of kind in the slot of target, detached from
// the request (one backup or restore at a time per target). Async, it
// answers 202 at once. Otherwise it waits and answers the job's result
// (with the status its error maps to); when the client leaves first, the
// job goes on and nothing is written. A running backup or restore makes
// Start fail with a 409 that names it.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request, target, kind, subject string, async bool, fn jobs.Func) error {
	p, _ := principalOf(r)
	id, err := s.jobs.StartWith(target, kind, jobs.Info{By: p.name, Subject: subject}, fn)
	if err != nil {
		return err
	}
	w.Header().Set(jobHeader, id)
	if async {
		w.Header().Set("Location", "/api/jobs/"+id)
		writeJSON(w, http.StatusAccepted, startedView{JobID: id, Status: jobs.Running})
		return nil
	}
	snap, err := s.jobs.Wait(r.Context(), id)
	if err != nil {
		s.log.Info("client left before its job finished; the job goes on", "job", id, "kind", kind)
		return nil
	}
	if snap.Err != nil {
		if snap.Result == nil {
			return snap.Err
		}
		code := statusOf(snap.Err)
		if code >= 500 {
			s.log.Error("job failed", "job", id, "kind", kind, "err", snap.Err)
		}
		writeJSON(w, code, snap.Result)
		return nil
	}
	writeJSON(w, http.StatusOK, snap.Result)
	return nil
}

// job answers GET /api/jobs/{id}. With ?target= the job must be that
// target's (else 404); job ids are unique across targets.
func (s *Server) job(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	if !jobIDRE.MatchString(id) {
		return fmt.Errorf("%w: no such job", errNotFound)
	}
	snap, err := s.jobs.Get(id)
	if err != nil {
		return err
	}
	if r.URL.Query().Has(targetParam) && snap.Slot != t.Name {
		return fmt.Errorf("%w: no such job for target %q", errNotFound, t.Name)
	}
	v := s.view(r, snap)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// view describes a job's snapshot for r's principal.
func (s *Server) view(r *http.Request, snap jobs.Snapshot) jobView {
	v := jobView{
		JobID:     snap.ID,
		Kind:      snap.Kind,
		Target:    snap.Slot,
		Status:    snap.Status,
		Progress:  snap.Progress,
		Result:    publicResult(r, snap.Result),
		StartedAt: snap.StartedAt.UTC().Format(time.RFC3339),
		By:        snap.Info.By,
		Filename:  snap.Info.Subject,
	}
	if f := resultFilename(snap.Result); f != "" {
		v.Filename = f
	}
	if snap.Err != nil {
		msg := publicMessage(snap.Err)
		v.Error = &msg
	}
	end := s.jobs.Now()
	if !snap.FinishedAt.IsZero() {
		v.FinishedAt = snap.FinishedAt.UTC().Format(time.RFC3339)
		end = snap.FinishedAt
	}
	took := max(end.Sub(snap.StartedAt).Seconds(), 0)
	v.DurationSeconds = round2(took)
	if took > 0 && snap.Progress.KeysDone > 0 {
		rate := float64(snap.Progress.KeysDone) / took
		v.KeysPerSecond = round2(rate)
		if left := snap.Progress.KeysTotal - snap.Progress.KeysDone; snap.Status == jobs.Running && snap.Progress.KeysTotal > 0 && left >= 0 {
			eta := round2(float64(left) / rate)
			v.ETASeconds = &eta
		}
	}
	return v
}

// resultFilename is the archive a job's result names ("" when none).
func resultFilename(res any) string {
	switch r := res.(type) {
	case agent.BackupResult:
		return r.Filename
	case agent.RestoreResult:
		return r.Filename
	case agent.VerifyResult:
		return r.Filename
	case agent.DeleteResult:
		return r.Filename
	}
	return ""
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// Limits of GET /api/jobs.
const (
	defaultJobsList = 50
	maxJobsList     = 1000
)

// listJobs answers GET /api/jobs: the jobs remembered (running ones, and
// finished ones for an hour, at most 100), the last started first;
// ?target= keeps one target's, ?kind= (repeatable) some kinds', ?limit=N
// the first N.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var only string
	if q.Has(targetParam) {
		t, err := s.target(r)
		if err != nil {
			return err
		}
		only = t.Name
	}
	limit, err := intParam(r, "limit", defaultJobsList, 1, maxJobsList)
	if err != nil {
		return err
	}
	kinds := map[string]bool{}
	for _, k := range q["kind"] {
		kinds[k] = true
	}
	out := struct {
		Jobs []jobView `json:"jobs"`
	}{Jobs: []jobView{}}
	for _, snap := range s.jobs.List() {
		if (only != "" && snap.Slot != only) || (len(kinds) > 0 && !kinds[snap.Kind]) {
			continue
		}
		if len(out.Jobs) == int(limit) {
			break
		}
		out.Jobs = append(out.Jobs, s.view(r, snap))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
