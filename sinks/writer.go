package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// errAborted is what a Writer's methods return after Abort.
var errAborted = errors.New("write aborted")

// Writer streams one new archive into a sink. The archive is visible under
// its name only after Commit succeeds; Abort, a failed Commit, or the
// cancellation of the context given to Create leave no object under the name
// (and, on S3, no pending multipart upload). A Writer is used by one
// goroutine; only the cancellation of its context may happen concurrently.
type Writer struct {
	s    *Sink
	name string
	key  string // the object's key
	ni   NameInfo
	ctx  context.Context // from Create
	stop func() bool     // stops the cancellation hook
	up   upload
	hash hash.Hash
	size int64

	mu   sync.Mutex
	done bool  // committed, aborted or failed for good
	err  error // first failure; returned by later calls
}

// Create starts a new archive called name. It returns ErrInvalidName for a
// bad name and ErrExists when an archive of that name already exists; even if
// one appears meanwhile, Commit refuses to overwrite it. The caller must
// finish the Writer with Commit or Abort; cancelling ctx aborts it.
func (s *Sink) Create(ctx context.Context, name string) (*Writer, error) {
	ni, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	w, err := s.newWriter(ctx, name, s.archiveKey(name))
	if err != nil {
		return nil, err
	}
	w.ni = ni
	return w, nil
}

// newWriter starts the object name at key: refused when something is
// there, visible only at commit.
func (s *Sink) newWriter(ctx context.Context, name, key string) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("create", name, err)
	}
	// (On a local folder, anything under the name counts: symbolic links
	// too.)
	exists, err := s.store.exists(ctx, key)
	if err != nil {
		return nil, s.wrap("create", name, err)
	}
	if exists {
		return nil, newError("create", name, ErrExists)
	}
	// The debris of killed backups goes at the next one's start.
	if err := s.store.sweep(ctx); err != nil {
		return nil, s.wrap("create", name, err)
	}
	up, err := s.store.create(ctx, key, s.archiveOpt)
	if err != nil {
		return nil, s.wrap("create", name, err)
	}
	w := &Writer{s: s, name: name, key: key, ctx: ctx, up: up, hash: sha256.New()}
	// Held while w.stop is set: with ctx already done, the hook runs at
	// once, and must find w.stop.
	w.mu.Lock()
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.abortLocked(s.wrap("write", name, context.Cause(ctx)))
	})
	w.mu.Unlock()
	return w, nil
}

// Name returns the archive's name.
func (w *Writer) Name() string { return w.name }

// Write appends p to the archive. After a failed Write the Writer can only
// be aborted.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, errorf("write", w.name, nil, "writer is closed")
	}
	if err := w.ctx.Err(); err != nil {
		e := w.s.wrap("write", w.name, err)
		w.abortLocked(e)
		return 0, e
	}
	n, err := w.up.Write(p)
	w.hash.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		w.err = w.s.wrap("write", w.name, err)
		return n, w.err
	}
	return n, nil
}

// Commit completes the archive, which becomes visible under its name only
// now, then writes its manifest. Name, Size and SHA256 (hex) of m are set by
// the Writer, Compressed and Encrypted from the name; a zero CreatedAt
// becomes the name's time and a zero CompletedAt the current time; the other
// fields are kept. It returns the stored manifest.
//
// It returns ErrExists (and stores nothing) when an archive of that name
// appeared since Create. After any failure to complete the archive nothing
// is stored. If the archive was stored but its manifest could not be, Commit
// returns the manifest and an error; the archive is then listed without a
// manifest, and WriteManifest may be retried.
func (w *Writer) Commit(m Manifest) (Manifest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.commitLocked(); err != nil {
		return Manifest{}, err
	}
	m.Name = w.name
	m.Size = w.size
	m.SHA256 = hex.EncodeToString(w.hash.Sum(nil))
	m.Compressed = w.ni.Compressed
	m.Encrypted = w.ni.Encrypted
	if m.CreatedAt.IsZero() {
		m.CreatedAt = w.ni.Time
	}
	if m.CompletedAt.IsZero() {
		m.CompletedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if err := w.s.putManifest(w.ctx, m); err != nil {
		// Archive and manifest commit as one step for readers: an archive
		// without its manifest would stay listed, unprunable, and be taken
		// for one copied in by hand. Roll the archive back.
		return m, w.rollback(err)
	}
	return m, nil
}

// commitLocked makes the object visible under its key. w.mu is held.
func (w *Writer) commitLocked() error {
	if w.err != nil {
		err := w.err
		w.abortLocked(err)
		return err
	}
	if w.done {
		return errorf("commit", w.name, nil, "writer is closed")
	}
	if err := w.ctx.Err(); err != nil {
		e := w.s.wrap("commit", w.name, err)
		w.abortLocked(e)
		return e
	}
	w.stop()
	w.done = true
	if err := w.up.commit(); err != nil {
		w.err = w.s.wrap("commit", w.name, err)
		return w.err
	}
	return nil
}

// rollback removes the committed object after its manifest failed (err).
func (w *Writer) rollback(err error) error {
	if derr := w.s.store.delete(context.WithoutCancel(w.ctx), w.key); derr != nil {
		return fmt.Errorf("%w (and the object could not be removed: %s)", err, cleanDetail(derr, w.s.store.root()))
	}
	return err
}

// Abort discards the archive: nothing appears under its name. It is safe
// after a failed Write or Commit, and idempotent; it always returns nil.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abortLocked(newError("write", w.name, errAborted))
	return nil
}

// abortLocked discards the upload (the store removes its temporary file or
// aborts its upload) and records reason. w.mu is held.
func (w *Writer) abortLocked(reason error) {
	if w.err == nil {
		w.err = reason
	}
	if w.done {
		return
	}
	w.done = true
	w.stop()
	w.up.abort()
}
