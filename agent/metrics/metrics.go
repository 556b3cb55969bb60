// Package metrics holds redback's Prometheus collectors, labelled by
// target (the name of the Redis server backed up): the outcome of every
// operation of the agent (Record, whoever started it), what storage holds
// (Watch: refreshed at scrape time, so a backup taken by another process,
// the command line, shows within a scrape), and the scheduler's state.
//
// Default registers them once on prometheus.DefaultRegisterer, which the
// API's /metrics serves; tests use New with their own registry.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redback-dev/redback/agent/version"
)

// Metrics are the collectors. Its methods are safe for concurrent use.
type Metrics struct {
	lastSuccess *prometheus.GaugeVec
	lastAttempt *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	size        *prometheus.GaugeVec
	keys        *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	failures    *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	nextRun     *prometheus.GaugeVec
	pruned      *prometheus.CounterVec
	suspect     *prometheus.GaugeVec

	ops        *prometheus.CounterVec   // target, operation, outcome
	opDuration *prometheus.HistogramVec // target, operation
	opLast     *prometheus.GaugeVec     // target, operation: last success

	inv *inventory

	mu     sync.Mutex
	status map[string]Status
}

// Status is what the collectors know of one target, for the API: zero
// times where nothing happened yet.
type Status struct {
	// NextRun is when the scheduler's next backup is due.
	NextRun time.Time
	// LastAttempt is the start of the last scheduled backup; LastFailed
	// says whether it failed (it may still be running).
	LastAttempt time.Time
	LastFailed  bool
	// LastSuccess is the end of the last successful scheduled backup.
	LastSuccess time.Time
}

// New creates the collectors and registers them on reg (none when nil).
func New(reg prometheus.Registerer) *Metrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "redback", Name: name, Help: help}, []string{"target"})
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "redback", Name: name, Help: help}, append([]string{"target"}, labels...))
	}
	m := &Metrics{
		lastSuccess: g("backup_last_success_timestamp_seconds", "Unix time of the last successful backup."),
		lastAttempt: g("backup_last_attempt_timestamp_seconds", "Unix time of the last backup attempt."),
		duration:    g("backup_last_duration_seconds", "Duration of the last successful backup."),
		size:        g("backup_last_size_bytes", "Size of the last successful backup's archive."),
		keys:        g("backup_last_keys", "Keys in the last successful backup."),
		runs:        c("backup_runs_total", "Backups started (scheduled, from the API, or from the command line of this process)."),
		failures:    c("backup_failures_total", "Backups that failed."),
		skipped:     c("scheduler_skipped_ticks_total", "Scheduled ticks that did not start a backup (reason: running, busy, lease, done).", "reason"),
		nextRun:     g("scheduler_next_run_timestamp_seconds", "Unix time of the next scheduled backup."),
		pruned:      c("retention_deleted_total", "Archives deleted by retention (after scheduled backups, or a prune from the API)."),
		suspect:     g("backup_last_suspect", "1 when the last successful backup looks like one of an emptied or shrunken server (far fewer keys or bytes than the previous good one)."),
		ops:         c("operations_total", "Operations of the agent that ended, by operation (backup, import, upload, restore, restore_dry_run, restore_at, verify, prune, delete) and outcome (success, failure).", "operation", "outcome"),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "redback", Name: "operation_duration_seconds",
			Help:    "Duration of the agent's operations, successful or not, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12)}, []string{"target", "operation"}),
		opLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "redback", Name: "operation_last_success_timestamp_seconds",
			Help: "Unix time of the end of the last successful operation, by operation."}, []string{"target", "operation"}),
		status: map[string]Status{},
	}
	m.inv = newInventory(m)
	if reg != nil {
		reg.MustRegister(buildInfo(version.Get()))
		reg.MustRegister(m.lastSuccess, m.lastAttempt, m.duration, m.size, m.keys, m.runs, m.failures, m.skipped, m.nextRun, m.pruned, m.suspect,
			m.ops, m.opDuration, m.opLast, m.inv)
	}
	return m
}

// buildInfo is the constant redback_build_info gauge (1, labelled with the
// binary's version, commit and Go version), as Prometheus' own
// prometheus_build_info: join on it to see which build a series came from.
func buildInfo(in version.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "redback", Name: "build_info",
		Help:        "Always 1; the labels say which redback build is running (version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion}})
	g.Set(1)
	return g
}

var (
	defaultOnce sync.Once
	defaultM    *Metrics
)

// Default returns the collectors registered on prometheus.DefaultRegisterer
// (registered on first use).
func Default() *Metrics {
	defaultOnce.Do(func() { defaultM = New(prometheus.DefaultRegisterer) })
	return defaultM
}

// Target makes a target's series exist (at zero) before its first backup,
// so that alerts on absent or zero series work from the start.
func (m *Metrics) Target(target string) {
	m.runs.WithLabelValues(target)
	m.failures.WithLabelValues(target)
	m.pruned.WithLabelValues(target)
}

// Started counts a backup attempt at t.
func (m *Metrics) Started(target string, t time.Time) {
	m.runs.WithLabelValues(target).Inc()
	m.lastAttempt.WithLabelValues(target).Set(unix(t))
	m.update(target, func(s *Status) { s.LastAttempt, s.LastFailed = t, false })
}

// update changes the Status of target under the lock.
func (m *Metrics) update(target string, f func(*Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.status[target]
	f(&s)
	m.status[target] = s
}

// Succeeded records a successful backup that ended at end.
func (m *Metrics) Succeeded(target string, end time.Time, duration time.Duration, size, keys int64) {
	m.lastSuccess.WithLabelValues(target).Set(unix(end))
	m.duration.WithLabelValues(target).Set(duration.Seconds())
	m.size.WithLabelValues(target).Set(float64(size))
	m.keys.WithLabelValues(target).Set(float64(keys))
	m.update(target, func(s *Status) { s.LastSuccess, s.LastFailed = end, false })
}

// Failed counts a failed backup.
func (m *Metrics) Failed(target string) {
	m.failures.WithLabelValues(target).Inc()
	m.update(target, func(s *Status) { s.LastFailed = true })
}

// Skipped counts a tick that started no backup.
func (m *Metrics) Skipped(target, reason string) { m.skipped.WithLabelValues(target, reason).Inc() }

// NextRun records when the next backup is due.
func (m *Metrics) NextRun(target string, t time.Time) {
	m.nextRun.WithLabelValues(target).Set(unix(t))
	m.update(target, func(s *Status) { s.NextRun = t })
}

// Suspect records whether the last successful backup was suspect.
func (m *Metrics) Suspect(target string, suspect bool) {
	v := 0.0
	if suspect {
		v = 1
	}
	m.suspect.WithLabelValues(target).Set(v)
}

// Pruned counts archives deleted by retention.
func (m *Metrics) Pruned(target string, n int) { m.pruned.WithLabelValues(target).Add(float64(n)) }

// LastSuccess returns when the last backup of target recorded here
// succeeded (for readiness checks); ok is false before the first one.
func (m *Metrics) LastSuccess(target string) (t time.Time, ok bool) {
	s := m.Status(target)
	return s.LastSuccess, !s.LastSuccess.IsZero()
}

// Status returns what is recorded of target (the zero Status for a target
// never seen).
func (m *Metrics) Status(target string) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status[target]
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
