package sinks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
)

// errAborted is what a Writer's methods return after Abort.
var errAborted = errors.New("write aborted")

// Writer streams one new archive into a sink. The archive is visible under
// its name only after Commit succeeds; Abort, a failed Commit, or the
// cancellation of the context given to Create leave no object under the name
// (and, on S3, no pending multipart upload). A Writer is used by one
// goroutine; only the cancellation of its context may happen concurrently.
type Writer struct {
	s      *Sink
	name   string
	ni     NameInfo
	ctx    context.Context // from Create
	cancel context.CancelFunc
	stop   func() bool // stops the cancellation hook
	bw     *blob.Writer
	lf     localFile
	hash   hash.Hash
	size   int64

	mu   sync.Mutex
	done bool  // committed, aborted or failed for good
	err  error // first failure; returned by later calls
}

// localFile receives the temporary *os.File of a local-folder write.
type localFile struct{ f *os.File }

// Create starts a new archive called name. It returns ErrInvalidName for a
// bad name and ErrExists when an archive of that name already exists; even if
// one appears meanwhile, Commit refuses to overwrite it. The caller must
// finish the Writer with Commit or Abort; cancelling ctx aborts it.
func (s *Sink) Create(ctx context.Context, name string) (*Writer, error) {
	ni, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.wrap("create", name, err)
	}
	exists, err := s.exists(ctx, name)
	if err != nil {
		return nil, s.wrap("create", name, err)
	}
	if exists {
		return nil, newError("create", name, ErrExists)
	}
	if s.local != nil {
		// The debris of killed backups goes at the next one's start.
		s.local.removeStale(s.local.dir)
		s.local.removeStale(s.local.path(strings.TrimSuffix(manifestDir, "/")))
	}
	if s.sweep != nil {
		s.sweep(ctx)
		if err := ctx.Err(); err != nil {
			return nil, s.wrap("create", name, err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &Writer{s: s, name: name, ni: ni, ctx: ctx, cancel: cancel, hash: sha256.New()}
	opts := &blob.WriterOptions{
		ContentType: "application/octet-stream",
		IfNotExist:  true,
		// Two parts in flight: uploads hold their parts in memory (8 MiB
		// each on S3), and the archive is produced no faster than that.
		MaxConcurrency: 2,
		BeforeWrite:    s.beforeWrite(&w.lf, true),
	}
	bw, err := s.bucket.NewWriter(wctx, s.archiveKey(name), opts)
	if err != nil {
		cancel()
		return nil, s.wrap("create", name, err)
	}
	w.bw = bw
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

// exists reports whether something is stored under the archive's name (for
// a local folder, any directory entry, symbolic links included).
func (s *Sink) exists(ctx context.Context, name string) (bool, error) {
	if s.local != nil {
		return s.local.exists(name)
	}
	return s.bucket.Exists(ctx, s.archiveKey(name))
}

// beforeWrite returns the BeforeWrite hook for a write: it captures the
// temporary file of a local folder in lf and, for an archive, applies the
// backend's archive options.
func (s *Sink) beforeWrite(lf *localFile, archive bool) func(func(any) bool) error {
	return func(as func(any) bool) error {
		if s.local != nil {
			var f *os.File
			if as(&f) {
				lf.f = f
				// fileblob creates it 0666 & umask: archives hold every
				// key, readable by their owner only from the first byte.
				if err := f.Chmod(0o600); err != nil {
					return err
				}
			}
		}
		if archive && s.archiveOpt != nil {
			return s.archiveOpt(as)
		}
		return nil
	}
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
	n, err := w.bw.Write(p)
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
	if w.err != nil {
		err := w.err
		w.abortLocked(err)
		return Manifest{}, err
	}
	if w.done {
		return Manifest{}, errorf("commit", w.name, nil, "writer is closed")
	}
	if err := w.ctx.Err(); err != nil {
		e := w.s.wrap("commit", w.name, err)
		w.abortLocked(e)
		return Manifest{}, e
	}
	w.stop()
	w.done = true
	var err error
	if w.s.local != nil {
		err = w.s.local.commit(w)
	} else {
		err = w.bw.Close()
		if err != nil && w.s.cleanup != nil {
			w.s.cleanup(w.s.archiveKey(w.name), err)
		}
	}
	w.cancel()
	if err != nil {
		w.err = w.s.wrap("commit", w.name, err)
		return Manifest{}, w.err
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
		if derr := w.s.bucket.Delete(context.WithoutCancel(w.ctx), w.s.archiveKey(w.name)); derr != nil {
			return m, fmt.Errorf("%w (and the archive could not be removed: %s)", err, cleanDetail(derr, w.s.root()))
		}
		return m, err
	}
	return m, nil
}

// Abort discards the archive: nothing appears under its name. It is safe
// after a failed Write or Commit, and idempotent; it always returns nil.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abortLocked(newError("write", w.name, errAborted))
	return nil
}

// abortLocked cancels the underlying write (the driver then removes its
// temporary file or aborts its upload) and records reason. w.mu is held.
func (w *Writer) abortLocked(reason error) {
	if w.err == nil {
		w.err = reason
	}
	if w.done {
		return
	}
	w.done = true
	w.stop()
	w.cancel()
	if err := w.bw.Close(); err != nil && w.s.cleanup != nil {
		w.s.cleanup(w.s.archiveKey(w.name), err)
	}
	if w.lf.f != nil {
		// The driver removes it too; this covers a failed close.
		_ = os.Remove(w.lf.f.Name())
	}
}
