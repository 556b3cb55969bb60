package sinks

import (
	"context"
	"io"

	"gocloud.dev/blob"
)

// store is where a Sink keeps its objects, and the only place where a local
// folder and a bucket (memory, S3, GCS) differ: every Sink method has one
// code path over these operations. Keys are whole object keys (the sink's
// prefix included). Errors are returned as the storage gave them (gocloud,
// OS or SDK errors, or one of this package's sentinels); the Sink
// translates them at its boundary.
//
// A folder (folder, in local.go) counts as an object only a regular file
// reached through real directories: symbolic links and folders read as
// missing, and are never followed, replaced or removed. It commits by
// hard-linking a temporary file, fsyncs what it writes, and sweeps the
// temporary files of killed writers. A bucket (bucketStore) leaves all of
// that to the service.
type store interface {
	// attributes returns the attributes of the object at key.
	attributes(ctx context.Context, key string) (*blob.Attributes, error)
	// reader opens length bytes (-1: to the end) of the object at key,
	// from offset.
	reader(ctx context.Context, key string, offset, length int64) (*blob.Reader, error)
	// list returns the objects (not the pseudo-folders) directly under
	// dir, which is "" or ends with "/". A dir that holds nothing lists
	// empty; a folder whose root has gone is an error.
	list(ctx context.Context, dir string) ([]*blob.ListObject, error)
	// exists reports whether anything is stored under key (on a folder,
	// any directory entry, symbolic links included).
	exists(ctx context.Context, key string) (bool, error)
	// put stores a small object under key, replacing what is there; it is
	// durable when put returns.
	put(ctx context.Context, key, contentType string, data []byte) error
	// delete removes the object at key.
	delete(ctx context.Context, key string) error
	// sweep removes what killed writers left behind (temporary files,
	// stale multipart uploads). It is called before an archive starts,
	// never fails and returns within a bounded time; a non-nil result is
	// ctx's error, and the archive is then not started.
	sweep(ctx context.Context) error
	// create starts an object at key that becomes visible only when its
	// upload commits, and never replaces one that exists by then.
	// beforeWrite (may be nil) adjusts the backend's write request.
	// Cancelling ctx aborts the upload.
	create(ctx context.Context, key string, beforeWrite func(as func(any) bool) error) (upload, error)
	// root is the text to keep out of error messages (a folder's absolute
	// path), or "".
	root() string
	// close releases the store.
	close() error
	// bucket is the gocloud bucket below the store, for testhook only.
	bucket() *blob.Bucket
}

// upload is an object being written by store.create. Its methods are called
// by one goroutine at a time (the Writer's lock).
type upload interface {
	io.Writer
	// commit makes the object visible under its key, or returns an error
	// (ErrExists when the key was taken meanwhile) and leaves nothing
	// there.
	commit() error
	// abort discards the object; nothing appears under its key.
	abort()
}

// archiveWriterOptions are the write options of every archive upload.
func archiveWriterOptions(beforeWrite func(func(any) bool) error) *blob.WriterOptions {
	return &blob.WriterOptions{
		ContentType: "application/octet-stream",
		IfNotExist:  true,
		// Two parts in flight: uploads hold their parts in memory (8 MiB
		// each on S3), and the archive is produced no faster than that.
		MaxConcurrency: 2,
		BeforeWrite:    beforeWrite,
	}
}

// putObject writes data under key in one writer. beforeClose, when set, runs
// after the data is written and before the writer commits; its failure
// abandons the write.
func putObject(ctx context.Context, b *blob.Bucket, key, contentType string, data []byte, beforeWrite func(func(any) bool) error, beforeClose func() error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType, BeforeWrite: beforeWrite})
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	if beforeClose != nil {
		if err := beforeClose(); err != nil {
			cancel()
			_ = w.Close()
			return err
		}
	}
	return w.Close()
}

// listDir lists the objects (not the pseudo-folders) directly under dir.
func listDir(ctx context.Context, b *blob.Bucket, dir string) ([]*blob.ListObject, error) {
	var objs []*blob.ListObject
	it := b.List(&blob.ListOptions{Prefix: dir, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if !obj.IsDir {
			objs = append(objs, obj)
		}
	}
}

// bucketStore keeps objects in a gocloud bucket: memory, S3 or GCS.
type bucketStore struct {
	b *blob.Bucket
	// shared marks a bucket (mem://name) that outlives the Sink: close
	// leaves it open.
	shared bool
	// abandon, when set, is called after an upload failed or was aborted,
	// with the writer's error, to release what the service may have kept
	// (an S3 multipart upload).
	abandon func(key string, err error)
	// sweeper, when set, is what sweep runs (the sweep of stale S3
	// multipart uploads).
	sweeper func(ctx context.Context)
}

func (s *bucketStore) attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	return s.b.Attributes(ctx, key)
}

func (s *bucketStore) reader(ctx context.Context, key string, offset, length int64) (*blob.Reader, error) {
	return s.b.NewRangeReader(ctx, key, offset, length, nil)
}

func (s *bucketStore) list(ctx context.Context, dir string) ([]*blob.ListObject, error) {
	return listDir(ctx, s.b, dir)
}

func (s *bucketStore) exists(ctx context.Context, key string) (bool, error) {
	return s.b.Exists(ctx, key)
}

func (s *bucketStore) put(ctx context.Context, key, contentType string, data []byte) error {
	return putObject(ctx, s.b, key, contentType, data, nil, nil)
}

func (s *bucketStore) delete(ctx context.Context, key string) error {
	return s.b.Delete(ctx, key)
}

func (s *bucketStore) sweep(ctx context.Context) error {
	if s.sweeper == nil {
		return nil
	}
	s.sweeper(ctx)
	return ctx.Err()
}

func (s *bucketStore) create(ctx context.Context, key string, beforeWrite func(func(any) bool) error) (upload, error) {
	wctx, cancel := context.WithCancel(ctx)
	bw, err := s.b.NewWriter(wctx, key, archiveWriterOptions(beforeWrite))
	if err != nil {
		cancel()
		return nil, err
	}
	return &bucketUpload{s: s, key: key, bw: bw, cancel: cancel}, nil
}

func (s *bucketStore) root() string { return "" }

func (s *bucketStore) close() error {
	if s.shared {
		return nil
	}
	return s.b.Close()
}

func (s *bucketStore) bucket() *blob.Bucket { return s.b }

// bucketUpload is an archive streaming into a bucket: the service makes it
// visible when the writer closes, and drops it when the writer's context is
// cancelled first.
type bucketUpload struct {
	s      *bucketStore
	key    string
	bw     *blob.Writer
	cancel context.CancelFunc
}

func (u *bucketUpload) Write(p []byte) (int, error) { return u.bw.Write(p) }

func (u *bucketUpload) commit() error {
	err := u.bw.Close()
	if err != nil {
		u.abandoned(err)
	}
	u.cancel()
	return err
}

func (u *bucketUpload) abort() {
	u.cancel()
	if err := u.bw.Close(); err != nil {
		u.abandoned(err)
	}
}

func (u *bucketUpload) abandoned(err error) {
	if u.s.abandon != nil {
		u.s.abandon(u.key, err)
	}
}
