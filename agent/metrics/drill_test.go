package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDrillRecords(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := NewDrills(reg)
	d.Target("main")
	start := time.Unix(1_800_000_000, 0)
	d.Drilled("main", start, start.Add(4*time.Second), true, 42)
	d.Drilled("main", start.Add(time.Hour), start.Add(time.Hour+2*time.Second), false, 0)
	labels := map[string]string{"target": "main"}
	for name, want := range map[string]float64{
		"redback_drill_runs_total":                     2,
		"redback_drill_failures_total":                 1,
		"redback_drill_last_failed":                    1,
		"redback_drill_last_keys":                      42,
		"redback_drill_last_duration_seconds":          2,
		"redback_drill_last_success_timestamp_seconds": 1.8e9 + 4,
		"redback_drill_last_attempt_timestamp_seconds": 1.8e9 + 3600,
	} {
		if got, ok := value(t, reg, name, labels); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", name, got, ok, want)
		}
	}
	d.Drilled("main", start.Add(2*time.Hour), start.Add(2*time.Hour+time.Second), true, 7)
	if got, _ := value(t, reg, "redback_drill_last_failed", labels); got != 0 {
		t.Fatalf("last_failed after a pass: %v", got)
	}
}
