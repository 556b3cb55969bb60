// The dump of a cluster: one Dumper per shard (its primary, or a replica),
// several shards at once, their keys written to one KeyWriter one whole key
// at a time; the topology watched, so that a resharding fails the dump
// instead of leaving keys out.

package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redback-dev/redback/codec"
)

// The values of ClusterOptions.ReadFrom.
const (
	ReadPrimary = "primary"
	ReadReplica = "replica"
)

// ClusterOptions tune a cluster dump. Zero values take the defaults.
type ClusterOptions struct {
	// ReadFrom is ReadPrimary (the default) or ReadReplica: each shard is
	// read from a replica that is not flagged failed, or from its primary
	// when it has none.
	ReadFrom string
	// Parallel is the number of shards dumped at once (default 3). They
	// share DumpOptions.Workers (each gets Workers/Parallel readers, at
	// least one), so that the memory a dump holds stays about that of one
	// server's dump.
	Parallel int
	// Watch is how often the topology is read again during the dump
	// (default 1 s).
	Watch time.Duration
}

// ClusterDumper reads every key of a cluster.
type ClusterDumper struct {
	base *redis.Options
	opt  DumpOptions
	copt ClusterOptions
}

// NewClusterDumper returns a ClusterDumper for the cluster base points at
// (any node).
func NewClusterDumper(base *redis.Options, opt DumpOptions, copt ClusterOptions) *ClusterDumper {
	opt.defaults()
	if copt.ReadFrom == "" {
		copt.ReadFrom = ReadPrimary
	}
	if copt.Parallel <= 0 {
		copt.Parallel = 3
	}
	if copt.Watch <= 0 {
		copt.Watch = time.Second
	}
	return &ClusterDumper{base: base, opt: opt, copt: copt}
}

// ShardRead is one shard of a cluster dump: its slots, its primary's ID and
// the node that was read.
type ShardRead struct {
	Slots    []SlotRange
	Primary  string
	ReadFrom ClusterNode
	facts    ServerFacts
	opt      *redis.Options
}

// ClusterPlan is what a cluster dump reads: the topology at its start and,
// per shard, the node read and what it holds.
type ClusterPlan struct {
	Topology Topology
	Shards   []ShardRead
}

// Databases returns the databases that hold keys on any node read.
func (p ClusterPlan) Databases() []int {
	set := map[int]bool{}
	for _, s := range p.Shards {
		for db := range s.facts.KeysPerDB {
			set[db] = true
		}
	}
	out := make([]int, 0, len(set))
	for db := range set {
		out = append(out, db)
	}
	sort.Ints(out)
	return out
}

// DatasetMemory is the sum of the nodes' used_memory_dataset.
func (p ClusterPlan) DatasetMemory() int64 {
	var n int64
	for _, s := range p.Shards {
		n += s.facts.DatasetMemory
	}
	return n
}

// Source is the archive's description of the plan (node IDs and slots,
// never an address).
func (p ClusterPlan) Source() *codec.ClusterSource {
	cs := &codec.ClusterSource{}
	for _, s := range p.Shards {
		sh := codec.ClusterShard{Primary: s.Primary, ReadFrom: s.ReadFrom.ID}
		for _, r := range s.Slots {
			sh.Slots = append(sh.Slots, [2]int{r.Start, r.End})
		}
		cs.Shards = append(cs.Shards, sh)
	}
	return cs
}

// Plan discovers the topology and picks the node to read of each shard.
func (d *ClusterDumper) Plan(ctx context.Context) (ClusterPlan, error) {
	topo, err := DiscoverCluster(ctx, d.base)
	if err != nil {
		return ClusterPlan{}, err
	}
	p := ClusterPlan{Topology: topo}
	for _, sh := range topo.Shards {
		node := sh.Primary
		if d.copt.ReadFrom == ReadReplica {
			for _, r := range sh.Replicas {
				if !r.Failed {
					node = r
					break
				}
			}
		}
		opt := nodeOptions(d.base, node.Addr)
		f, err := Inspect(ctx, opt)
		if err != nil {
			return ClusterPlan{}, fmt.Errorf("shard of slots %d-...: node %s: %w", sh.Slots[0].Start, node.Addr, err)
		}
		p.Shards = append(p.Shards, ShardRead{Slots: sh.Slots, Primary: sh.Primary.ID, ReadFrom: node, facts: f, opt: opt})
	}
	return p, nil
}

// Dump writes every key of the plan's shards to w, database by database
// (ascending), the shards of one database read at once. It fails, and w
// then holds a partial document to discard, when a shard's dump fails, or
// when the topology changes (a slot served by another shard: a
// resharding) at any time from Plan to the end; a failover inside a shard
// is no change (the node read serves its keys as a replica as it did as a
// primary).
func (d *ClusterDumper) Dump(ctx context.Context, p ClusterPlan, w KeyWriter) (st DumpStats, err error) {
	defer recoverTo(&err)
	st = DumpStats{KeysPerDB: map[int]int64{}, RawKeys: map[string]int64{}}
	dbs := d.opt.Databases
	if len(dbs) == 0 {
		dbs = p.Databases()
	} else {
		dbs = append([]int(nil), dbs...)
		sort.Ints(dbs)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if werr := d.watch(ctx, p.Topology); werr != nil {
			cancel(werr)
		}
	}()
	prog := &clusterProgress{fn: d.opt.Progress, done: map[int]Progress{}}
	for _, sh := range p.Shards {
		for _, db := range dbs {
			prog.total += sh.facts.KeysPerDB[db]
		}
	}
	for _, db := range dbs {
		if err = d.dumpDB(ctx, p, db, w, &st, prog); err != nil {
			break
		}
	}
	if err == nil {
		// The last look: a resharding that ended between two watches.
		err = d.check(ctx, p.Topology)
	}
	cancel(nil)
	<-watchDone
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return st, cause // the topology's change, not the cancellation it caused
	}
	return st, err
}

// watch reads the topology every Watch until ctx ends, and returns the
// first change.
func (d *ClusterDumper) watch(ctx context.Context, start Topology) error {
	t := time.NewTicker(d.copt.Watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := d.check(ctx, start); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// check compares the topology now with start. A node that cannot be asked
// is no change (the shard's reads fail if it matters); another node of
// start is asked then.
func (d *ClusterDumper) check(ctx context.Context, start Topology) error {
	var lastErr error
	addrs := []*redis.Options{d.base}
	for _, sh := range start.Shards {
		addrs = append(addrs, nodeOptions(d.base, sh.Primary.Addr))
	}
	for _, o := range addrs {
		now, err := DiscoverCluster(ctx, o)
		if errors.Is(err, ErrTopology) {
			return err
		}
		if err != nil {
			lastErr = err
			continue
		}
		return start.SameSlots(now)
	}
	return fmt.Errorf("no node of the cluster answers CLUSTER NODES: %w", lastErr)
}

// dumpDB dumps database db of every shard, Parallel shards at once.
func (d *ClusterDumper) dumpDB(ctx context.Context, p ClusterPlan, db int, w KeyWriter, st *DumpStats, prog *clusterProgress) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.copt.Parallel)
	lock := &keyLock{ch: make(chan struct{}, 1)}
	var mu sync.Mutex
	workers := max(1, d.opt.Workers/min(d.copt.Parallel, len(p.Shards)))
	for i, sh := range p.Shards {
		g.Go(guard(func() error {
			o := d.opt
			o.Databases = []int{db}
			o.Workers = workers
			o.Progress = func(pr Progress) { prog.report(i, pr) }
			sst, err := NewDumper(sh.opt, o).Dump(gctx, sh.facts, &lockedWriter{w: w, lock: lock, ctx: gctx})
			mu.Lock()
			st.add(sst)
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("shard %s (slots %s) read from %s: %w", sh.Primary, rangesText(sh.Slots), sh.ReadFrom.Addr, explainRedirect(err))
			}
			return nil
		}))
	}
	return g.Wait()
}

// explainRedirect says what a MOVED or ASK reply met by a shard's dump
// means.
func explainRedirect(err error) error {
	if hasCode(err, "MOVED") || hasCode(err, "ASK") {
		return fmt.Errorf("%w: a key moved to another node during the backup (a resharding or failover): run the backup again: %v", ErrTopology, err)
	}
	return err
}

func rangesText(rs []SlotRange) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		if r.Start == r.End {
			out += fmt.Sprint(r.Start)
		} else {
			out += fmt.Sprintf("%d-%d", r.Start, r.End)
		}
	}
	return out
}

// add adds a shard's stats to st.
func (st *DumpStats) add(o DumpStats) {
	st.Keys += o.Keys
	st.Vanished += o.Vanished
	st.Duplicates += o.Duplicates
	st.BigKeys += o.BigKeys
	st.Bytes += o.Bytes
	st.FieldTTLKeys += o.FieldTTLKeys
	for db, n := range o.KeysPerDB {
		st.KeysPerDB[db] += n
	}
	for t, n := range o.RawKeys {
		st.RawKeys[t] += n
	}
}

// clusterProgress sums the shards' progress.
type clusterProgress struct {
	mu    sync.Mutex
	total int64
	done  map[int]Progress
	fn    func(Progress)
}

func (c *clusterProgress) report(shard int, p Progress) {
	if c.fn == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[shard] = p
	sum := Progress{KeysTotal: c.total, DB: p.DB}
	for _, q := range c.done {
		sum.KeysDone += q.KeysDone
		sum.Bytes += q.Bytes
	}
	c.fn(sum)
}

// keyLock is held by one shard's writer from BeginKey to EndKey.
type keyLock struct{ ch chan struct{} }

// lockedWriter hands one shard's keys to a shared KeyWriter, one whole key
// at a time (a big key's windows stay together). It releases the lock
// after EndKey and after any failed write, so that no other shard waits
// for a key that will never end.
type lockedWriter struct {
	w    KeyWriter
	lock *keyLock
	ctx  context.Context
	held bool
}

func (l *lockedWriter) BeginKey(h codec.KeyHeader) error {
	select {
	case l.lock.ch <- struct{}{}:
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
	l.held = true
	return l.done(l.w.BeginKey(h))
}

func (l *lockedWriter) done(err error) error {
	if err != nil && l.held {
		l.held = false
		<-l.lock.ch
	}
	return err
}

func (l *lockedWriter) WriteString(v []byte) error     { return l.done(l.w.WriteString(v)) }
func (l *lockedWriter) WriteStringPart(p []byte) error { return l.done(l.w.WriteStringPart(p)) }
func (l *lockedWriter) WriteField(f, v []byte) error   { return l.done(l.w.WriteField(f, v)) }
func (l *lockedWriter) WriteFieldExpire(f, v []byte, at int64) error {
	return l.done(l.w.WriteFieldExpire(f, v, at))
}
func (l *lockedWriter) WriteItem(v []byte) error      { return l.done(l.w.WriteItem(v)) }
func (l *lockedWriter) WriteMember(m, s []byte) error { return l.done(l.w.WriteMember(m, s)) }
func (l *lockedWriter) WriteStreamEntry(e codec.StreamEntry) error {
	return l.done(l.w.WriteStreamEntry(e))
}

func (l *lockedWriter) EndKey() error {
	err := l.w.EndKey()
	if l.held {
		l.held = false
		<-l.lock.ch
	}
	return err
}
