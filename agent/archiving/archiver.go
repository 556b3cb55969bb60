// Package archiving keeps a continuous archive of a Redis or Valkey server:
// it stays connected as a replica after a base snapshot, and stores the
// replication stream in segments (segment.go) beside the archives, so that
// a restore can replay it up to any second (replay.go). window.go says
// what is restorable: chains of segments, each extending one base
// snapshot, and the gaps between them.
package archiving

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent/engine/replica"
	"github.com/redback-dev/redback/sinks"
)

// Bases stores base snapshots.
type Bases interface {
	// Base stores the snapshot whose RDB snap holds (read to its end) as
	// an archive, with gap (empty, or why the stream before it was lost)
	// in its manifest, and returns the archive's name.
	Base(ctx context.Context, snap *replica.Snapshot, gap string) (string, error)
}

// Options configure an Archiver.
type Options struct {
	// Replica reaches the server (RDBOnly is ignored: the stream must
	// follow the snapshot).
	Replica replica.Options
	// Sink stores the segments; Recipients, when set, encrypt them.
	Sink       *sinks.Sink
	Recipients []age.Recipient
	Bases      Bases
	// SegmentSeconds and SegmentBytes cut a segment once it is that old
	// (from its first command) or holds that many bytes of commands
	// (defaults 10 s and 8 MiB), at the next command boundary outside a
	// MULTI/EXEC block.
	SegmentSeconds time.Duration
	SegmentBytes   int64
	// Retry is the first wait after a failure, doubled up to a minute
	// (default 1 s).
	Retry time.Duration
	Log   *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Status is what the Archiver is doing, for metrics, the API and /readyz.
type Status struct {
	// Connected: a session is streaming.
	Connected bool
	ReplID    string
	// Received and Durable are the offsets of the last byte received and
	// of the last byte stored in a complete segment (and acknowledged).
	Received, Durable int64
	// LastReceive is when the server last sent anything; LastDurable the
	// receive time of the newest durable command; OldestPending the
	// receive time of the oldest command not yet durable (zero: none).
	LastReceive, LastDurable, OldestPending time.Time
	// Segments and Bytes count what this process stored; Gaps the full
	// resynchronisations that lost stream, Resyncs every base taken.
	Segments, Bytes, Gaps, Resyncs int64
	// LastError is the last session's failure ("" after a good session).
	LastError string
	// Since is when the Archiver started.
	Since time.Time
}

// Archiver follows one server's replication stream. Create it with New;
// Run it once.
type Archiver struct {
	o   Options
	mu  sync.Mutex
	st  Status
	now func() time.Time
}

// New checks o and returns an Archiver.
func New(o Options) (*Archiver, error) {
	if o.Sink == nil || o.Bases == nil {
		return nil, errors.New("archiving: a sink and a base writer are required")
	}
	if o.SegmentSeconds <= 0 {
		o.SegmentSeconds = 10 * time.Second
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 8 << 20
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Replica.RDBOnly = false
	a := &Archiver{o: o, now: o.Now}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Status returns a copy of the current status.
func (a *Archiver) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

func (a *Archiver) update(f func(*Status)) {
	a.mu.Lock()
	f(&a.st)
	a.mu.Unlock()
}

// position is where the stream continues: the replication ID, the offset
// of the next byte wanted, and the database selected at that point.
type position struct {
	replid string
	next   int64
	db     int
	// prev is the replication ID before a failover seen in this session
	// (recorded in the next segment's manifest).
	prev string
}

// Run archives until ctx is cancelled (then it returns nil), reconnecting
// after every failure: with PSYNC from the last durable offset, or, when
// the server cannot continue, from a new base snapshot (a recorded gap).
func (a *Archiver) Run(ctx context.Context) error {
	a.update(func(s *Status) { s.Since = a.now() })
	defer a.update(func(s *Status) { s.Connected = false })
	pos, err := resume(ctx, a.o.Sink)
	if err != nil {
		a.o.Log.Warn("archiving: cannot read where the archive ends; starting from a new base", "err", err)
		pos = position{}
	}
	wait := a.o.Retry
	for ctx.Err() == nil {
		began := a.now()
		err := a.session(ctx, &pos)
		if ctx.Err() != nil {
			return nil
		}
		a.update(func(s *Status) { s.Connected, s.LastError = false, err.Error() })
		if a.now().Sub(began) > time.Minute {
			wait = a.o.Retry
		}
		a.o.Log.Warn("archiving: the stream stopped; reconnecting", "err", err, "retry_in", wait, "durable_offset", pos.next-1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
	return nil
}

// session connects once, takes a base when the server asks for a full
// resynchronisation, and archives the stream until it fails. pos advances
// with every durable segment.
func (a *Archiver) session(ctx context.Context, pos *position) error {
	snap, err := replica.Sync(ctx, a.o.Replica, pos.replid, pos.next)
	if err != nil {
		return err
	}
	defer snap.Close()
	if !snap.Continued {
		gap := ""
		if pos.replid != "" {
			gap = fmt.Sprintf("full resynchronisation: the server could not continue replication ID %s at offset %d (backlog exceeded, a restart, or another history); the writes between the last durable segment and this base are lost", pos.replid, pos.next)
			a.update(func(s *Status) { s.Gaps++ })
			a.o.Log.Warn("archiving: gap in the continuous archive; taking a new base", "replid", pos.replid, "offset", pos.next-1)
		}
		name, err := a.o.Bases.Base(ctx, snap, gap)
		if err != nil {
			return fmt.Errorf("base snapshot: %w", err)
		}
		// The parser may stop before the RDB's last bytes.
		if _, err := io.Copy(io.Discard, snap); err != nil {
			return fmt.Errorf("base snapshot: %w", err)
		}
		*pos = position{replid: snap.ReplID, next: snap.Offset + 1}
		a.update(func(s *Status) { s.Resyncs++ })
		a.o.Log.Info("archiving from a new base", "base", name, "replid", snap.ReplID, "offset", snap.Offset)
	} else {
		if snap.ReplID != pos.replid {
			a.o.Log.Warn("archiving: the server's replication ID changed (a failover); following it", "old", pos.replid, "new", snap.ReplID)
			pos.prev, pos.replid = pos.replid, snap.ReplID
		}
		a.o.Log.Info("archiving: continuing the stream", "replid", pos.replid, "offset", pos.next)
	}
	if err := snap.Ack(pos.next - 1); err != nil {
		return err
	}
	a.update(func(s *Status) {
		s.Connected, s.LastError, s.ReplID = true, "", pos.replid
		s.Received, s.Durable, s.OldestPending = pos.next-1, pos.next-1, time.Time{}
		s.LastReceive = a.now()
	})
	st := &stream{a: a, pos: pos, snap: snap}
	return st.run(ctx)
}

// A batch is commands read together, with their receive time.
type batch struct {
	raw  []byte
	cmds []cmdRef
	t    time.Time
}

// cmdRef is one command of a batch: where it ends in raw, its kind and,
// for SELECT, the database.
type cmdRef struct {
	end  int
	kind byte // 'M' MULTI, 'X' EXEC or DISCARD, 'S' SELECT, 'o' other
	db   int
}

// maxBatch bounds the bytes of one batch (a bigger command makes a batch
// of its own).
const maxBatch = 1 << 20

// stream is one session's archiving of the command stream.
type stream struct {
	a    *Archiver
	pos  *position
	snap *replica.Snapshot

	seg       *segmentWriter
	segOpened time.Time // local clock, for segment_seconds
	written   int64     // offset of the last byte in seg (or durable)
	db        int       // database after the last command written

	// idle is 1 while the reader waits for the server with nothing
	// unread (see cut); batches is its channel.
	idle    atomic.Int32
	batches chan *batch

	inMulti   bool
	pending   []byte // a MULTI block until its EXEC
	pendingN  int
	pendingDB int
}

func (st *stream) run(ctx context.Context) error {
	st.written, st.db = st.pos.next-1, st.pos.db
	br := bufio.NewReaderSize(st.snap.Stream(), 256<<10)
	batches := make(chan *batch, 8)
	st.batches = batches
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				readErr <- fmt.Errorf("archiving: reader panic: %v", r)
			}
		}()
		readErr <- readBatches(br, batches, done, st.a.now, &st.idle)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastAck := st.a.now()
	for {
		select {
		case <-ctx.Done():
			// Keep what was received: a clean stop loses nothing.
			return errors.Join(ctx.Err(), st.cut(context.WithoutCancel(ctx)))
		case err := <-readErr:
			// What is whole is kept; the stream resumes after it.
			if cerr := st.cut(ctx); cerr != nil {
				return errors.Join(err, cerr)
			}
			return err
		case b := <-batches:
			if err := st.process(ctx, b); err != nil {
				return err
			}
			received := st.written + int64(len(st.pending))
			st.a.update(func(s *Status) {
				s.Received, s.LastReceive = received, b.t
				if s.OldestPending.IsZero() && st.seg != nil {
					s.OldestPending = st.seg.hdr.FirstTime
				}
			})
		case <-tick.C:
			now := st.a.now()
			if st.seg != nil && !st.inMulti && now.Sub(st.segOpened) >= st.a.o.SegmentSeconds {
				if err := st.cut(ctx); err != nil {
					return err
				}
			}
			if now.Sub(lastAck) >= time.Second {
				if err := st.snap.Ack(st.pos.next - 1); err != nil {
					return err
				}
				lastAck = now
			}
		}
	}
}

// readBatches reads commands from br until it fails, in batches of what
// arrived together. idle is 1 while it waits with nothing unread: a batch
// read after that gets a later time than any moment idle was seen set.
func readBatches(br *bufio.Reader, out chan<- *batch, done <-chan struct{}, now func() time.Time, idle *atomic.Int32) error {
	for {
		b := &batch{}
		for {
			var name, arg1 []byte
			var err error
			if br.Buffered() == 0 {
				idle.Store(1)
			}
			b.raw, name, arg1, err = readCommand(br, b.raw)
			idle.Store(0)
			if err != nil {
				return err
			}
			c := cmdRef{end: len(b.raw), kind: 'o'}
			switch {
			case equalFold(name, "MULTI"):
				c.kind = 'M'
			case equalFold(name, "EXEC"), equalFold(name, "DISCARD"):
				c.kind = 'X'
			case equalFold(name, "SELECT"):
				db, err := strconv.Atoi(string(arg1))
				if err != nil || db < 0 {
					return fmt.Errorf("%w: SELECT %q", errProtocol, clip(arg1))
				}
				c.kind, c.db = 'S', db
			}
			b.cmds = append(b.cmds, c)
			if br.Buffered() == 0 || len(b.raw) >= maxBatch {
				break
			}
		}
		b.t = now()
		select {
		case out <- b:
		case <-done:
			return nil
		}
	}
}

// equalFold compares an ASCII command name.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// process writes a batch's commands to the open segment (opening one when
// needed), holding a MULTI block back until its EXEC, and cuts the segment
// when it is full.
func (st *stream) process(ctx context.Context, b *batch) error {
	start, runN := 0, 0 // the run of plain commands not yet written
	flush := func(end int) error {
		if runN == 0 {
			return nil
		}
		err := st.seg.add(b.raw[start:end], runN, b.t)
		st.written += int64(end - start)
		runN = 0
		return err
	}
	prev := 0
	for _, c := range b.cmds {
		raw := b.raw[prev:c.end]
		at := prev
		prev = c.end
		if st.inMulti {
			st.pending = append(st.pending, raw...)
			st.pendingN++
			if c.kind == 'S' {
				st.pendingDB = c.db
			}
			if c.kind == 'X' {
				if err := st.open(b.t); err != nil {
					return err
				}
				if err := st.seg.add(st.pending, st.pendingN, b.t); err != nil {
					return err
				}
				st.written += int64(len(st.pending))
				st.db, st.inMulti = st.pendingDB, false
				st.pending, st.pendingN = st.pending[:0], 0
			}
			start = c.end
			if err := st.cutIfFull(ctx); err != nil {
				return err
			}
			continue
		}
		if c.kind == 'M' {
			if err := flush(at); err != nil {
				return err
			}
			st.inMulti, st.pendingDB = true, st.db
			st.pending, st.pendingN = append(st.pending[:0], raw...), 1
			start = c.end
			continue
		}
		if runN == 0 {
			if err := st.open(b.t); err != nil {
				return err
			}
			start = at
		}
		runN++
		if c.kind == 'S' {
			st.db = c.db
		}
		if st.seg.bytes+int64(c.end-start) >= st.a.o.SegmentBytes {
			if err := flush(c.end); err != nil {
				return err
			}
			start = c.end
			if err := st.cut(ctx); err != nil {
				return err
			}
		}
	}
	return flush(prev)
}

// open starts a segment at the current position when none is open.
func (st *stream) open(t time.Time) error {
	if st.seg != nil {
		return nil
	}
	seg, err := openSegment(Header{ReplID: st.pos.replid, FirstOffset: st.written + 1, DB: st.db, FirstTime: t.UTC()}, st.a.o.Recipients)
	if err != nil {
		return err
	}
	st.seg, st.segOpened = seg, st.a.now()
	return nil
}

func (st *stream) cutIfFull(ctx context.Context) error {
	if st.seg != nil && st.seg.bytes >= st.a.o.SegmentBytes {
		return st.cut(ctx)
	}
	return nil
}

// cut stores the open segment (if any) and acknowledges its end.
func (st *stream) cut(ctx context.Context) error {
	seg := st.seg
	if seg == nil || seg.commands == 0 {
		st.seg = nil
		return nil
	}
	st.seg = nil
	tr, err := seg.finish()
	if err != nil {
		return fmt.Errorf("archiving: finish segment: %w", err)
	}
	m := seg.manifest(tr)
	m.LastDB, m.PrevReplID = st.db, st.pos.prev
	// Nothing was received between the last command and now when the
	// reader waits with nothing unread and no batch is queued: the
	// segment then vouches for the time up to now.
	m.Until = m.LastTime
	if claim := st.a.now().UTC(); st.idle.Load() == 1 && len(st.batches) == 0 && claim.After(m.Until) {
		m.Until = claim
	}
	m, err = storeSegment(ctx, st.a.o.Sink, m, seg.out.Bytes())
	if err != nil {
		// The stream resumes from the last durable offset.
		st.written = st.pos.next - 1
		return fmt.Errorf("archiving: store segment: %w", err)
	}
	st.pos.next, st.pos.db, st.pos.prev = m.LastOffset+1, m.LastDB, ""
	st.a.update(func(s *Status) {
		s.Durable, s.LastDurable, s.OldestPending = m.LastOffset, m.LastTime, time.Time{}
		s.Segments++
		s.Bytes += m.Size
	})
	if err := st.snap.Ack(m.LastOffset); err != nil {
		return err
	}
	st.a.o.Log.Debug("segment stored", "segment", m.Name, "commands", m.Commands, "size", m.Size)
	return nil
}
