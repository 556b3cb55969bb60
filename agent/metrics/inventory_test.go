package metrics

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/sinks"
)

// TestInventory: Watch lists at once and seeds the last-success gauges;
// listings are reused between close scrapes, and listed again after an
// operation that changed storage; a failed listing says storage_up 0 and
// keeps the last good figures; an archive older than the recorded backup
// moves nothing.
func TestInventory(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	ctx := context.Background()
	var mu sync.Mutex
	var calls int
	var cur agent.Inventory
	var fail error
	set := func(inv agent.Inventory, err error) { mu.Lock(); cur, fail = inv, err; mu.Unlock() }
	list := func(context.Context) (agent.Inventory, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return cur, fail
	}
	archive := func(name string, created time.Time, took time.Duration, size, keys int64) sinks.Info {
		return sinks.Info{Name: name, Created: created, Size: size,
			Manifest: &sinks.Manifest{KeysCount: keys, CreatedAt: created, CompletedAt: created.Add(took)}}
	}
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	set(agent.Inventory{Archives: 2, Bytes: 300, Newest: archive("b", t0, 4*time.Second, 200, 70)}, nil)
	m.Watch(ctx, "t", list)

	tl := map[string]string{"target": "t"}
	check := func(name string, want float64) {
		t.Helper()
		got, ok := value(t, reg, name, tl)
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	check("redback_archives", 2)
	check("redback_archives_size_bytes", 300)
	check("redback_newest_archive_keys", 70)
	check("redback_newest_archive_size_bytes", 200)
	check("redback_newest_archive_timestamp_seconds", unix(t0))
	check("redback_storage_up", 1)
	check("redback_backup_last_success_timestamp_seconds", unix(t0.Add(4*time.Second)))
	check("redback_backup_last_duration_seconds", 4)
	check("redback_backup_last_keys", 70)

	// Within refreshAfter, a scrape reuses the listing.
	set(agent.Inventory{Archives: 3, Bytes: 400, Newest: archive("c", t0.Add(time.Hour), time.Second, 100, 71)}, nil)
	m.Refresh(ctx)
	if calls != 1 {
		t.Fatalf("%d listings, want 1 (the second scrape is within %v)", calls, refreshAfter)
	}
	check("redback_archives", 2)
	// An operation that changed storage makes the next scrape list.
	m.Record("t", agent.Op{Kind: agent.OpDelete, Start: t0, End: t0})
	m.Refresh(ctx)
	check("redback_archives", 3)
	check("redback_backup_last_keys", 71)
	check("redback_backup_last_success_timestamp_seconds", unix(t0.Add(time.Hour+time.Second)))

	// A failed listing keeps the figures and says so.
	set(agent.Inventory{}, errors.New("bucket gone"))
	m.Record("t", agent.Op{Kind: agent.OpPrune, Start: t0, End: t0})
	m.Refresh(ctx)
	check("redback_storage_up", 0)
	check("redback_archives", 3)

	// A backup recorded by this process after the newest archive's end is
	// not undone by a listing that has not caught up with it.
	end := t0.Add(2 * time.Hour)
	m.Record("t", agent.Op{Kind: agent.OpBackup, Start: end.Add(-time.Second), End: end, Size: 5, Keys: 9})
	set(agent.Inventory{Archives: 3, Bytes: 400, Newest: archive("c", t0.Add(time.Hour), time.Second, 100, 71)}, nil)
	m.Refresh(ctx)
	check("redback_storage_up", 1)
	check("redback_backup_last_keys", 9)
	check("redback_backup_last_success_timestamp_seconds", unix(end))
	check("redback_backup_runs_total", 1)
}

// TestInvalidatedDuringListing: an operation that ends while a listing
// runs leaves the listing stale, so the next scrape lists again.
func TestInvalidatedDuringListing(t *testing.T) {
	m := New(prometheus.NewRegistry())
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	block := false
	list := func(context.Context) (agent.Inventory, error) {
		mu.Lock()
		calls++
		b := block
		mu.Unlock()
		if b {
			entered <- struct{}{}
			<-release
		}
		return agent.Inventory{}, nil
	}
	m.Watch(ctx, "t", list)
	m.Record("t", agent.Op{Kind: agent.OpDelete})
	mu.Lock()
	block = true
	mu.Unlock()
	done := make(chan struct{})
	go func() { m.Refresh(ctx); close(done) }()
	<-entered
	m.Record("t", agent.Op{Kind: agent.OpBackup}) // ends during the listing
	mu.Lock()
	block = false
	mu.Unlock()
	close(release)
	<-done
	m.Refresh(ctx)
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Fatalf("%d listings, want 3: the listing that overlapped a backup was taken as fresh", calls)
	}
}
