package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/redback-dev/redback/agent/engine"
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
	Targets          []readyPart `json:"targets,omitempty"`
}

// readyPart is one target's readiness.
type readyPart struct {
	Name             string  `json:"name"`
	LatestBackup     string  `json:"latest_backup,omitempty"`
	LatestAgeSeconds float64 `json:"latest_backup_age_seconds,omitempty"`
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
		v.LatestBackup, v.LatestAgeSeconds = v.Targets[0].LatestBackup, v.Targets[0].LatestAgeSeconds
		v.Targets = nil
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// ready checks one target: its Redis answers and, with a ready_max_age,
// its newest backup is young enough.
func (s *Server) ready(ctx context.Context, t Target) (readyPart, error) {
	p := readyPart{Name: t.Name}
	if _, err := engine.Inspect(ctx, t.Service.RedisOptions()); err != nil {
		return p, fmt.Errorf("redis does not answer: %w", err)
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

// redisStatsView is GET /api/stats's body: what the Redis server holds.
type redisStatsView struct {
	RedisVersion string           `json:"redis_version"`
	Role         string           `json:"role"`
	Mode         string           `json:"mode"`
	UsedMemory   int64            `json:"used_memory"`
	UsedMemoryMB float64          `json:"used_memory_mb"`
	TotalKeys    int64            `json:"total_keys"`
	KeysPerDB    map[string]int64 `json:"keys_per_db"`
}

// redisStats answers GET /api/stats.
func (s *Server) redisStats(w http.ResponseWriter, r *http.Request) error {
	t, err := s.target(r)
	if err != nil {
		return err
	}
	f, err := engine.Inspect(r.Context(), t.Service.RedisOptions())
	if err != nil {
		return err
	}
	v := redisStatsView{
		RedisVersion: f.RedisVersion,
		Role:         f.Role,
		Mode:         f.Mode,
		UsedMemory:   f.UsedMemory,
		UsedMemoryMB: math.Round(float64(f.UsedMemory)/(1<<20)*100) / 100,
		KeysPerDB:    map[string]int64{},
	}
	for db, n := range f.KeysPerDB {
		v.KeysPerDB[strconv.Itoa(db)] = n
		v.TotalKeys += n
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
