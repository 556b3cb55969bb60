package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/redback-dev/redback/sinks"
)

// Latest is the archive reference that names the newest listed archive.
const Latest = "latest"

// archive is one archive to read: stored in the sink (path "") or a local
// file (path set; Info then describes the file, its Name is the file's base
// name and Manifest is nil).
type archive struct {
	sinks.Info
	path string
}

// open returns the archive's bytes. The caller closes them.
func (s *Service) open(ctx context.Context, a archive) (io.ReadCloser, error) {
	if a.path != "" {
		f, err := os.Open(a.path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, pathError(err))
		}
		return f, nil
	}
	rc, _, err := s.sink.Open(ctx, a.Name)
	if err != nil {
		return nil, translate(err)
	}
	return rc, nil
}

// Resolve returns the archive name that ref stands for: the newest
// archive's for Latest, ref itself otherwise (checked). No archive at all
// is ErrNotFound.
func (s *Service) Resolve(ctx context.Context, ref string) (string, error) {
	a, release, err := s.resolve(ctx, ref, false)
	release()
	return a.Name, err
}

// IsPath reports whether ref names a local file rather than an archive in
// storage: it holds a slash (./file.json.gz, /tmp/x/redis_backup_...).
func IsPath(ref string) bool {
	return strings.ContainsRune(ref, '/') || strings.ContainsRune(ref, os.PathSeparator)
}

// resolve finds the archive that ref names: an archive name of the sink,
// Latest (the newest archive listed: listed archives are complete), or,
// when local is set, a path to a local file (IsPath). The file's base
// name must be an archive name, as everywhere: it says which layers the
// content must have. The returned release ends the hold that keeps prune
// and delete off the archive; it must be called.
func (s *Service) resolve(ctx context.Context, ref string, local bool) (archive, func(), error) {
	nothing := func() {}
	switch {
	case ref == Latest:
		infos, err := s.sink.List(ctx)
		if err != nil {
			return archive{}, nothing, fmt.Errorf("list archives: %w", translate(err))
		}
		if len(infos) == 0 {
			return archive{}, nothing, fmt.Errorf("%w: latest: there is no archive in %s", ErrNotFound, s.sink.String())
		}
		newest := newestOf(infos)
		release := s.hold(newest.Name)
		// Stat again under the hold: a prune may have taken it since.
		in, err := s.sink.Stat(ctx, newest.Name)
		if err != nil {
			release()
			return archive{}, nothing, translate(err)
		}
		return archive{Info: in}, release, nil
	case local && IsPath(ref):
		return localArchive(ref)
	}
	if err := sinks.ValidateName(ref); err != nil {
		return archive{}, nothing, translate(err)
	}
	release := s.hold(ref)
	in, err := s.sink.Stat(ctx, ref)
	if err != nil {
		release()
		return archive{}, nothing, translate(err)
	}
	return archive{Info: in}, release, nil
}

// localArchive describes the local file path as an archive.
func localArchive(path string) (archive, func(), error) {
	nothing := func() {}
	base := filepath.Base(path)
	ni, err := sinks.ParseName(base)
	if err != nil {
		return archive{}, nothing, fmt.Errorf("%w: %s: a file to restore keeps its archive name (redis_backup_YYYYMMDD_HHMMSS.json[.gz][.age]): it says which layers the file has", ErrInvalid, pathError(err))
	}
	st, err := os.Stat(path)
	if err != nil {
		return archive{}, nothing, fmt.Errorf("%w: %s", ErrNotFound, pathError(err))
	}
	if !st.Mode().IsRegular() {
		return archive{}, nothing, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, path)
	}
	return archive{path: path, Info: sinks.Info{
		Name: base, Size: st.Size(), Created: ni.Time, ModTime: st.ModTime(),
		Compressed: ni.Compressed, Encrypted: ni.Encrypted,
	}}, nothing, nil
}

// pathError is err's text for a user who gave the path: os errors name it
// already ("open ./x: no such file or directory").
func pathError(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}
