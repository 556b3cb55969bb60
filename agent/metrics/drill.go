package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Drills are the collectors of restore drills (`redback drill`, scheduled
// in serve), labelled by target. Its methods are safe for concurrent use.
type Drills struct {
	lastSuccess *prometheus.GaugeVec
	lastAttempt *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	lastFailed  *prometheus.GaugeVec
	keys        *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	failures    *prometheus.CounterVec
}

// NewDrills creates the drill collectors and registers them on reg (none
// when nil).
func NewDrills(reg prometheus.Registerer) *Drills {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "redback", Name: name, Help: help}, []string{"target"})
	}
	c := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "redback", Name: name, Help: help}, []string{"target"})
	}
	d := &Drills{
		lastSuccess: g("drill_last_success_timestamp_seconds", "Unix time of the end of the last restore drill that passed."),
		lastAttempt: g("drill_last_attempt_timestamp_seconds", "Unix time of the start of the last restore drill."),
		duration:    g("drill_last_duration_seconds", "Duration of the last restore drill."),
		lastFailed:  g("drill_last_failed", "1 when the last restore drill failed (its archive did not restore to what it records, or the drill could not run)."),
		keys:        g("drill_last_keys", "Keys restored and compared by the last restore drill that passed."),
		runs:        c("drill_runs_total", "Restore drills started."),
		failures:    c("drill_failures_total", "Restore drills that failed."),
	}
	if reg != nil {
		reg.MustRegister(d.lastSuccess, d.lastAttempt, d.duration, d.lastFailed, d.keys, d.runs, d.failures)
	}
	return d
}

var (
	defaultDrillsOnce sync.Once
	defaultDrills     *Drills
)

// DefaultDrills returns the drill collectors registered on
// prometheus.DefaultRegisterer (registered on first use).
func DefaultDrills() *Drills {
	defaultDrillsOnce.Do(func() { defaultDrills = NewDrills(prometheus.DefaultRegisterer) })
	return defaultDrills
}

// Target makes a target's drill counters exist (at zero) before its first
// drill.
func (d *Drills) Target(target string) {
	d.runs.WithLabelValues(target)
	d.failures.WithLabelValues(target)
}

// Drilled records a drill of target that ran from start to end: passed,
// with keys compared, or failed.
func (d *Drills) Drilled(target string, start, end time.Time, passed bool, keys int64) {
	d.runs.WithLabelValues(target).Inc()
	d.lastAttempt.WithLabelValues(target).Set(unix(start))
	d.duration.WithLabelValues(target).Set(end.Sub(start).Seconds())
	if !passed {
		d.failures.WithLabelValues(target).Inc()
		d.lastFailed.WithLabelValues(target).Set(1)
		return
	}
	d.lastFailed.WithLabelValues(target).Set(0)
	d.lastSuccess.WithLabelValues(target).Set(unix(end))
	d.keys.WithLabelValues(target).Set(float64(keys))
}
