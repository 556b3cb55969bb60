package sinks

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
)

// localDir holds what a local-folder sink adds to fileblob: symlink checks,
// an atomic no-overwrite commit, and fsyncs.
type localDir struct {
	dir string // absolute, cleaned
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
func openFileURL(u *url.URL) (*Sink, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, errors.New("open storage: file URL must not name a host")
	}
	if u.RawQuery != "" {
		return nil, errors.New("open storage: file URL takes no parameters")
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) {
		return nil, errors.New("open storage: file URL needs an absolute path")
	}
	return openLocal(u.Path, "file://"+u.EscapedPath())
}

// openLocal opens (creating with mode 0700 when missing) the folder path.
// Error messages do not contain the path.
func openLocal(path, desc string) (*Sink, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errors.New("open storage folder: cannot resolve path")
	}
	fi, err := os.Stat(abs)
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
	l := &localDir{dir: abs}
	l.removeStale(abs)
	l.removeStale(filepath.Join(abs, strings.TrimSuffix(manifestDir, "/")))
	if !strings.Contains(desc, "://") {
		desc = "folder " + desc
	}
	return &Sink{bucket: b, desc: desc, local: l}, nil
}

// removeStale deletes temporary files left by writers killed more than
// staleAge ago. Errors are ignored: they are only clutter, never listed.
func (l *localDir) removeStale(dir string) {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !tmpRE.MatchString(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleAge {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// path returns the absolute path of rel, a validated name or manifest key
// relative to the folder.
func (l *localDir) path(rel string) string {
	return filepath.Join(l.dir, filepath.FromSlash(rel))
}

// exists reports whether any directory entry (symbolic links included)
// exists under the archive name.
func (l *localDir) exists(name string) (bool, error) {
	_, err := os.Lstat(l.path(name))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// checkRegular returns nil when rel is a regular file (not a symbolic link)
// inside the folder, else an error that reads as "not found" (or the
// file system error).
func (l *localDir) checkRegular(rel string) error {
	fi, err := os.Lstat(l.path(rel))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errNotRegular
	}
	return nil
}

// listedRegular reports whether a listed object is a regular file; fileblob
// lists symbolic links without following them.
func (l *localDir) listedRegular(obj *blob.ListObject) bool {
	var fi os.FileInfo
	if !obj.As(&fi) {
		return false
	}
	return fi.Mode().IsRegular()
}

// beforeRead returns a BeforeRead hook that refuses the read unless the file
// fileblob opened is the regular file that rel names (so a symbolic link
// swapped in after checkRegular is not followed).
func (l *localDir) beforeRead(rel string) func(func(any) bool) error {
	return func(as func(any) bool) error {
		var f *os.File
		if !as(&f) {
			return errNotRegular
		}
		opened, err := f.Stat()
		if err != nil {
			return err
		}
		here, err := os.Lstat(l.path(rel))
		if err != nil {
			return err
		}
		if !here.Mode().IsRegular() || !os.SameFile(opened, here) {
			return errNotRegular
		}
		return nil
	}
}

// rootOK reports whether the folder still exists as a directory (fileblob's
// listing silently skips a missing one).
func (l *localDir) rootOK() bool {
	fi, err := os.Stat(l.dir)
	return err == nil && fi.IsDir()
}

// manifestDirOK reports whether .redback is a real directory (not a
// symbolic link) in the folder.
func (l *localDir) manifestDirOK() bool {
	fi, err := os.Lstat(l.path(strings.TrimSuffix(manifestDir, "/")))
	return err == nil && fi.IsDir()
}

// ensureManifestDir creates .redback (mode 0700) when missing and refuses
// anything there that is not a real directory.
func (l *localDir) ensureManifestDir() error {
	p := l.path(strings.TrimSuffix(manifestDir, "/"))
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
		return errors.New("manifest folder .redback is not a directory")
	}
	return nil
}

// syncDirOf fsyncs the directory that holds rel.
func (l *localDir) syncDirOf(rel string) error {
	return syncPath(filepath.Dir(l.path(rel)))
}

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

// commit completes w's archive: the temporary file is fsynced, then
// hard-linked to the final name (which fails, atomically, when the name
// exists, so nothing is ever overwritten, even by another process), the
// temporary name removed, and the final file and the folder fsynced. Where
// hard links are not supported it falls back to fileblob's check-then-rename,
// serialised within this process.
func (l *localDir) commit(w *Writer) error {
	f := w.lf.f
	if f == nil {
		return errors.New("internal error: temporary file not captured")
	}
	tmp := f.Name()
	final := l.path(w.name)
	// Archives hold every key of the database: readable by their owner only.
	if err := f.Chmod(0o600); err != nil {
		w.cancel()
		_ = w.bw.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		w.cancel()
		_ = w.bw.Close()
		return err
	}
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		// Cancelling makes the driver close and remove the temporary name
		// without renaming it.
		w.cancel()
		_ = w.bw.Close()
		_ = os.Remove(tmp)
	case errors.Is(err, fs.ErrExist):
		w.cancel()
		_ = w.bw.Close()
		return newError("commit", w.name, ErrExists)
	default:
		renameMu.Lock()
		if _, lerr := os.Lstat(final); lerr == nil {
			renameMu.Unlock()
			w.cancel()
			_ = w.bw.Close()
			return newError("commit", w.name, ErrExists)
		}
		err = w.bw.Close()
		renameMu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := l.syncFinal(final); err != nil {
		_ = os.Remove(final)
		return err
	}
	if err := syncPath(l.dir); err != nil {
		_ = os.Remove(final)
		return err
	}
	return nil
}

// syncFinal fsyncs the archive under its final name without following a
// symbolic link.
func (l *localDir) syncFinal(final string) error {
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
