package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/archiving"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/engine/replica"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/sinks"
)

// The continuous archive (archiving.enabled): the Service's part is the
// base snapshots, the restorable window and the restore to a point in
// time; agent/archiving follows the stream.

// Archiver returns the continuous archiver of the Service's server. Run
// it (redback serve does, with archiving.enabled) until its context ends.
func (s *Service) Archiver(ctx context.Context) (*archiving.Archiver, error) {
	facts, err := engine.Inspect(ctx, s.redis)
	if err != nil {
		return nil, err
	}
	if facts.Mode == "cluster" {
		return nil, fmt.Errorf("%w: archiving follows one server's replication stream; a cluster is not supported", ErrInvalid)
	}
	ro := s.replicaOptions(facts)
	a := s.cfg.Archiving
	return archiving.New(archiving.Options{
		Replica:        ro,
		Sink:           s.sink,
		Recipients:     s.recipients,
		Bases:          baseWriter{s},
		SegmentSeconds: time.Duration(a.SegmentSeconds * float64(time.Second)),
		SegmentBytes:   a.SegmentBytes,
		Log:            s.log,
		Now:            s.now,
	})
}

// RunArchiving runs the continuous archive until ctx ends (nil then):
// it waits for the server when it cannot reach it at start, and fails
// only on a configuration it cannot archive (a cluster). redback serve
// runs it for each target with archiving.enabled.
func (s *Service) RunArchiving(ctx context.Context) error {
	wait := time.Second
	for {
		a, err := s.Archiver(ctx)
		if err == nil {
			s.setArchiver(a)
			defer s.setArchiver(nil)
			return a.Run(ctx)
		}
		if errors.Is(err, ErrInvalid) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("archiving: cannot reach the server yet", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (s *Service) setArchiver(a *archiving.Archiver) {
	s.archMu.Lock()
	s.archiver = a
	s.archMu.Unlock()
}

// ArchivingStatus returns the running archiver's status; false when none
// runs (archiving off, or not started yet).
func (s *Service) ArchivingStatus() (archiving.Status, bool) {
	s.archMu.Lock()
	a := s.archiver
	s.archMu.Unlock()
	if a == nil {
		return archiving.Status{}, false
	}
	return a.Status(), true
}

// archivingStalled fails when the running archiver trails the server by
// more than archiving.max_stall (default 1 minute): writes not durable
// for that long, or no stream for that long (the server PINGs its
// replicas every 10 s). Nil without a running archiver.
func (s *Service) archivingStalled() error {
	st, ok := s.ArchivingStatus()
	if !ok {
		return nil
	}
	max := s.cfg.Archiving.MaxStall
	if max <= 0 {
		max = time.Minute
	}
	now := s.now()
	switch {
	case !st.OldestPending.IsZero() && now.Sub(st.OldestPending) > max:
		return fmt.Errorf("archiving has stalled: writes received %s ago are not durable yet (archiving.max_stall %s)", now.Sub(st.OldestPending).Round(time.Second), max)
	case !st.LastReceive.IsZero() && now.Sub(st.LastReceive) > max:
		return fmt.Errorf("archiving has stalled: nothing received from the server for %s (archiving.max_stall %s; last error: %s)", now.Sub(st.LastReceive).Round(time.Second), max, st.LastError)
	case st.LastReceive.IsZero() && now.Sub(st.Since) > max:
		return fmt.Errorf("archiving has not started streaming in %s (last error: %s)", now.Sub(st.Since).Round(time.Second), st.LastError)
	}
	return nil
}

// keepLiveBase keeps the base that the newest chain of segments extends
// (the one the archiver is extending, or extended last): deleting it
// would strand every segment written since.
func keepLiveBase(ds []retention.Decision, w archiving.Window) {
	live := ""
	for _, c := range w.Chains {
		if len(c.Segments) > 0 {
			live = c.Base.Name
		}
	}
	for i := range ds {
		if ds[i].Name == live && !ds[i].Keep {
			ds[i].Keep = true
			ds[i].Reasons = append(ds[i].Reasons, "extended by the continuous archive")
		}
	}
}

// pruneSegments deletes the segments whose base is not kept: those of
// the chains of deleted bases, and orphans older than the newest kept
// base (a newer one may belong to a base the listing missed, being
// written). It returns how many it deleted (with dryRun, would delete).
func (s *Service) pruneSegments(ctx context.Context, w archiving.Window, kept []string, dryRun bool) (int, error) {
	keep := map[string]bool{}
	for _, k := range kept {
		keep[k] = true
	}
	var newestKept time.Time
	needed := map[string]bool{} // by a kept chain
	for _, c := range w.Chains {
		if keep[c.Base.Name] {
			newestKept = maxTime(newestKept, c.Base.Time)
			for _, sg := range c.Segments {
				needed[sg.Name] = true
			}
		}
	}
	var doomed []string
	for _, c := range w.Chains {
		for _, sg := range c.Segments {
			if !keep[c.Base.Name] && !needed[sg.Name] {
				doomed = append(doomed, sg.Name)
			}
		}
	}
	for _, o := range w.Orphans {
		if o.FirstTime.Before(newestKept) {
			doomed = append(doomed, o.Name)
		}
	}
	if dryRun {
		return len(doomed), nil
	}
	for i, name := range doomed {
		if err := s.sink.DeleteSegment(ctx, name); err != nil && !errors.Is(err, sinks.ErrNotFound) {
			return i, fmt.Errorf("delete segment %s: %w", name, translate(err))
		}
	}
	if len(doomed) > 0 {
		s.log.Info("segments pruned with their base", "segments", len(doomed))
	}
	return len(doomed), nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// baseWriter stores the archiver's base snapshots as archives.
type baseWriter struct{ s *Service }

// Base writes the snapshot as an archive, as `backup --source replica`
// does, without the Service's one-at-a-time lock: the server streams the
// RDB now and would not wait for a running backup.
func (b baseWriter) Base(ctx context.Context, snap *replica.Snapshot, gap string) (string, error) {
	s := b.s
	facts, err := engine.Inspect(ctx, s.redis)
	if err != nil {
		return "", err
	}
	job, sel := s.newJob(facts)
	s.snapshotJob(&job, snap, sel, nil)
	job.manifest[archiving.ManifestArchiving] = "base"
	if gap != "" {
		job.manifest[archiving.ManifestGap] = gap
	}
	res, err := s.writeArchive(ctx, job)
	if err != nil {
		return "", err
	}
	return res.Filename, nil
}

// Window is the restorable window of a target: the times a restore --at
// can reach.
type Window struct {
	// From and To bound everything restorable (zero without a chain);
	// Gaps are the times between that cannot be restored.
	From   string      `json:"from,omitempty"`
	To     string      `json:"to,omitempty"`
	Gaps   []WindowGap `json:"gaps"`
	Chains []Chain     `json:"chains"`
	// Orphans counts segments that extend no kept base.
	Orphans int `json:"orphan_segments,omitempty"`
}

// WindowGap is a time no chain covers.
type WindowGap struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
}

// Chain is one base snapshot and the segments that extend it.
type Chain struct {
	Base     string `json:"base"`
	From     string `json:"from"`
	To       string `json:"to"`
	Segments int    `json:"segments"`
	ReplID   string `json:"replid"`
	// Offset is the offset of the chain's last byte.
	Offset int64 `json:"offset"`
}

// timeText is the window's time format (UTC, milliseconds).
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Window returns the restorable window of the Service's storage. Chains
// of a base alone that the archiver did not take (replica snapshots that
// no stream follows) are left out.
func (s *Service) Window(ctx context.Context) (Window, error) {
	w, err := archiving.Load(ctx, s.sink)
	if err != nil {
		return Window{}, translate(err)
	}
	return windowOf(w), nil
}

func windowOf(w archiving.Window) Window {
	out := Window{Gaps: []WindowGap{}, Chains: []Chain{}, Orphans: len(w.Orphans)}
	var from, to time.Time
	for _, c := range w.Chains {
		if len(c.Segments) == 0 && !c.Base.ByArchiver {
			continue
		}
		out.Chains = append(out.Chains, Chain{Base: c.Base.Name, From: timeText(c.Base.Time), To: timeText(c.To),
			Segments: len(c.Segments), ReplID: c.Base.ReplID, Offset: c.LastOffset})
		if from.IsZero() {
			from = c.Base.Time
		} else if c.Base.Time.After(to) {
			out.Gaps = append(out.Gaps, WindowGap{From: timeText(to), To: timeText(c.Base.Time), Reason: c.Base.Gap})
		}
		if c.To.After(to) {
			to = c.To
		}
	}
	if !from.IsZero() {
		out.From, out.To = timeText(from), timeText(to)
	}
	return out
}

// PointInTime is what a restore --at reached.
type PointInTime struct {
	// At is the time asked for; Base the archive restored first.
	At   string `json:"at"`
	Base string `json:"base"`
	// Segments read, commands replayed after the base.
	Segments int   `json:"segments"`
	Commands int64 `json:"commands"`
	// ReachedAt is the receive time of the last command replayed (the
	// base's time when none was), ReachedOffset the replication offset
	// after it, of replication ID ReplID.
	ReachedAt     string `json:"reached_at"`
	ReachedOffset int64  `json:"reached_offset"`
	ReplID        string `json:"replid"`
	// CommandErrors counts the replayed commands the target refused.
	CommandErrors int64 `json:"command_errors"`
}

// ParseAt parses restore --at: RFC 3339 (with or without fractions), or a
// negative duration before now ("-5m").
func ParseAt(text string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(text, "-") {
		d, err := time.ParseDuration(text[1:])
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%w: --at %q: want RFC 3339 (2026-01-02T14:02:36Z) or a time before now (-5m)", ErrInvalid, truncateText(text, 40))
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --at %q: want RFC 3339 (2026-01-02T14:02:36Z) or a time before now (-5m)", ErrInvalid, truncateText(text, 40))
	}
	return t, nil
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// RestoreAt restores the state of the server at time at: the newest base
// snapshot at or before at whose segments reach it, then every command
// received up to at (MULTI/EXEC blocks whole), every database under its
// own number whatever the Redis URL names. The target must hold no
// key, or with o.Overwrite it is emptied (FLUSHALL) once the base and the
// segments are proven whole. Selections, database maps and dry runs do
// not apply (an error).
func (s *Service) RestoreAt(ctx context.Context, at time.Time, o RestoreOptions) (res RestoreResult, err error) {
	start := s.now()
	res = RestoreResult{Overwrite: o.Overwrite, PointInTime: &PointInTime{At: timeText(at)}}
	defer func() {
		res.DurationSeconds = roundSeconds(s.now().Sub(start))
		settle(&res.Success, &res.Error, err)
		if err != nil {
			s.log.Error("point-in-time restore failed", "at", timeText(at), "err", err)
		}
		if !errors.Is(err, ErrBusy) {
			s.observe(Op{Kind: OpRestoreAt, Archive: res.Filename, Keys: res.RestoredCount}, start, err)
		}
	}()
	sel := o.Selection
	if o.DryRun || len(o.DBMap) > 0 || len(sel.Match)+len(sel.Exclude)+len(sel.Types)+len(sel.DBs) > 0 {
		return res, fmt.Errorf("%w: --at restores the whole server: --dry-run, --db, --match, --exclude and --type do not apply", ErrInvalid)
	}
	w, err := archiving.Load(ctx, s.sink)
	if err != nil {
		return res, translate(err)
	}
	chain, ok := w.Covers(at)
	if !ok {
		win := windowOf(w)
		if win.From == "" {
			return res, fmt.Errorf("%w: %s: %v; nothing is restorable to a point in time yet (is archiving enabled?)", ErrNotFound, timeText(at), archiving.ErrNotCovered)
		}
		return res, fmt.Errorf("%w: %s: %v (the restorable window is %s to %s, with %d gaps: redback list shows them)", ErrNotFound, timeText(at), archiving.ErrNotCovered, win.From, win.To, len(win.Gaps))
	}
	res.Filename, res.PointInTime.Base, res.PointInTime.ReplID = chain.Base.Name, chain.Base.Name, chain.Base.ReplID
	if err := archiving.Check(ctx, s.sink, chain, at, o.Identities); err != nil {
		return res, translateSegment(err)
	}
	if err := s.emptyTarget(ctx, chain.Base.Name, o); err != nil {
		return res, err
	}
	base, err := s.Restore(ctx, chain.Base.Name, RestoreOptions{
		TTL: "absolute", Identities: o.Identities, AllowEviction: o.AllowEviction,
		NoPrecheck: o.Overwrite, IgnoreMemory: o.IgnoreMemory, Progress: o.Progress, keepDatabases: true,
	})
	pit := res.PointInTime
	res = base
	res.Overwrite, res.PointInTime = o.Overwrite, pit
	if err != nil {
		return res, err
	}
	rr, err := archiving.Replay(ctx, s.sink, chain, at, o.Identities, s.redis)
	pit.Segments, pit.Commands, pit.CommandErrors = rr.Segments, rr.Commands, rr.Errors
	pit.ReachedAt, pit.ReachedOffset = timeText(rr.Reached), rr.Offset
	res.Errors = append(res.Errors, rr.Messages...)
	res.ErrorCount += rr.Errors
	if err != nil {
		return res, translateSegment(err)
	}
	s.log.Info("point-in-time restore complete", "at", pit.At, "base", pit.Base, "segments", pit.Segments,
		"commands", pit.Commands, "reached_at", pit.ReachedAt, "offset", pit.ReachedOffset, "errors", rr.Errors)
	if rr.Errors > 0 {
		return res, fmt.Errorf("%d replayed commands failed (first: %s)", rr.Errors, rr.Messages[0])
	}
	return res, nil
}

// translateSegment maps a segment's errors to the agent's kinds.
func translateSegment(err error) error {
	if archiving.IsCorrupt(err) {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return translate(err)
}

// emptyTarget makes sure the target holds no key: without o.Overwrite it
// refuses one that does; with it, it proves the base whole first, then
// empties the server.
func (s *Service) emptyTarget(ctx context.Context, base string, o RestoreOptions) error {
	c := redis.NewClient(s.redis)
	defer c.Close()
	keys, err := totalKeys(ctx, c)
	if err != nil {
		return err
	}
	if keys == 0 {
		return nil
	}
	if !o.Overwrite {
		return fmt.Errorf("%w: the target holds %d keys: a point-in-time restore needs an empty server (or --overwrite, which replaces everything on it)", ErrExists, keys)
	}
	a, release, err := s.resolve(ctx, base, false)
	defer release()
	if err != nil {
		return err
	}
	if _, err := s.precheck(ctx, a, o.Identities); err != nil {
		return err
	}
	if err := engine.CheckTarget(ctx, s.redis, o.AllowEviction || s.cfg.Restore.AllowEviction); err != nil {
		return err
	}
	s.log.Warn("point-in-time restore with --overwrite: emptying the target (FLUSHALL)", "keys", keys)
	if err := c.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("empty the target: %w", err)
	}
	return nil
}

// totalKeys counts the keys of every database (INFO keyspace).
func totalKeys(ctx context.Context, c *redis.Client) (int64, error) {
	text, err := c.Info(ctx, "keyspace").Result()
	if err != nil {
		return 0, fmt.Errorf("count the target's keys: %w", err)
	}
	var n int64
	for _, line := range strings.Split(text, "\n") {
		_, rest, ok := strings.Cut(strings.TrimSpace(line), ":keys=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		k, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("count the target's keys: unexpected INFO keyspace")
		}
		n += k
	}
	return n, nil
}
