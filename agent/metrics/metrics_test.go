package metrics

import (
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redback-dev/redback/agent/version"
)

func TestRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Target("main")
	end := time.Unix(1_800_000_000, 0)
	m.Started("main", end.Add(-3*time.Second))
	m.Succeeded("main", end, 3*time.Second, 2048, 42)
	m.Started("main", end)
	m.Failed("main")
	m.Skipped("main", "running")
	m.Skipped("main", "running")
	m.Pruned("main", 3)
	m.NextRun("main", end.Add(time.Hour))

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"redback_backup_failures_total", nil, 1},
		{"redback_backup_runs_total", nil, 2},
		{"redback_backup_last_keys", nil, 42},
		{"redback_backup_last_size_bytes", nil, 2048},
		{"redback_backup_last_duration_seconds", nil, 3},
		{"redback_backup_last_success_timestamp_seconds", nil, 1.8e9},
		{"redback_backup_last_attempt_timestamp_seconds", nil, 1.8e9},
		{"redback_scheduler_skipped_ticks_total", map[string]string{"reason": "running"}, 2},
		{"redback_retention_deleted_total", nil, 3},
		{"redback_scheduler_next_run_timestamp_seconds", nil, 1.8e9 + 3600},
	} {
		labels := map[string]string{"target": "main"}
		for k, v := range c.labels {
			labels[k] = v
		}
		if got, ok := value(t, reg, c.name, labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, labels, got, ok, c.want)
		}
	}
	if got, ok := m.LastSuccess("main"); !ok || !got.Equal(end) {
		t.Fatalf("LastSuccess = %v %v", got, ok)
	}
	if _, ok := m.LastSuccess("other"); ok {
		t.Fatal("LastSuccess of an unknown target")
	}
	st := m.Status("main")
	if !st.LastFailed || !st.LastAttempt.Equal(end) || !st.LastSuccess.Equal(end) || !st.NextRun.Equal(end.Add(time.Hour)) {
		t.Fatalf("Status = %+v", st)
	}
	// Two targets keep apart, in the collectors and in Status.
	m.Started("other", end)
	m.Succeeded("other", end.Add(time.Second), time.Second, 1, 1)
	if st := m.Status("other"); st.LastFailed || !st.LastSuccess.Equal(end.Add(time.Second)) {
		t.Fatalf("Status(other) = %+v", st)
	}
	if got, _ := value(t, reg, "redback_backup_failures_total", map[string]string{"target": "main"}); got != 1 {
		t.Fatalf("main's failures changed: %v", got)
	}
	if got, ok := value(t, reg, "redback_backup_runs_total", map[string]string{"target": "other"}); !ok || got != 1 {
		t.Fatalf("other's runs: %v %v", got, ok)
	}
	// Default registers once.
	if Default() != Default() {
		t.Fatal("Default is not a singleton")
	}
}

// value gathers reg and returns the value of the series name{labels}.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	in := version.Get()
	labels := map[string]string{"version": in.Version, "revision": in.Revision, "goversion": runtime.Version()}
	if got, ok := value(t, reg, "redback_build_info", labels); !ok || got != 1 {
		t.Fatalf("redback_build_info%v = %v (found %v), want 1", labels, got, ok)
	}
}
