package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Segments are the second kind of object a sink holds: the pieces of a
// continuous archive (a replication stream), stored under "wal/" below the
// sink's prefix, each with a manifest at ".redback/wal/<name>.json". Like an
// archive, a segment is visible only once complete (its manifest written
// after it, and it removed again when the manifest fails), and never
// overwritten. The package knows a segment only as named bytes and a
// manifest's bytes: what the name and the manifest say is the caller's.

// segmentDir is the folder, under a sink's prefix, of segments.
const segmentDir = "wal/"

// segmentRE is the shape of a segment name: a safe name ending in ".wal",
// optionally with ".gz" and then ".age". Names sort as the caller's
// ordering requires.
var segmentRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_.-]{0,199}\.wal(\.gz)?(\.age)?$`)

// segTmpRE matches fileblob's temporary files beside segments and their
// manifests.
var segTmpRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_.-]{0,199}\.wal(\.gz)?(\.age)?(\.json)?\.[0-9a-f]+\.tmp$`)

// ValidateSegmentName returns nil for a valid segment name, else an error
// wrapping ErrInvalidName.
func ValidateSegmentName(name string) error {
	if !segmentRE.MatchString(name) || strings.Contains(name, "..") {
		return invalidName(name, "not a segment name")
	}
	return nil
}

func (s *Sink) segmentKey(name string) string { return s.prefix + segmentDir + name }
func (s *Sink) segmentManifestKey(name string) string {
	return s.prefix + manifestDir + segmentDir + name + ".json"
}

// SegmentInfo describes one stored segment.
type SegmentInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// SegmentWriter streams one new segment. Like Writer, the segment is
// visible only after Commit; Abort or cancelling the context given to
// CreateSegment leave nothing. It is used by one goroutine.
type SegmentWriter struct{ w *Writer }

// CreateSegment starts the segment name. It returns ErrInvalidName for a
// bad name and ErrExists when one of that name exists.
func (s *Sink) CreateSegment(ctx context.Context, name string) (*SegmentWriter, error) {
	if err := ValidateSegmentName(name); err != nil {
		return nil, err
	}
	w, err := s.newWriter(ctx, name, s.segmentKey(name))
	if err != nil {
		return nil, err
	}
	return &SegmentWriter{w: w}, nil
}

// Write appends p to the segment.
func (sw *SegmentWriter) Write(p []byte) (int, error) { return sw.w.Write(p) }

// Size returns the number of bytes written so far.
func (sw *SegmentWriter) Size() int64 {
	sw.w.mu.Lock()
	defer sw.w.mu.Unlock()
	return sw.w.size
}

// Abort discards the segment; it is idempotent and safe after Commit
// (then it does nothing).
func (sw *SegmentWriter) Abort() { _ = sw.w.Abort() }

// Commit completes the segment and then stores the manifest that
// manifest returns, given the segment's size and SHA-256 (hex). When the
// manifest cannot be stored, the segment is removed again: a segment is
// listed only with its manifest.
func (sw *SegmentWriter) Commit(manifest func(size int64, sha256 string) ([]byte, error)) error {
	w := sw.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.commitLocked(); err != nil {
		return err
	}
	data, err := manifest(w.size, fmt.Sprintf("%x", w.hash.Sum(nil)))
	if err != nil {
		return w.rollback(fmt.Errorf("segment manifest: %w", err))
	}
	if err := w.s.store.put(w.ctx, w.s.segmentManifestKey(w.name), "application/json", data); err != nil {
		return w.rollback(w.s.wrap("write segment manifest", w.name, err))
	}
	return nil
}

// ListSegments returns the segments that have a manifest, sorted by name.
// Other objects under wal/ (temporary files, a segment whose manifest is
// missing) are skipped.
func (s *Sink) ListSegments(ctx context.Context) ([]SegmentInfo, error) {
	objs, err := s.store.list(ctx, s.prefix+segmentDir)
	if err != nil {
		return nil, s.wrap("list segments", "", err)
	}
	mans, err := s.store.list(ctx, s.prefix+manifestDir+segmentDir)
	if err != nil {
		return nil, s.wrap("list segment manifests", "", err)
	}
	have := map[string]bool{}
	for _, m := range mans {
		if n, ok := strings.CutSuffix(strings.TrimPrefix(m.Key, s.prefix+manifestDir+segmentDir), ".json"); ok {
			have[n] = true
		}
	}
	var out []SegmentInfo
	for _, obj := range objs {
		name := strings.TrimPrefix(obj.Key, s.prefix+segmentDir)
		if ValidateSegmentName(name) != nil || !have[name] {
			continue
		}
		out = append(out, SegmentInfo{Name: name, Size: obj.Size, ModTime: obj.ModTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// OpenSegment opens the segment for reading. It returns ErrNotFound when
// there is none of that name. The caller closes the reader.
func (s *Sink) OpenSegment(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ValidateSegmentName(name); err != nil {
		return nil, err
	}
	r, err := s.store.reader(ctx, s.segmentKey(name), 0, -1)
	if err != nil {
		return nil, s.wrap("open segment", name, err)
	}
	return &reader{r: r, s: s, name: name}, nil
}

// SegmentManifest returns the stored manifest of the segment (at most
// 1 MiB), or ErrNotFound.
func (s *Sink) SegmentManifest(ctx context.Context, name string) ([]byte, error) {
	if err := ValidateSegmentName(name); err != nil {
		return nil, err
	}
	r, err := s.store.reader(ctx, s.segmentManifestKey(name), 0, -1)
	if err != nil {
		return nil, s.wrap("read segment manifest", name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, s.wrap("read segment manifest", name, err)
	}
	if len(data) > maxManifestSize {
		return nil, errorf("read segment manifest", name, nil, "manifest too large")
	}
	return data, nil
}

// DeleteSegment removes the segment's manifest (it is no longer listed)
// and then the segment. A segment that is not there is ErrNotFound.
func (s *Sink) DeleteSegment(ctx context.Context, name string) error {
	if err := ValidateSegmentName(name); err != nil {
		return err
	}
	if err := s.store.delete(ctx, s.segmentManifestKey(name)); err != nil {
		if e := s.wrap("delete segment manifest", name, err); !errors.Is(e, ErrNotFound) {
			return e
		}
	}
	if err := s.store.delete(ctx, s.segmentKey(name)); err != nil {
		return s.wrap("delete segment", name, err)
	}
	return nil
}
