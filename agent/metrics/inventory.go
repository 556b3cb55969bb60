package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redback-dev/redback/agent"
)

// Lister lists one target's storage (agent.Service.Inventory).
type Lister func(ctx context.Context) (agent.Inventory, error)

// Inventory refresh bounds: a listing is reused for refreshAfter (scrapes
// closer together than that share one), and may take listTimeout.
const (
	refreshAfter = 5 * time.Second
	listTimeout  = 10 * time.Second
)

// inventory is the collector of what storage holds, per watched target.
type inventory struct {
	m *Metrics

	archives, bytes, newestTime, newestKeys, newestSize, up *prometheus.Desc

	mu      sync.Mutex
	targets map[string]*watched
	order   []string
}

type watched struct {
	list   Lister
	listMu sync.Mutex // held while listing: one listing at a time

	mu     sync.Mutex // guards the fields below (never held while listing)
	at     time.Time  // of the last listing; zero: list at the next refresh
	inv    agent.Inventory
	listed bool // inv holds a listing
	ok     bool // the last listing succeeded
	gen    int  // counts invalidations: one during a listing keeps it stale
}

func newInventory(m *Metrics) *inventory {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("redback_"+name, help, []string{"target"}, nil)
	}
	return &inventory{
		m:          m,
		archives:   d("archives", "Complete (listed) archives in storage."),
		bytes:      d("archives_size_bytes", "Total size of the listed archives."),
		newestTime: d("newest_archive_timestamp_seconds", "Unix time the newest listed archive was created (its age: time() - this)."),
		newestKeys: d("newest_archive_keys", "Keys recorded in the newest listed archive's manifest."),
		newestSize: d("newest_archive_size_bytes", "Size of the newest listed archive."),
		up:         d("storage_up", "1 when the last listing of storage succeeded, 0 when it failed (the archive gauges then hold the last good listing)."),
		targets:    map[string]*watched{},
	}
}

// Watch makes target's storage part of the metrics: it lists it now (so
// the redback_backup_last_* gauges start from the newest archive's
// manifest after a restart, instead of missing until the next backup),
// then again at scrapes through Handler, at most every few seconds, and
// after each operation of the target that changed storage (Record). A
// newer archive than the last backup recorded (one taken by `redback
// backup` in another process) moves the last_* gauges too.
func (m *Metrics) Watch(ctx context.Context, target string, list Lister) {
	m.Target(target)
	w := &watched{list: list}
	m.inv.mu.Lock()
	if _, ok := m.inv.targets[target]; !ok {
		m.inv.order = append(m.inv.order, target)
	}
	m.inv.targets[target] = w
	m.inv.mu.Unlock()
	m.inv.refresh(ctx, target, w, time.Now())
}

// Refresh lists the storage of every watched target whose listing is
// older than a few seconds (or was invalidated), in parallel, within ctx.
func (m *Metrics) Refresh(ctx context.Context) {
	now := time.Now()
	var wg sync.WaitGroup
	for _, t := range m.inv.watchedTargets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.inv.refresh(ctx, t.name, t.w, now)
		}()
	}
	wg.Wait()
}

// Handler serves the metrics of prometheus.DefaultGatherer after a
// Refresh: the handler of /metrics (the API's and api.metrics_listen's).
func (m *Metrics) Handler() http.Handler {
	ph := promhttp.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Refresh(r.Context())
		ph.ServeHTTP(w, r)
	})
}

type namedWatch struct {
	name string
	w    *watched
}

func (inv *inventory) watchedTargets() []namedWatch {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	out := make([]namedWatch, 0, len(inv.order))
	for _, name := range inv.order {
		out = append(out, namedWatch{name, inv.targets[name]})
	}
	return out
}

func (inv *inventory) invalidate(target string) {
	inv.mu.Lock()
	w := inv.targets[target]
	inv.mu.Unlock()
	if w != nil {
		w.mu.Lock()
		w.at = time.Time{}
		w.gen++
		w.mu.Unlock()
	}
}

// refresh lists w's storage unless a listing newer than refreshAfter
// (before now) is at hand, and moves the last_* gauges to a newer archive.
func (inv *inventory) refresh(ctx context.Context, target string, w *watched, now time.Time) {
	w.listMu.Lock()
	defer w.listMu.Unlock()
	w.mu.Lock()
	fresh := !w.at.IsZero() && now.Sub(w.at) < refreshAfter
	gen := w.gen
	w.mu.Unlock()
	if fresh {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	started := time.Now()
	got, err := w.list(lctx)
	w.mu.Lock()
	w.ok = err == nil
	if w.gen == gen {
		w.at = started
	}
	if err == nil {
		w.inv, w.listed = got, true
	}
	w.mu.Unlock()
	if err == nil {
		inv.seed(target, got.Newest)
	}
}

// seed records the newest archive as the last successful backup when it
// ended after the one recorded (none, after a restart).
func (inv *inventory) seed(target string, newest agent.ArchiveInfo) {
	if newest.Name == "" {
		return
	}
	end, keys, took := newest.Created, int64(0), time.Duration(0)
	if mf := newest.Manifest; mf != nil {
		keys = mf.KeysCount
		if !mf.CompletedAt.IsZero() {
			end = mf.CompletedAt
			took = mf.CompletedAt.Sub(mf.CreatedAt)
		}
	}
	if last, ok := inv.m.LastSuccess(target); ok && !end.After(last) {
		return
	}
	inv.m.Succeeded(target, end, took, newest.Size, keys)
}

func (inv *inventory) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{inv.archives, inv.bytes, inv.newestTime, inv.newestKeys, inv.newestSize, inv.up} {
		ch <- d
	}
}

func (inv *inventory) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, target string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, target)
	}
	for _, t := range inv.watchedTargets() {
		t.w.mu.Lock()
		listed, ok, cur := t.w.listed, t.w.ok, t.w.inv
		t.w.mu.Unlock()
		up := 0.0
		if ok {
			up = 1
		}
		g(inv.up, up, t.name)
		if !listed {
			continue
		}
		g(inv.archives, float64(cur.Archives), t.name)
		g(inv.bytes, float64(cur.Bytes), t.name)
		if n := cur.Newest; n.Name != "" {
			g(inv.newestTime, unix(n.Created), t.name)
			g(inv.newestSize, float64(n.Size), t.name)
			if n.Manifest != nil {
				g(inv.newestKeys, float64(n.Manifest.KeysCount), t.name)
			}
		}
	}
}
