package api

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gorilla/mux"

	"github.com/redback-dev/redback/agent/jobs"
)

// jobHeader names the job a create or restore request started (for the
// audit log and for clients that want it).
const jobHeader = "X-Redback-Job"

// jobIDRE is the shape of a job id.
var jobIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// jobView is GET /api/jobs/{id}'s body.
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
func (s *Server) runJob(w http.ResponseWriter, r *http.Request, target, kind string, async bool, fn jobs.Func) error {
	id, err := s.jobs.StartIn(target, kind, fn)
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
	v := jobView{
		JobID:     snap.ID,
		Kind:      snap.Kind,
		Target:    snap.Slot,
		Status:    snap.Status,
		Progress:  snap.Progress,
		Result:    publicResult(r, snap.Result),
		StartedAt: snap.StartedAt.UTC().Format(time.RFC3339),
	}
	if snap.Err != nil {
		msg := publicMessage(snap.Err)
		v.Error = &msg
	}
	if !snap.FinishedAt.IsZero() {
		v.FinishedAt = snap.FinishedAt.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
