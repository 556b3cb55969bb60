package sinks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"
)

// folder is the store of a local-folder sink: fileblob, plus what a folder
// needs beyond it. An object is a regular file reached through real
// directories (symbolic links inside the folder are never followed,
// replaced or removed, and read as missing); an archive commits by a hard
// link that fails when the name exists; what is written is fsynced, file
// and directory; and the temporary files of killed writers are swept.
type folder struct {
	dir string       // absolute, cleaned, symbolic links resolved
	b   *blob.Bucket // fileblob on dir
}

// errNotRegular reports a directory entry that is not a regular file (a
// symbolic link, a folder, ...); it reads as "not found".
var errNotRegular = fmt.Errorf("not a regular file: %w", fs.ErrNotExist)

// renameMu serialises the check-then-rename fallback commit within the
// process (used only where hard links are unsupported).
var renameMu sync.Mutex

// staleAge is how long an abandoned temporary file must have gone unwritten
// before Open or Create removes it. A live backup writes its temporary file
// all along, and one that stalls fails long before (its Redis reads time
// out), so a quarter of an hour without a write means its writer is gone.
const staleAge = 15 * time.Minute

// tmpRE matches the temporary files fileblob creates next to archives and
// manifests (name + "." + hex nanoseconds + ".tmp").
var tmpRE = regexp.MustCompile(`^redis_backup_[0-9]{8}_[0-9]{6}\.json(\.gz)?(\.age)?(\.json)?\.[0-9a-f]+\.tmp$`)

// openFileURL opens file:///abs/path.
func openFileURL(u *url.URL, create bool) (*Sink, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, errors.New("open storage: file URL must not name a host")
	}
	if u.RawQuery != "" {
		return nil, errors.New("open storage: file URL takes no parameters")
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return nil, errors.New("open storage: file URL needs an absolute path")
	}
	return openLocal(u.Path, "file://"+u.EscapedPath(), create)
}

// openLocal opens the folder path, creating it with mode 0700 when missing
// and create is set (else a missing folder is ErrNoStorage). Error messages
// do not contain the path.
func openLocal(dir, desc string, create bool) (*Sink, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, errors.New("open storage folder: cannot resolve path")
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, fmt.Errorf("open storage folder: %w", ErrNoStorage)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("open storage folder: create: %s", cleanDetail(err, abs))
		}
		fi, err = os.Stat(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("open storage folder: %s", cleanDetail(err, abs))
	}
	if !fi.IsDir() {
		return nil, errors.New("open storage folder: not a directory")
	}
	// The folder itself may be a symbolic link (backups -> /mnt/disk/...):
	// resolve it once, here. Links inside it stay refused.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("open storage folder: %s", cleanDetail(err, abs))
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		NoTempDir:   true,
		Metadata:    fileblob.MetadataDontWrite,
		DirFileMode: 0o700,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage folder: %s", cleanDetail(err, abs))
	}
	l := &folder{dir: abs, b: b}
	l.removeStaleAll()
	if !strings.Contains(desc, "://") {
		desc = "folder " + desc
	}
	return &Sink{store: l, desc: desc}, nil
}

// removeStaleAll removes the stale temporary files of the folder and of its
// manifest folder.
func (l *folder) removeStaleAll() {
	l.removeStale(l.dir, tmpRE)
	l.removeStale(l.path(strings.TrimSuffix(manifestDir, "/")), tmpRE)
	l.removeStale(l.path(strings.TrimSuffix(segmentDir, "/")), segTmpRE)
	l.removeStale(l.path(manifestDir+strings.TrimSuffix(segmentDir, "/")), segTmpRE)
}

// removeStale deletes temporary files left by writers killed more than
// staleAge ago. Errors are ignored: they are only clutter, never listed.
func (l *folder) removeStale(dir string, tmp *regexp.Regexp) {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !tmp.MatchString(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// path returns the absolute path of key, a validated archive name or
// manifest key relative to the folder.
func (l *folder) path(key string) string {
	return filepath.Join(l.dir, filepath.FromSlash(key))
}

// realDirs reports whether every folder on the way to rel ("a" or "a/b",
// relative to the folder), rel included, is a directory and not a symbolic
// link.
func (l *folder) realDirs(rel string) bool {
	p := l.dir
	for _, seg := range strings.Split(rel, "/") {
		p = filepath.Join(p, seg)
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// check returns nil when key is a regular file (not a symbolic link) reached
// through real directories, else an error that reads as "not found" (or
// the file system's error about key itself).
func (l *folder) check(key string) error {
	if dir := path.Dir(key); dir != "." && !l.realDirs(dir) {
		return errNotRegular
	}
	fi, err := os.Lstat(l.path(key))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errNotRegular
	}
	return nil
}

func (l *folder) attributes(ctx context.Context, key string) (*blob.Attributes, error) {
	if err := l.check(key); err != nil {
		return nil, err
	}
	return l.b.Attributes(ctx, key)
}

func (l *folder) reader(ctx context.Context, key string, offset, length int64) (*blob.Reader, error) {
	if err := l.check(key); err != nil {
		return nil, err
	}
	return l.b.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: l.beforeRead(key)})
}

// beforeRead returns a BeforeRead hook that refuses the read unless the file
// fileblob opened is the regular file that key names (so a symbolic link
// swapped in after check is not followed).
func (l *folder) beforeRead(key string) func(func(any) bool) error {
	return func(as func(any) bool) error {
		var f *os.File
		if !as(&f) {
			return errNotRegular
		}
		opened, err := f.Stat()
		if err != nil {
			return err
		}
		here, err := os.Lstat(l.path(key))
		if err != nil {
			return err
		}
		if !here.Mode().IsRegular() || !os.SameFile(opened, here) {
			return errNotRegular
		}
		return nil
	}
}

// list lists the regular files directly under dir. The folder itself must
// still be a directory (fileblob's listing silently skips a missing one); a
// sub-folder that is missing or not a real directory holds nothing. A
// listing that fails because a file vanished while it was walked (a writer
// removing its temporary file) is retried.
func (l *folder) list(ctx context.Context, dir string) ([]*blob.ListObject, error) {
	if dir == "" {
		if fi, err := os.Stat(l.dir); err != nil || !fi.IsDir() {
			return nil, errors.New("storage folder is missing or not a directory")
		}
	} else if !l.realDirs(strings.TrimSuffix(dir, "/")) {
		return nil, nil
	}
	const attempts = 5
	for i := 1; ; i++ {
		objs, err := listDir(ctx, l.b, dir)
		if err == nil {
			return regularOnly(objs), nil
		}
		if i == attempts || gcerrors.Code(err) != gcerrors.NotFound {
			return nil, err
		}
	}
}

// regularOnly drops the listed objects that are not regular files; fileblob
// lists symbolic links without following them.
func regularOnly(objs []*blob.ListObject) []*blob.ListObject {
	out := objs[:0]
	for _, obj := range objs {
		var fi os.FileInfo
		if obj.As(&fi) && fi.Mode().IsRegular() {
			out = append(out, obj)
		}
	}
	return out
}

// exists reports whether any directory entry (symbolic links included)
// exists under key.
func (l *folder) exists(_ context.Context, key string) (bool, error) {
	_, err := os.Lstat(l.path(key))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// put writes data through a temporary file that is fsynced, renamed over
// key (replacing a symbolic link, never writing through one), and whose
// directory is fsynced. The folders on the way are created (mode 0700) when
// missing and refused when they are anything but real directories.
func (l *folder) put(ctx context.Context, key, contentType string, data []byte) error {
	if err := l.ensureDirs(key); err != nil {
		return err
	}
	var f *os.File
	err := putObject(ctx, l.b, key, contentType, data, l.capture(&f), func() error {
		if f == nil {
			return nil
		}
		return f.Sync()
	})
	if err != nil {
		return err
	}
	return syncPath(filepath.Dir(l.path(key)))
}

// ensureDirs creates the missing folders on the way to key (mode 0700) and
// refuses anything there that is not a real directory. The only such
// folders are a sink's manifest and segment folders.
func (l *folder) ensureDirs(key string) error {
	dir := path.Dir(key)
	if dir == "." {
		return nil
	}
	rel := ""
	for _, seg := range strings.Split(dir, "/") {
		rel = path.Join(rel, seg)
		p := l.path(rel)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			fi, err = os.Lstat(p)
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("manifest folder %s is not a directory", rel)
		}
	}
	return nil
}

// capture returns a BeforeWrite hook that keeps fileblob's temporary file in
// *f and makes it readable by its owner only (fileblob creates it 0666 &
// umask; archives hold every key, private from the first byte).
func (l *folder) capture(f **os.File) func(func(any) bool) error {
	return func(as func(any) bool) error {
		if as(f) {
			return (*f).Chmod(0o600)
		}
		return nil
	}
}

func (l *folder) delete(ctx context.Context, key string) error {
	if err := l.check(key); err != nil {
		return err
	}
	return l.b.Delete(ctx, key)
}

func (l *folder) sweep(context.Context) error {
	// The debris of killed backups goes at the next one's start.
	l.removeStaleAll()
	return nil
}

func (l *folder) create(ctx context.Context, key string, beforeWrite func(func(any) bool) error) (upload, error) {
	if err := l.ensureDirs(key); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	u := &folderUpload{l: l, key: key, cancel: cancel}
	capture := l.capture(&u.f)
	hook := func(as func(any) bool) error {
		if err := capture(as); err != nil {
			return err
		}
		if beforeWrite != nil {
			return beforeWrite(as)
		}
		return nil
	}
	bw, err := l.b.NewWriter(wctx, key, archiveWriterOptions(hook))
	if err != nil {
		cancel()
		return nil, err
	}
	u.bw = bw
	return u, nil
}

func (l *folder) root() string { return l.dir }

func (l *folder) close() error { return l.b.Close() }

func (l *folder) bucket() *blob.Bucket { return l.b }

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// folderUpload is an archive being written into a temporary file next to
// its final name.
type folderUpload struct {
	l      *folder
	key    string
	bw     *blob.Writer
	f      *os.File // fileblob's temporary file, captured by BeforeWrite
	cancel context.CancelFunc
}

func (u *folderUpload) Write(p []byte) (int, error) { return u.bw.Write(p) }

// commit completes the archive: the temporary file is fsynced, then
// hard-linked to the final name (which fails, atomically, when the name
// exists, so nothing is ever overwritten, even by another process), the
// temporary name removed, and the final file and the folder fsynced. Where
// hard links are not supported it falls back to fileblob's check-then-rename,
// serialised within this process.
func (u *folderUpload) commit() error {
	defer u.cancel()
	f := u.f
	if f == nil {
		return errors.New("internal error: temporary file not captured")
	}
	tmp := f.Name()
	final := u.l.path(u.key)
	// Archives hold every key of the database: readable by their owner only.
	if err := f.Chmod(0o600); err != nil {
		u.cancel()
		_ = u.bw.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		u.cancel()
		_ = u.bw.Close()
		return err
	}
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		// Cancelling makes the driver close and remove the temporary name
		// without renaming it.
		u.cancel()
		_ = u.bw.Close()
		_ = os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		u.cancel()
		_ = u.bw.Close()
		return ErrExists
	default:
		renameMu.Lock()
		if _, lerr := os.Lstat(final); lerr == nil {
			renameMu.Unlock()
			u.cancel()
			_ = u.bw.Close()
			return ErrExists
		}
		err = u.bw.Close()
		renameMu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := syncFinal(final); err != nil {
		_ = os.Remove(final)
		return err
	}
	if err := syncPath(filepath.Dir(final)); err != nil {
		_ = os.Remove(final)
		return err
	}
	return nil
}

// abort cancels the write (fileblob then removes its temporary file) and
// removes the temporary file itself too, which covers a failed close.
func (u *folderUpload) abort() {
	u.cancel()
	_ = u.bw.Close()
	if u.f != nil {
		_ = os.Remove(u.f.Name())
	}
}

// syncFinal fsyncs the archive under its final name without following a
// symbolic link.
func syncFinal(final string) error {
	f, err := os.OpenFile(final, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}
