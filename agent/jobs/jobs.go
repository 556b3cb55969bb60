// Package jobs runs long operations (backups, restores) in the background
// and remembers how they went, for the HTTP API and the scheduler.
//
// A job runs on a context derived from the Manager, never from the request
// or caller that started it: a client that goes away does not stop its
// backup. At most one exclusive job (by default kinds "backup" and
// "restore") runs at a time in each slot (an agent with several Redis
// servers gives each its slot, named after the target); Start refuses a
// second with a *BusyError that names the running one. Finished jobs are kept for a while (Options.Keep)
// and at most Options.MaxFinished of them.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Kinds the agent runs. Other kinds may be used; only those listed in
// Options.Exclusive exclude each other.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
)

// Status is where a job is.
type Status string

// The statuses of a job.
const (
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
)

var (
	// ErrBusy: an exclusive job is already running (see BusyError).
	ErrBusy = errors.New("busy")
	// ErrClosed: the Manager is shutting down and starts no job.
	ErrClosed = errors.New("shutting down: no new jobs")
	// ErrNotFound: no job has that id (or it was forgotten).
	ErrNotFound = errors.New("job not found")
)

// BusyError is returned by Start when an exclusive job runs. It matches
// ErrBusy with errors.Is.
type BusyError struct {
	ID   string // the running job's id
	Kind string // the running job's kind
	Slot string // the slot both jobs want
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("a %s is already running (job %s)", e.Kind, e.ID)
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Progress is how far a job is. Fields are zero until the job reports.
type Progress struct {
	KeysDone  int64 `json:"keys_done"`
	KeysTotal int64 `json:"keys_total"` // -1 or 0 when unknown
	Bytes     int64 `json:"bytes"`
}

// Func is the work of a job. It must return soon after ctx is cancelled.
// report may be called at any time, from any goroutine, until Func returns.
// The result is kept as it is (the API encodes it as JSON).
type Func func(ctx context.Context, report func(Progress)) (result any, err error)

// Snapshot is a job's state at one moment. Result is nil while running.
type Snapshot struct {
	ID   string
	Kind string
	// Slot is the slot the job ran in ("" for Start's).
	Slot string
	// Info is what StartWith was told of the job (empty for Start and
	// StartIn).
	Info       Info
	Status     Status
	Progress   Progress
	Result     any
	Err        error
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
}

// Options tune a Manager. Zero values take the defaults.
type Options struct {
	// Keep is how long a finished job is remembered (default 1h).
	Keep time.Duration
	// MaxFinished bounds the finished jobs remembered (default 100).
	MaxFinished int
	// Exclusive lists the kinds of which one at a time may run (default
	// backup and restore).
	Exclusive []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Manager starts and tracks jobs. Its methods are safe for concurrent use.
type Manager struct {
	opt       Options
	exclusive map[string]bool
	base      context.Context
	cancel    context.CancelFunc

	mu       sync.Mutex
	closed   bool
	jobs     map[string]*job
	finished []string          // ids of finished jobs, oldest first
	running  map[string]string // slot -> id of its running exclusive job
	started  uint64            // jobs started so far
	wg       sync.WaitGroup
}

type job struct {
	snap Snapshot
	seq  uint64 // order of start
	done chan struct{}
}

// New returns a Manager. Call Shutdown when done with it.
func New(opt Options) *Manager {
	if opt.Keep <= 0 {
		opt.Keep = time.Hour
	}
	if opt.MaxFinished <= 0 {
		opt.MaxFinished = 100
	}
	if opt.Exclusive == nil {
		opt.Exclusive = []string{KindBackup, KindRestore}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ex := make(map[string]bool, len(opt.Exclusive))
	for _, k := range opt.Exclusive {
		ex[k] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{opt: opt, exclusive: ex, base: ctx, cancel: cancel, jobs: map[string]*job{}, running: map[string]string{}}
}

// Start runs fn in a new goroutine as a job of kind in the slot "" and
// returns its id at once (see StartIn).
func (m *Manager) Start(kind string, fn Func) (string, error) {
	return m.StartIn("", kind, fn)
}

// StartIn runs fn in a new goroutine as a job of kind in slot and returns
// its id at once. It returns a *BusyError (errors.Is ErrBusy) when kind is
// exclusive and an exclusive job runs in the same slot, and ErrClosed
// after Shutdown began. Jobs of different slots run side by side.
func (m *Manager) StartIn(slot, kind string, fn Func) (string, error) {
	return m.StartWith(slot, kind, Info{}, fn)
}

// Info describes a job for those who list jobs.
type Info struct {
	// By names who started the job (an admin, "scheduler").
	By string
	// Subject is what the job works on (an archive's name), when known.
	Subject string
}

// StartWith is StartIn with a description of the job, which its
// snapshots carry.
func (m *Manager) StartWith(slot, kind string, info Info, fn Func) (string, error) {
	id, err := newID()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	if running, ok := m.running[slot]; ok && m.exclusive[kind] {
		r := m.jobs[running]
		return "", &BusyError{ID: r.snap.ID, Kind: r.snap.Kind, Slot: slot}
	}
	m.forgetLocked()
	j := &job{
		snap: Snapshot{ID: id, Kind: kind, Slot: slot, Info: info, Status: Running, StartedAt: m.opt.Now()},
		done: make(chan struct{}),
	}
	m.started++
	j.seq = m.started
	m.jobs[id] = j
	if m.exclusive[kind] {
		m.running[slot] = id
	}
	m.wg.Add(1)
	go m.run(j, fn)
	return id, nil
}

func (m *Manager) run(j *job, fn Func) {
	defer m.wg.Done()
	report := func(p Progress) {
		m.mu.Lock()
		if j.snap.Status == Running {
			j.snap.Progress = p
		}
		m.mu.Unlock()
	}
	res, err := safeCall(m.base, fn, report)
	m.mu.Lock()
	j.snap.Result = res
	j.snap.Err = err
	j.snap.FinishedAt = m.opt.Now()
	j.snap.Status = Succeeded
	if err != nil {
		j.snap.Status = Failed
	}
	if m.running[j.snap.Slot] == j.snap.ID {
		delete(m.running, j.snap.Slot)
	}
	m.finished = append(m.finished, j.snap.ID)
	m.forgetLocked()
	m.mu.Unlock()
	close(j.done)
}

// safeCall runs fn, turning a panic into an error so that one bad job does
// not take the agent down.
func safeCall(ctx context.Context, fn Func, report func(Progress)) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("job panicked: %v", p)
		}
	}()
	return fn(ctx, report)
}

// forgetLocked drops finished jobs older than Keep, and the oldest beyond
// MaxFinished.
func (m *Manager) forgetLocked() {
	now := m.opt.Now()
	drop := 0
	for drop < len(m.finished) {
		j := m.jobs[m.finished[drop]]
		if len(m.finished)-drop > m.opt.MaxFinished || now.Sub(j.snap.FinishedAt) > m.opt.Keep {
			delete(m.jobs, m.finished[drop])
			drop++
			continue
		}
		break
	}
	m.finished = m.finished[drop:]
}

// Get returns the state of job id, or ErrNotFound.
func (m *Manager) Get(id string) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked()
	j, ok := m.jobs[id]
	if !ok {
		return Snapshot{}, ErrNotFound
	}
	return j.snap, nil
}

// List returns every job remembered (the running ones, and the finished
// ones within Keep, at most MaxFinished), the last started first.
func (m *Manager) List() []Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked()
	all := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		all = append(all, j)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].seq > all[b].seq })
	out := make([]Snapshot, len(all))
	for i, j := range all {
		out[i] = j.snap
	}
	return out
}

// Now is the Manager's clock (Options.Now): the time of its snapshots.
func (m *Manager) Now() time.Time { return m.opt.Now() }

// Running returns the running exclusive job of the slot "", if any.
func (m *Manager) Running() (Snapshot, bool) { return m.RunningIn("") }

// RunningIn returns the running exclusive job of slot, if any.
func (m *Manager) RunningIn(slot string) (Snapshot, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.running[slot]
	if !ok {
		return Snapshot{}, false
	}
	return m.jobs[id].snap, true
}

// Wait blocks until job id finishes and returns its final state, or
// returns ctx's error when ctx ends first (the job goes on).
func (m *Manager) Wait(ctx context.Context, id string) (Snapshot, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return Snapshot{}, ErrNotFound
	}
	select {
	case <-j.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return j.snap, nil
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
}

// Shutdown stops starting jobs and waits for the running ones to finish.
// When ctx ends first it cancels them and waits until their functions have
// returned (a cancelled backup aborts its archive), then returns ctx's
// error.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		m.cancel()
		return nil
	case <-ctx.Done():
		m.cancel()
		<-done
		return ctx.Err()
	}
}

func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("job id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
