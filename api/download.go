package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/redback-dev/redback/agent"
)

// download streams an archive in constant memory: the whole of it, or one
// byte range ("Range: bytes=a-b", "a-", "-n") for resumed downloads (206;
// 416 when the range lies beyond the end). A request for several ranges,
// or with an If-Range that does not match, gets the whole archive.
func (s *Server) download(w http.ResponseWriter, r *http.Request) error {
	t, name, err := s.archiveCall(w, r, false, nil)
	if err != nil {
		return err
	}
	info, err := t.Service.Stat(r.Context(), name)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`) // a valid name is plain ASCII
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	etag := etagOf(info)
	if etag != "" {
		h.Set("ETag", etag)
	}
	if !info.ModTime.IsZero() {
		h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	}

	off, length, partial, ok := parseRange(r.Header.Get("Range"), info.Size)
	if partial && !ifRangeMatches(r.Header.Get("If-Range"), etag, info) {
		off, length, partial, ok = 0, info.Size, false, true
	}
	if !ok {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		return fmt.Errorf("%w: the range lies outside the archive", errRangeNotSatisfiable)
	}
	var rc io.ReadCloser
	code := http.StatusOK
	if partial {
		rc, err = t.Service.OpenRange(r.Context(), name, off, length)
		code = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+length-1, info.Size))
	} else {
		var opened agent.ArchiveInfo
		rc, opened, err = t.Service.Open(r.Context(), name)
		length = opened.Size
	}
	if err != nil {
		h.Del("Content-Range")
		return err
	}
	defer rc.Close()
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		// Headers are out: the client sees a short body. Log only.
		s.log.Warn("download interrupted", "file", name, "err", err)
	}
	return nil
}

// contentType is the media type of an archive by its layers.
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".age"):
		return "application/octet-stream"
	case strings.HasSuffix(name, ".gz"):
		return "application/gzip"
	}
	return "application/json"
}

// etagOf is the archive's strong ETag: its recorded SHA-256 ("" without).
func etagOf(in agent.ArchiveInfo) string {
	if in.Manifest == nil || in.Manifest.SHA256 == "" {
		return ""
	}
	return `"` + in.Manifest.SHA256 + `"`
}

// ifRangeMatches reports whether a Range may be honoured under If-Range:
// absent, the same strong ETag, or the same Last-Modified date.
func ifRangeMatches(ifRange, etag string, in agent.ArchiveInfo) bool {
	ifRange = strings.TrimSpace(ifRange)
	switch {
	case ifRange == "":
		return true
	case strings.HasPrefix(ifRange, `"`):
		return etag != "" && ifRange == etag
	}
	t, err := http.ParseTime(ifRange)
	return err == nil && !in.ModTime.IsZero() && in.ModTime.UTC().Truncate(1e9).Equal(t.UTC())
}

// parseRange reads a Range header against an archive of size bytes. It
// returns partial=false (the whole archive) for no header, another unit or
// several ranges; ok=false for a single range that cannot be satisfied.
// Malformed headers are ignored, as RFC 9110 allows.
func parseRange(hdr string, size int64) (off, length int64, partial, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(hdr), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, true
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, size, false, true
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, true
	}
	end := size - 1
	if last != "" {
		b, err := strconv.ParseInt(last, 10, 64)
		if err != nil || b < a {
			return 0, size, false, true
		}
		end = min(b, size-1)
	}
	if a >= size {
		return 0, 0, true, false
	}
	return a, end - a + 1, true, true
}
