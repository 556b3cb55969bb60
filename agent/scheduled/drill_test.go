package scheduled

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestDrillAfterBackup: with drill.enabled (schedule after_backup), each
// scheduled backup is drilled into a server the agent starts itself: the
// manifest records it, the metrics count it; a drill that cannot run (no
// such server binary) is a failure, counted and notified, and the backup
// still succeeded.
func TestDrillAfterBackup(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	srv.Client(t, 0).Set(ctx, "user:1", "alice", 0)
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	rcv := &receiver{}
	hs := httptest.NewServer(http.HandlerFunc(rcv.handler))
	defer hs.Close()

	cfg := config.Default()
	cfg.Redis.URL = srv.URL(0)
	cfg.Storage = t.TempDir()
	cfg.Drill = config.Drill{Enabled: true, ServerBinary: bin}
	cfg.Notify.Webhooks = []config.Webhook{{URL: hs.URL + "/hook", On: []string{"failure"}, MaxAttempts: 1}}
	svc, err := agent.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	j, err := FromConfig(svc, "main", cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.o.Drill == nil {
		t.Fatal("drill.enabled made no drill job")
	}
	reg := prometheus.NewRegistry()
	j.o.Drill.o.Metrics = metrics.NewDrills(reg)
	res, err := j.Run(ctx, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := svc.Stat(ctx, res.Filename)
	if err != nil {
		t.Fatal(err)
	}
	if d := in.Manifest.Drill; d == nil || d.Result != agent.DrillPassed || d.Keys != 1 {
		t.Fatalf("the new archive's drill: %+v", in.Manifest.Drill)
	}
	if got := counter(t, reg, "redback_drill_runs_total"); got != 1 {
		t.Fatalf("drill runs %v", got)
	}

	// A drill that cannot run: failed, counted, notified.
	j.o.Drill.svc = driller{svc, "/nonexistent/redis-server"}
	if _, err := j.Run(ctx, time.Time{}, nil); err != nil {
		t.Fatalf("the backup failed with its drill: %v", err)
	}
	if got := counter(t, reg, "redback_drill_failures_total"); got != 1 {
		t.Fatalf("drill failures %v", got)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.events) != 1 || rcv.events[0].Kind != notify.DrillFailed || rcv.events[0].Drill == nil {
		t.Fatalf("events %+v", rcv.events)
	}
}

// driller drills with another server binary.
type driller struct {
	*agent.Service
	bin string
}

func (d driller) Drill(ctx context.Context, ref string, o agent.DrillOptions) (agent.DrillResult, error) {
	o.ServerBinary = d.bin
	return d.Service.Drill(ctx, ref, o)
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += metricValue(m)
		}
		return sum
	}
	return -1
}

func metricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}
