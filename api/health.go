package api

import (
	"context"
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

// readyView is /readyz's body.
type readyView struct {
	Status           string  `json:"status"`
	LatestBackup     string  `json:"latest_backup,omitempty"`
	LatestAgeSeconds float64 `json:"latest_backup_age_seconds,omitempty"`
}

// readyz answers 200 when Redis answers and, with a ready_max_age, the
// newest backup is younger than that; else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	if _, err := engine.Inspect(ctx, s.svc.RedisOptions()); err != nil {
		return fmt.Errorf("%w: redis does not answer: %w", errUnavailable, err)
	}
	v := readyView{Status: "ready"}
	if max := s.opt.ReadyMaxAge; max > 0 {
		st, err := s.svc.Stats(ctx)
		if err != nil {
			return fmt.Errorf("%w: storage: %w", errUnavailable, err)
		}
		if st.LatestBackup == nil {
			return fmt.Errorf("%w: no backup yet (ready_max_age is %s)", errUnavailable, max)
		}
		t, err := time.Parse(time.RFC3339, st.LatestBackup.CreatedAt)
		if err != nil {
			return fmt.Errorf("%w: newest backup has no readable time", errUnavailable)
		}
		age := s.opt.Now().Sub(t)
		if age > max {
			return fmt.Errorf("%w: the newest backup, %s, is %s old (ready_max_age %s)", errUnavailable,
				st.LatestBackup.Filename, age.Round(time.Second), max)
		}
		v.LatestBackup = st.LatestBackup.Filename
		v.LatestAgeSeconds = math.Round(age.Seconds())
	}
	writeJSON(w, http.StatusOK, v)
	return nil
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
	f, err := engine.Inspect(r.Context(), s.svc.RedisOptions())
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
