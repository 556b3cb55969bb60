package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/redback-dev/redback/agent"
)

// probeTimeout bounds the Redis and storage calls of /readyz.
const probeTimeout = 5 * time.Second

// healthz answers while the process serves requests.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyView is /readyz's body. With several targets (and no ?target=),
// Targets holds each one's part and the top-level backup fields are empty.
type readyView struct {
	Status           string      `json:"status"`
	LatestBackup     string      `json:"latest_backup,omitempty"`
	LatestAgeSeconds float64     `json:"latest_backup_age_seconds,omitempty"`
	LatestDrill      string      `json:"latest_drill,omitempty"`
	DrillAgeSeconds  float64     `json:"latest_drill_age_seconds,omitempty"`
	Targets          []readyPart `json:"targets,omitempty"`
}

// readyPart is one target's readiness.
type readyPart struct {
	Name             string  `json:"name"`
	LatestBackup     string  `json:"latest_backup,omitempty"`
	LatestAgeSeconds float64 `json:"latest_backup_age_seconds,omitempty"`
	// LatestDrill names the archive of the newest drill that passed, with
	// drill.ready_max_age.
	LatestDrill     string  `json:"latest_drill,omitempty"`
	DrillAgeSeconds float64 `json:"latest_drill_age_seconds,omitempty"`
}

// readyz answers 200 when every target's Redis answers and, with a
// ready_max_age, every target's newest backup is younger than that; else
// 503, naming the first target that is not ready. ?target= checks one.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	check := s.targets
	if r.URL.Query().Has(targetParam) {
		t, err := s.target(r)
		if err != nil {
			return err
		}
		check = []Target{t}
	}
	v := readyView{Status: "ready"}
	for _, t := range check {
		p, err := s.ready(ctx, t)
		if err != nil {
			if len(s.targets) > 1 {
				return fmt.Errorf("%w: target %q: %w", errUnavailable, t.Name, err)
			}
			return fmt.Errorf("%w: %w", errUnavailable, err)
		}
		v.Targets = append(v.Targets, p)
	}
	if len(check) == 1 {
		p := v.Targets[0]
		v.LatestBackup, v.LatestAgeSeconds, v.LatestDrill, v.DrillAgeSeconds = p.LatestBackup, p.LatestAgeSeconds, p.LatestDrill, p.DrillAgeSeconds
		v.Targets = nil
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// ready checks one target: its Redis answers; with a ready_max_age, its
// newest backup is young enough; with a drill ready_max_age, its newest
// drill passed, and not too long ago.
func (s *Server) ready(ctx context.Context, t Target) (readyPart, error) {
	p := readyPart{Name: t.Name}
	if err := t.Service.Ping(ctx); err != nil {
		return p, err
	}
	if err := s.readyDrills(ctx, t, &p); err != nil {
		return p, err
	}
	max := s.opt.ReadyMaxAge
	if max <= 0 {
		return p, nil
	}
	st, err := t.Service.Stats(ctx)
	if err != nil {
		return p, fmt.Errorf("storage: %w", err)
	}
	if st.LatestBackup == nil {
		return p, fmt.Errorf("no backup yet (ready_max_age is %s)", max)
	}
	created, err := time.Parse(time.RFC3339, st.LatestBackup.CreatedAt)
	if err != nil {
		return p, errors.New("newest backup has no readable time")
	}
	age := s.opt.Now().Sub(created)
	if age > max {
		return p, fmt.Errorf("the newest backup, %s, is %s old (ready_max_age %s)", st.LatestBackup.Filename, age.Round(time.Second), max)
	}
	p.LatestBackup = st.LatestBackup.Filename
	p.LatestAgeSeconds = math.Round(age.Seconds())
	return p, nil
}

// readyDrills checks the drills recorded in the archives' manifests
// (they survive restarts): the newest must have passed, and the newest
// that passed must be younger than DrillMaxAge.
func (s *Server) readyDrills(ctx context.Context, t Target, p *readyPart) error {
	max := s.opt.DrillMaxAge
	if max <= 0 {
		return nil
	}
	l, err := t.Service.List(ctx)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	var newest, passed *agent.BackupInfo
	var newestAt, passedAt time.Time
	for i := range l.Backups {
		b := &l.Backups[i]
		at, err := time.Parse(time.RFC3339, b.DrilledAt)
		if err != nil {
			continue
		}
		if newest == nil || at.After(newestAt) {
			newest, newestAt = b, at
		}
		if b.DrillResult == agent.DrillPassed && (passed == nil || at.After(passedAt)) {
			passed, passedAt = b, at
		}
	}
	switch {
	case newest != nil && newest.DrillResult != agent.DrillPassed:
		return fmt.Errorf("the newest restore drill, of %s at %s, failed: %s", newest.Filename, newest.DrilledAt, publicMessage(errors.New(newest.DrillError)))
	case passed == nil:
		return fmt.Errorf("no restore drill has passed yet (drill.ready_max_age is %s)", max)
	}
	age := s.opt.Now().Sub(passedAt)
	if age > max {
		return fmt.Errorf("the newest restore drill that passed, of %s, is %s old (drill.ready_max_age %s)", passed.Filename, age.Round(time.Second), max)
	}
	p.LatestDrill, p.DrillAgeSeconds = passed.Filename, math.Round(age.Seconds())
	return nil
}

// redisStats answers GET /api/stats.
func (s *Server) redisStats(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	v, err := t.Service.RedisStats(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
