package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestDownloadRanges(t *testing.T) {
	h := newHarness(t)
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	const name = "redis_backup_20240102_030405.json.gz"
	h.writeFile(name, data)
	tok := h.login(secretAdmin)
	cases := []struct {
		rng          string
		code         int
		contentRange string
		body         []byte
	}{
		{"", 200, "", data},
		{"bytes=0-9", 206, "bytes 0-9/1000", data[:10]},
		{"bytes=990-", 206, "bytes 990-999/1000", data[990:]},
		{"bytes=-10", 206, "bytes 990-999/1000", data[990:]},
		{"bytes=-5000", 206, "bytes 0-999/1000", data},
		{"bytes=995-2000", 206, "bytes 995-999/1000", data[995:]},
		{"bytes=500-500", 206, "bytes 500-500/1000", data[500:501]},
		{"bytes=1000-", 416, "bytes */1000", nil},
		{"bytes=5000-6000", 416, "bytes */1000", nil},
		{"bytes=-0", 416, "bytes */1000", nil},
		{"bytes=0-1,5-6", 200, "", data}, // several ranges: the whole
		{"bytes=9-3", 200, "", data},     // malformed: ignored
		{"bytes=abc", 200, "", data},
		{"items=0-1", 200, "", data},
	}
	for _, c := range cases {
		hdr := auth(tok)
		if c.rng != "" {
			hdr = with(hdr, "Range", c.rng)
		}
		res := h.do("GET", "/api/backup/download/"+name, "", hdr)
		if res.code != c.code || res.header.Get("Content-Range") != c.contentRange {
			t.Errorf("Range %q: %d %q, want %d %q (%s)", c.rng, res.code, res.header.Get("Content-Range"), c.code, c.contentRange, truncate(string(res.body), 100))
			continue
		}
		if c.code == 416 {
			if res.json()["success"] != false {
				t.Errorf("Range %q: 416 body %s", c.rng, res.body)
			}
			continue
		}
		if !bytes.Equal(res.body, c.body) || res.header.Get("Content-Length") != strconv.Itoa(len(c.body)) {
			t.Errorf("Range %q: %d bytes, Content-Length %s, want %d", c.rng, len(res.body), res.header.Get("Content-Length"), len(c.body))
		}
		if res.header.Get("Accept-Ranges") != "bytes" || res.header.Get("Content-Disposition") != `attachment; filename="`+name+`"` {
			t.Errorf("Range %q: headers %v", c.rng, res.header)
		}
	}
	// HEAD: the headers only.
	res := h.do("HEAD", "/api/backup/download/"+name, "", auth(tok))
	if res.code != 200 || len(res.body) != 0 || res.header.Get("Content-Length") != "1000" {
		t.Fatalf("HEAD: %d %d %v", res.code, len(res.body), res.header)
	}
	// A missing archive: 404, JSON.
	res = h.do("GET", "/api/backup/download/redis_backup_20240102_030406.json.gz", "", auth(tok))
	if res.code != 404 || res.json()["success"] != false {
		t.Fatalf("missing archive: %d %s", res.code, res.body)
	}
}

func TestDownloadIfRange(t *testing.T) {
	h := newHarness(t)
	h.fill(50)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	res := h.do("GET", "/api/backup/download/"+name, "", auth(tok))
	etag := res.header.Get("ETag")
	if res.code != 200 || len(etag) != 66 {
		t.Fatalf("no strong ETag from the manifest: %d %q", res.code, etag)
	}
	res = h.do("GET", "/api/backup/download/"+name, "", with(with(auth(tok), "Range", "bytes=0-3"), "If-Range", etag))
	if res.code != 206 || len(res.body) != 4 {
		t.Fatalf("matching If-Range: %d %d", res.code, len(res.body))
	}
	res = h.do("GET", "/api/backup/download/"+name, "", with(with(auth(tok), "Range", "bytes=0-3"), "If-Range", `"other"`))
	if res.code != 200 || res.header.Get("Content-Range") != "" {
		t.Fatalf("stale If-Range: %d %v", res.code, res.header)
	}
}

// TestDownloadLargeArchiveInConstantMemory streams a 200 MB archive (a
// sparse file with a valid name) and checks that the heap never grows by
// more than a few megabytes.
func TestDownloadLargeArchiveInConstantMemory(t *testing.T) {
	h := newHarness(t)
	const size = 200 << 20
	const name = "redis_backup_20240103_000000.json.gz"
	p := filepath.Join(h.storage, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	tok := h.login(secretAdmin)
	srv := httptest.NewServer(h.api.Handler())
	defer srv.Close()

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()

	get := func(rng string) (int, int64, http.Header) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/backup/download/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, n, resp.Header
	}
	code, n, hdr := get("")
	if code != 200 || n != size || hdr.Get("Content-Length") != strconv.Itoa(size) {
		t.Fatalf("download: %d, %d bytes, Content-Length %s", code, n, hdr.Get("Content-Length"))
	}
	// Resume from the middle.
	code, n, hdr = get("bytes=104857600-")
	if code != 206 || n != size-100<<20 || hdr.Get("Content-Range") != "bytes 104857600-209715199/209715200" {
		t.Fatalf("resumed download: %d, %d bytes, %s", code, n, hdr.Get("Content-Range"))
	}
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base)
	t.Logf("heap: base %d MiB, peak growth %d KiB while streaming %d MiB twice", base>>20, growth>>10, size>>20)
	if growth > 16<<20 {
		t.Fatalf("the heap grew by %d MiB while streaming a %d MiB archive", growth>>20, size>>20)
	}
}
