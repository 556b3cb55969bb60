package scheduled

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/lease"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/sinks"
)

type receiver struct {
	mu     sync.Mutex
	events []notify.Event
	pings  int
}

func (r *receiver) handler(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/ping" {
		r.pings++
		return
	}
	b, _ := io.ReadAll(req.Body)
	var e notify.Event
	_ = json.Unmarshal(b, &e)
	r.events = append(r.events, e)
}

// fakeArchive stores a copy of src under a name for time c, with a
// manifest (complete) or without.
func fakeArchive(t *testing.T, svc *agent.Service, dir, src string, c time.Time, complete bool) string {
	t.Helper()
	name := sinks.NewName(c, true, false)
	data, err := os.ReadFile(filepath.Join(dir, src))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if complete {
		m := sinks.Manifest{Name: name, Size: int64(len(data)), FormatVersion: 1, Compressed: true, CreatedAt: c, CompletedAt: c}
		store, err := sinks.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if err := store.WriteManifest(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

func TestJobAgainstRedis(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := srv.Client(t, 0)
	rdb.Set(ctx, "user:1", "alice", 0)
	rdb.HSet(ctx, "h", "f", "v")

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Redis.URL = srv.URL(0)
	cfg.Storage = dir
	svc, err := agent.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	rcv := &receiver{}
	hs := httptest.NewServer(http.HandlerFunc(rcv.handler))
	defer hs.Close()
	ns, err := notify.FromConfig(config.Notify{
		Webhooks:  []config.Webhook{{URL: hs.URL + "/hook", Secret: "k"}},
		Heartbeat: config.Heartbeat{URL: hs.URL + "/ping"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc.Observe(m.Observer("main"))
	j := New(svc, Options{Target: "main", Policy: retention.Policy{Last: 2}, Notify: ns, Metrics: m})

	// First backup.
	if err := j.Backup(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	store, err := sinks.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list, _ := store.List(ctx)
	if len(list) != 1 || list[0].Manifest == nil || list[0].Manifest.KeysCount != 2 {
		t.Fatalf("archives %+v", list)
	}
	first := list[0].Name
	if got, ok := m.LastSuccess("main"); !ok || time.Since(got) > time.Minute {
		t.Fatalf("last success %v %v", got, ok)
	}
	if len(rcv.events) != 1 || rcv.events[0].Kind != notify.Succeeded || rcv.events[0].Result.Filename != first || rcv.pings != 1 {
		t.Fatalf("events %+v pings %d", rcv.events, rcv.pings)
	}

	// A tick whose slot is already served by a newer archive.
	if err := j.Backup(ctx, list[0].Created.Add(-time.Second)); !isSkip(err, "done") {
		t.Fatalf("served tick: %v", err)
	}

	// Older archives: three complete, one without manifest; one complete
	// one is being downloaded. Retention (keep 2) after the next backup
	// deletes the two idle complete ones beyond the newest two.
	base := list[0].Created.Add(-10 * 24 * time.Hour)
	old1 := fakeArchive(t, svc, dir, first, base, true)
	old2 := fakeArchive(t, svc, dir, first, base.Add(24*time.Hour), true)
	held := fakeArchive(t, svc, dir, first, base.Add(48*time.Hour), true)
	manual := fakeArchive(t, svc, dir, first, base.Add(72*time.Hour), false)
	rc, _, err := svc.Open(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Backup(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var names []string
	list, _ = store.List(ctx)
	for _, in := range list {
		names = append(names, in.Name)
	}
	if slices.Contains(names, old1) || slices.Contains(names, old2) {
		t.Fatalf("old archives survive: %v", names)
	}
	if !slices.Contains(names, held) || !slices.Contains(names, manual) || !slices.Contains(names, first) || len(names) != 4 {
		t.Fatalf("archives after retention: %v", names)
	}
	rc.Close()

	// With the reader gone, a dry run would now delete the formerly held one.
	res, ds, err := svc.Prune(ctx, retention.Policy{Last: 2}, true)
	if err != nil || !slices.Equal(res.Deleted, []string{held}) || len(ds) != 4 {
		t.Fatalf("dry run: %+v %v", res, err)
	}

	// Another agent holds the lease: skipped.
	other, _ := lease.New(rdb, "redback:lease", time.Minute)
	if err := other.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	mine, _ := lease.New(rdb, "redback:lease", time.Minute)
	jl := New(svc, Options{Target: "main", Metrics: m, Lease: mine})
	if err := jl.Backup(ctx, time.Time{}); !isSkip(err, "lease") {
		t.Fatalf("with the lease held elsewhere: %v", err)
	}
	_ = other.Release(ctx)

	// Redis gone: a failure, notified, no heartbeat.
	srv.Stop()
	if err := j.Backup(ctx, time.Time{}); err == nil {
		t.Fatal("backup of a stopped server succeeded")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	last := rcv.events[len(rcv.events)-1]
	if last.Kind != notify.Failed || last.Success || last.Result.Error == "" || rcv.pings != 2 {
		t.Fatalf("after failure: %+v, %d pings", last, rcv.pings)
	}
}

func isSkip(err error, reason string) bool {
	var s *scheduler.SkipError
	return errors.As(err, &s) && s.Reason == reason
}
