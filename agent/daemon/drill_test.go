package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/notify"
	"github.com/redback-dev/redback/agent/scheduler/schedulertest"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/sinks"
)

// TestScheduledDrills: drill.schedule a cron expression, on the fake
// clock: each due tick drills the newest archive into a server the agent
// starts itself and records the outcome in its manifest; once the archive
// is damaged, the next tick's drill fails and a webhook hears of it.
func TestScheduledDrills(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	srv.Client(t, 0).Set(ctx, "k", "v", 0)
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []notify.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var e notify.Event
		_ = json.Unmarshal(b, &e)
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	defer hook.Close()
	tg := target(t, "a", srv.URL(0))
	tg.Config.Schedule.Enabled = false // drills only
	tg.Config.Schedule.Timezone = "UTC"
	tg.Config.Drill = config.Drill{Enabled: true, Schedule: "0 * * * *", ServerBinary: bin}
	tg.Config.Notify.Webhooks = []config.Webhook{{URL: hook.URL, On: []string{"failure"}, MaxAttempts: 1}}
	clock := schedulertest.NewClock(time.Date(2030, 1, 1, 0, 30, 0, 0, time.UTC))
	d, err := Open(ctx, []Target{tg}, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	svc := d.Targets()[0].Service
	b, err := svc.Backup(ctx, agent.BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		cancel()
		<-done
	}()

	// drilled waits for the manifest to record a drill newer than after.
	drilled := func(after time.Time) *sinks.DrillRecord {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			in, err := svc.Stat(ctx, b.Filename)
			if err != nil {
				t.Fatal(err)
			}
			if r := in.Manifest.Drill; r != nil && r.DrilledAt.After(after) {
				return r
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no drill recorded after a due tick")
		return nil
	}
	if !clock.WaitTimers(1, 10*time.Second) {
		t.Fatal("the drill scheduler did not arm its timer")
	}
	in, _ := svc.Stat(ctx, b.Filename)
	if in.Manifest.Drill != nil {
		t.Fatalf("a drill before its tick: %+v", in.Manifest.Drill)
	}
	clock.Advance(time.Hour)
	first := drilled(time.Time{})
	if first.Result != agent.DrillPassed || first.Keys != 1 {
		t.Fatalf("first drill: %+v", first)
	}

	// Damage the archive; the next tick's drill fails and says so.
	p := filepath.Join(tg.Config.Storage, b.Filename)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !clock.WaitTimers(1, 10*time.Second) {
		t.Fatal("the drill scheduler did not arm its timer again")
	}
	clock.Advance(time.Hour)
	second := drilled(first.DrilledAt)
	if second.Result != agent.DrillFailed {
		t.Fatalf("drill of a damaged archive: %+v", second)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != notify.DrillFailed || events[0].Drill == nil || events[0].Drill.Filename != b.Filename || events[0].Success {
		t.Fatalf("notifications: %+v", events)
	}
}
