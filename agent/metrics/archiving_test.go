package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestArchivingSeries: each watched target's series are read from its
// source at scrape time; a target whose archive does not run has none.
func TestArchivingSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewArchiving(reg)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	st := ArchivingStatus{Connected: true, Received: 500, Durable: 300, LastReceive: now.Add(-2 * time.Second),
		OldestPending: now.Add(-3 * time.Second), Segments: 7, Bytes: 4096, Gaps: 1, Bases: 2}
	a.Watch("main", func() (ArchivingStatus, bool) { return st, true })
	a.Watch("off", func() (ArchivingStatus, bool) { return ArchivingStatus{}, false })
	want := `
# HELP redback_archiving_lag_bytes Bytes of the stream received but not yet durable.
# TYPE redback_archiving_lag_bytes gauge
redback_archiving_lag_bytes{target="main"} 200
# HELP redback_archiving_recovery_point_seconds Seconds of writes received but not yet durable in storage (what a crash now would lose).
# TYPE redback_archiving_recovery_point_seconds gauge
redback_archiving_recovery_point_seconds{target="main"} 3
# HELP redback_archiving_lag_seconds Seconds since the server last sent anything on the replication stream (it PINGs every 10 s).
# TYPE redback_archiving_lag_seconds gauge
redback_archiving_lag_seconds{target="main"} 2
# HELP redback_archiving_gaps_total Full resynchronisations that lost part of the stream (each recorded as a gap).
# TYPE redback_archiving_gaps_total counter
redback_archiving_gaps_total{target="main"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "redback_archiving_lag_bytes", "redback_archiving_recovery_point_seconds",
		"redback_archiving_lag_seconds", "redback_archiving_gaps_total"); err != nil {
		t.Fatal(err)
	}
	st.OldestPending, st.Durable = time.Time{}, 500
	if n := testutil.CollectAndCount(a, "redback_archiving_connected"); n != 1 {
		t.Fatalf("%d connected series, want 1 (the stopped target has none)", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP redback_archiving_recovery_point_seconds Seconds of writes received but not yet durable in storage (what a crash now would lose).
# TYPE redback_archiving_recovery_point_seconds gauge
redback_archiving_recovery_point_seconds{target="main"} 0
`), "redback_archiving_recovery_point_seconds"); err != nil {
		t.Fatal(err)
	}
}
