package scheduled

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/internal/redistest"
)

// After a FLUSHALL, a week of scheduled backups of the empty server (with
// retention keep_last 3 after each) leaves every good archive in place;
// list, the result, metrics and notifications say why.
func TestScheduledBackupsAfterFlushallKeepTheGoodArchives(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	for i := 0; i < 500; i++ {
		rdb.Set(ctx, fmt.Sprint("user:", i), "alice", 0)
	}
	cfg := config.Default()
	cfg.Redis.URL = srv.URL(0)
	cfg.Storage = t.TempDir()
	svc, err := agent.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rcv := &receiver{}
	hs := httptest.NewServer(http.HandlerFunc(rcv.handler))
	defer hs.Close()
	ns, err := notify.FromConfig(config.Notify{Webhooks: []config.Webhook{{URL: hs.URL + "/hook", Secret: "k"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc.Observe(m.Observer("main"))
	j := New(svc, Options{Target: "main", Policy: retention.Policy{Last: 3}, Notify: ns, Metrics: m})

	var good []string
	for i := 0; i < 3; i++ {
		res, err := j.Run(ctx, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, res.Filename)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		res, err := j.Run(ctx, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Suspect, "0 keys, after 500") || len(res.Warnings) != 2 {
			t.Fatalf("backup %d of the empty server: suspect %q warnings %q", i, res.Suspect, res.Warnings)
		}
	}
	list, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Backups) != 10 {
		t.Fatalf("%d archives, want the 3 good ones and the 7 suspect ones", len(list.Backups))
	}
	for i, b := range list.Backups {
		if (i < 3) != (b.Suspect == "") || i < 3 && b.Filename != good[i] {
			t.Fatalf("archive %d %s: suspect %q", i, b.Filename, b.Suspect)
		}
	}
	if v := gauge(t, reg, "redback_backup_last_suspect"); v != 1 {
		t.Fatalf("backup_last_suspect %v", v)
	}
	rcv.mu.Lock()
	last := rcv.events[len(rcv.events)-1]
	rcv.mu.Unlock()
	if last.Result.Suspect == "" || len(last.Result.Warnings) == 0 {
		t.Fatalf("last notification %+v", last)
	}
	// prune --dry-run explains it.
	pr, ds, err := svc.Prune(ctx, retention.Policy{Last: 3}, true)
	if err != nil || len(pr.Deleted) != 0 || len(pr.Suspect) != 7 {
		t.Fatalf("prune %+v %v", pr, err)
	}
	for _, d := range ds[3:] {
		if !strings.Contains(strings.Join(d.Reasons, ","), "suspect") {
			t.Fatalf("reasons of %s: %v", d.Name, d.Reasons)
		}
	}
	// With the data back, the next backup is good again and counts.
	for i := 0; i < 500; i++ {
		rdb.Set(ctx, fmt.Sprint("user:", i), "alice", 0)
	}
	res, err := j.Run(ctx, time.Time{}, nil)
	if err != nil || res.Suspect != "" {
		t.Fatalf("backup after the data came back: %+v %v", res, err)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
