package archiving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redback-dev/redback/sinks"
)

// The keys of a base archive's manifest source that place it in the
// replication stream (agent writes them for every replica snapshot), and
// the gap a base was taken after.
const (
	ManifestReplID = "replid"
	ManifestOffset = "repl_offset"
	ManifestGap    = "archiving_gap"
	// ManifestArchiving is "base" on the archiver's own bases.
	ManifestArchiving = "archiving"
)

// Base is an archive that a chain of segments can extend: a snapshot at
// Offset of replication ID ReplID, taken at Time.
type Base struct {
	Name   string
	ReplID string
	Offset int64
	Time   time.Time
	// Gap is why the stream before this base was lost ("" when none was
	// recorded).
	Gap string
	// ByArchiver: the archiver took it (other replica snapshots are bases
	// too, but no stream follows them unless it happens to).
	ByArchiver bool
}

// Chain is a base and the segments that continue it without a hole: the
// state of every moment from Base.Time to To can be restored.
type Chain struct {
	Base     Base
	Segments []SegmentName
	// To is the receive time of the chain's last command, or the later
	// time its last segment vouches for (Manifest.Until); Base.Time
	// without segments. LastOffset is the offset of its last byte.
	To         time.Time
	LastOffset int64
	// LastDB is the database selected at the chain's end.
	LastDB int
}

// Gap is a time that no chain covers, with the reason when recorded.
type Gap struct {
	From, To time.Time
	Reason   string
}

// Window is what a sink's archives and segments let restore.
type Window struct {
	// Chains, oldest base first.
	Chains []Chain
	// Gaps between consecutive chains.
	Gaps []Gap
	// Orphans are segments that extend no base (their base was deleted).
	Orphans []SegmentName
}

// Covers returns the chain to restore time t from: the newest base at or
// before t whose chain reaches t; false when no chain covers t.
func (w Window) Covers(t time.Time) (Chain, bool) {
	for i := len(w.Chains) - 1; i >= 0; i-- {
		c := w.Chains[i]
		if !c.Base.Time.After(t) && !c.To.Before(t) {
			return c, true
		}
	}
	return Chain{}, false
}

// BasesOf returns the archives of infos that can be bases, oldest first.
func BasesOf(infos []sinks.Info) []Base {
	var out []Base
	for _, in := range infos {
		if in.Manifest == nil {
			continue
		}
		src := in.Manifest.Source
		off, err := strconv.ParseInt(src[ManifestOffset], 10, 64)
		if src[ManifestReplID] == "" || err != nil {
			continue
		}
		out = append(out, Base{Name: in.Name, ReplID: src[ManifestReplID], Offset: off, Time: in.Created, Gap: src[ManifestGap],
			ByArchiver: src[ManifestArchiving] == "base"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// Load lists the sink's archives and segments and builds the window.
func Load(ctx context.Context, sink *sinks.Sink) (Window, error) {
	infos, err := sink.List(ctx)
	if err != nil {
		return Window{}, err
	}
	return LoadWith(ctx, sink, infos)
}

// LoadWith is Load with the archives already listed.
func LoadWith(ctx context.Context, sink *sinks.Sink, infos []sinks.Info) (Window, error) {
	segs, err := listSegments(ctx, sink)
	if err != nil {
		return Window{}, err
	}
	return build(ctx, sink, BasesOf(infos), segs)
}

// listSegments returns the parsed names of the stored segments, in name
// order (receive time); names of another shape are skipped.
func listSegments(ctx context.Context, sink *sinks.Sink) ([]SegmentName, error) {
	infos, err := sink.ListSegments(ctx)
	if err != nil {
		return nil, err
	}
	var out []SegmentName
	for _, in := range infos {
		if sn, err := ParseSegmentName(in.Name); err == nil {
			out = append(out, sn)
		}
	}
	return out, nil
}

// readManifest reads a segment's manifest.
func readManifest(ctx context.Context, sink *sinks.Sink, name string) (Manifest, error) {
	data, err := sink.SegmentManifest(ctx, name)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Name != name {
		return Manifest{}, fmt.Errorf("%w: the manifest of segment %s is unreadable", errCorrupt, name)
	}
	return m, nil
}

// build links the segments to the bases.
func build(ctx context.Context, sink *sinks.Sink, bases []Base, segs []SegmentName) (Window, error) {
	byFirst := map[int64][]SegmentName{}
	for _, s := range segs {
		byFirst[s.First] = append(byFirst[s.First], s)
	}
	used := map[string]bool{}
	var w Window
	for _, b := range bases {
		c := Chain{Base: b, To: b.Time, LastOffset: b.Offset}
		replid := b.ReplID
		for {
			next, ok, err := follow(ctx, sink, byFirst[c.LastOffset+1], replid)
			if err != nil {
				return Window{}, err
			}
			if !ok {
				break
			}
			c.Segments = append(c.Segments, next)
			used[next.Name] = true
			c.LastOffset, replid = next.Last, next.ReplID
		}
		if n := len(c.Segments); n > 0 {
			m, err := readManifest(ctx, sink, c.Segments[n-1].Name)
			if err != nil {
				return Window{}, err
			}
			c.To, c.LastDB = m.LastTime, m.LastDB
			if m.Until.After(c.To) {
				c.To = m.Until
			}
		}
		w.Chains = append(w.Chains, c)
	}
	for _, s := range segs {
		if !used[s.Name] {
			w.Orphans = append(w.Orphans, s)
		}
	}
	// Gaps: from the furthest point covered so far to the next base.
	var reach time.Time
	for i, c := range w.Chains {
		if i > 0 && c.Base.Time.After(reach) {
			w.Gaps = append(w.Gaps, Gap{From: reach, To: c.Base.Time, Reason: c.Base.Gap})
		}
		if c.To.After(reach) {
			reach = c.To
		}
	}
	return w, nil
}

// follow picks, among the segments starting at the next offset, the one
// of replication ID replid, or the first after a failover from it.
func follow(ctx context.Context, sink *sinks.Sink, cands []SegmentName, replid string) (SegmentName, bool, error) {
	for _, s := range cands {
		if s.ReplID == replid {
			return s, true, nil
		}
	}
	for _, s := range cands {
		m, err := readManifest(ctx, sink, s.Name)
		if err != nil {
			return SegmentName{}, false, err
		}
		if m.PrevReplID == replid {
			return s, true, nil
		}
	}
	return SegmentName{}, false, nil
}

// resume returns where the archive of sink ends: after the newest
// segment, or at the newest base when it is newer; zero when there is
// neither.
func resume(ctx context.Context, sink *sinks.Sink) (position, error) {
	infos, err := sink.List(ctx)
	if err != nil {
		return position{}, err
	}
	segs, err := listSegments(ctx, sink)
	if err != nil {
		return position{}, err
	}
	var pos position
	var at time.Time
	if n := len(segs); n > 0 {
		m, err := readManifest(ctx, sink, segs[n-1].Name)
		if err != nil {
			return position{}, err
		}
		pos, at = position{replid: m.ReplID, next: m.LastOffset + 1, db: m.LastDB}, m.LastTime
	}
	if bs := BasesOf(infos); len(bs) > 0 {
		if b := bs[len(bs)-1]; pos.replid == "" || b.Time.After(at) {
			pos = position{replid: b.ReplID, next: b.Offset + 1}
		}
	}
	return pos, nil
}

// ErrNotCovered is a time that no chain of the window covers.
var ErrNotCovered = errors.New("no base snapshot and segments cover that time")
