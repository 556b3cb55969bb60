package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ArchivingStatus is what the collectors read of one target's continuous
// archive at each scrape.
type ArchivingStatus struct {
	Connected bool
	// Received and Durable are replication offsets: the last byte
	// received, the last byte stored in a complete segment.
	Received, Durable int64
	// LastReceive is when the server last sent anything; OldestPending
	// the receive time of the oldest write not yet durable (zero: none).
	LastReceive, OldestPending time.Time
	// Counts since the process started.
	Segments, Bytes, Gaps, Bases int64
}

// ArchivingSource reports a target's status; false while no archive
// runs.
type ArchivingSource func() (ArchivingStatus, bool)

// Archiving collects the continuous archives' series, read from their
// sources at scrape time. Its methods are safe for concurrent use.
type Archiving struct {
	mu      sync.Mutex
	sources map[string]ArchivingSource
	now     func() time.Time

	connected, lag, recovery, lagBytes, durable *prometheus.Desc
	segments, bytes, gaps, bases                *prometheus.Desc
}

// NewArchiving creates the collector and registers it on reg (none when
// nil).
func NewArchiving(reg prometheus.Registerer) *Archiving {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("redback_archiving_"+name, help, []string{"target"}, nil)
	}
	a := &Archiving{
		sources:   map[string]ArchivingSource{},
		now:       time.Now,
		connected: d("connected", "1 while the archiver streams the server's replication stream."),
		lag:       d("lag_seconds", "Seconds since the server last sent anything on the replication stream (it PINGs every 10 s)."),
		recovery:  d("recovery_point_seconds", "Seconds of writes received but not yet durable in storage (what a crash now would lose)."),
		lagBytes:  d("lag_bytes", "Bytes of the stream received but not yet durable."),
		durable:   d("durable_offset", "Replication offset of the last byte stored in a complete segment (and acknowledged)."),
		segments:  d("segments_written_total", "Segments stored."),
		bytes:     d("bytes_written_total", "Bytes of segments stored."),
		gaps:      d("gaps_total", "Full resynchronisations that lost part of the stream (each recorded as a gap)."),
		bases:     d("bases_total", "Base snapshots taken by the archiver."),
	}
	if reg != nil {
		reg.MustRegister(a)
	}
	return a
}

var (
	archivingOnce sync.Once
	archivingM    *Archiving
)

// DefaultArchiving returns the collector registered on
// prometheus.DefaultRegisterer (registered on first use).
func DefaultArchiving() *Archiving {
	archivingOnce.Do(func() { archivingM = NewArchiving(prometheus.DefaultRegisterer) })
	return archivingM
}

// Watch reads target's series from src from now on (replacing an earlier
// source of the same target).
func (a *Archiving) Watch(target string, src ArchivingSource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sources[target] = src
}

// Describe implements prometheus.Collector.
func (a *Archiving) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{a.connected, a.lag, a.recovery, a.lagBytes, a.durable, a.segments, a.bytes, a.gaps, a.bases} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a *Archiving) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	srcs := make(map[string]ArchivingSource, len(a.sources))
	for k, v := range a.sources {
		srcs[k] = v
	}
	a.mu.Unlock()
	now := a.now()
	for target, src := range srcs {
		st, ok := src()
		if !ok {
			continue
		}
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, target)
		}
		c := func(d *prometheus.Desc, v int64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), target)
		}
		g(a.connected, boolValue(st.Connected))
		lag, recovery := 0.0, 0.0
		if !st.LastReceive.IsZero() {
			lag = now.Sub(st.LastReceive).Seconds()
		}
		if !st.OldestPending.IsZero() {
			recovery = now.Sub(st.OldestPending).Seconds()
		}
		g(a.lag, lag)
		g(a.recovery, recovery)
		g(a.lagBytes, float64(max(0, st.Received-st.Durable)))
		g(a.durable, float64(st.Durable))
		c(a.segments, st.Segments)
		c(a.bytes, st.Bytes)
		c(a.gaps, st.Gaps)
		c(a.bases, st.Bases)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
