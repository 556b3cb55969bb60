package gcsjson

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

const testBucket = "bkt"

// fakeGCS starts fake-gcs-server in process on a real TCP port.
func fakeGCS(t *testing.T) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	return srv
}

func open(t *testing.T, endpoint string, chunk int) *blob.Bucket {
	t.Helper()
	b, err := OpenBucket(testBucket, Options{
		Endpoint: endpoint, Client: &http.Client{}, ChunkSize: chunk, RetryDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// write stores data under key in writes of odd sizes.
func write(ctx context.Context, b *blob.Bucket, key string, data []byte, opts *blob.WriterOptions) error {
	w, err := b.NewWriter(ctx, key, opts)
	if err != nil {
		return err
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 100_003)
		if _, err := w.Write(p[:n]); err != nil {
			_ = w.Close()
			return err
		}
		p = p[n:]
	}
	return w.Close()
}

// Objects of every size around the chunk size come back byte for byte:
// empty, one request, and resumable uploads whose last chunk is partial or
// full.
func TestRoundTripSizes(t *testing.T) {
	srv := fakeGCS(t)
	b := open(t, srv.URL(), chunkAlign)
	ctx := context.Background()
	for _, n := range []int{0, 1, chunkAlign - 1, chunkAlign, chunkAlign + 1, 3 * chunkAlign, 5*chunkAlign + 12345} {
		key := fmt.Sprintf("dir/obj-%d", n)
		data := randomBytes(n)
		if err := write(ctx, b, key, data, &blob.WriterOptions{ContentType: "application/x-test", IfNotExist: true}); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		got, err := b.ReadAll(ctx, key)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes back: %d bytes, equal %v, err %v", n, len(got), bytes.Equal(got, data), err)
		}
		a, err := b.Attributes(ctx, key)
		if err != nil || a.Size != int64(n) || a.ContentType != "application/x-test" || a.ModTime.IsZero() {
			t.Fatalf("attributes of %d bytes: %+v, %v", n, a, err)
		}
	}
}

// A create-only write of an existing name fails with FailedPrecondition and
// leaves the first object, both for a small and for a chunked object.
func TestIfNotExist(t *testing.T) {
	srv := fakeGCS(t)
	b := open(t, srv.URL(), chunkAlign)
	ctx := context.Background()
	for _, n := range []int{10, 3*chunkAlign + 1} {
		key := fmt.Sprintf("once-%d", n)
		first := randomBytes(n)
		if err := write(ctx, b, key, first, &blob.WriterOptions{IfNotExist: true}); err != nil {
			t.Fatal(err)
		}
		err := write(ctx, b, key, bytes.Repeat([]byte{'x'}, n), &blob.WriterOptions{IfNotExist: true})
		if gcerrors.Code(err) != gcerrors.FailedPrecondition {
			t.Fatalf("second create of %d bytes: %v (code %v), want FailedPrecondition", n, err, gcerrors.Code(err))
		}
		if got, _ := b.ReadAll(ctx, key); !bytes.Equal(got, first) {
			t.Fatalf("the first object of %d bytes was replaced", n)
		}
	}
}

func TestRangesAndErrors(t *testing.T) {
	srv := fakeGCS(t)
	b := open(t, srv.URL(), 0)
	ctx := context.Background()
	data := randomBytes(10_000)
	if err := b.WriteAll(ctx, "r", data, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, n int64 }{{0, 1}, {5, 100}, {9_999, -1}, {9_000, 5_000}, {0, -1}, {10_000, -1}, {100, 0}} {
		r, err := b.NewRangeReader(ctx, "r", c.off, c.n, nil)
		if err != nil {
			t.Fatalf("range %d+%d: %v", c.off, c.n, err)
		}
		got, err := io.ReadAll(r)
		_ = r.Close()
		end := int64(len(data))
		if c.n >= 0 {
			end = min(end, c.off+c.n)
		}
		if err != nil || !bytes.Equal(got, data[c.off:end]) {
			t.Fatalf("range %d+%d: %d bytes, err %v", c.off, c.n, len(got), err)
		}
		if r.Size() != int64(len(data)) {
			t.Fatalf("range %d+%d: size %d", c.off, c.n, r.Size())
		}
	}
	if _, err := b.NewReader(ctx, "missing", nil); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("read of a missing object: %v", err)
	}
	if _, err := b.Attributes(ctx, "missing"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("attributes of a missing object: %v", err)
	}
	if err := b.Delete(ctx, "missing"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("delete of a missing object: %v", err)
	}
	if err := b.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Exists(ctx, "r"); ok || err != nil {
		t.Fatalf("deleted object still exists: %v %v", ok, err)
	}
}

// Listing pages through objects in order and folds "directories" with a
// delimiter.
func TestList(t *testing.T) {
	srv := fakeGCS(t)
	b := open(t, srv.URL(), 0)
	ctx := context.Background()
	keys := []string{"p/a", "p/b/1", "p/b/2", "p/c", "p/d", "q/x", "p/e"}
	for _, k := range keys {
		if err := b.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	opts := &blob.ListOptions{Prefix: "p/", Delimiter: "/"}
	token := blob.FirstPageToken
	pages := 0
	for {
		objs, next, err := b.ListPage(ctx, token, 2, opts)
		if err != nil {
			t.Fatal(err)
		}
		// (fake-gcs-server does not count prefixes against maxResults,
		// as GCS does, so a page may hold more than 2.)
		pages++
		for _, o := range objs {
			s := o.Key
			if o.IsDir {
				s += "(dir)"
			} else if o.Size != int64(len(o.Key)) {
				t.Fatalf("%s: size %d", o.Key, o.Size)
			}
			got = append(got, s)
		}
		if next == nil {
			break
		}
		token = next
	}
	if want := "p/a p/b/(dir) p/c p/d p/e"; strings.Join(got, " ") != want || pages < 2 {
		t.Fatalf("listed %q in %d pages, want %q in several", strings.Join(got, " "), pages, want)
	}
}

// fault is what faultProxy does to the first request of its kind.
type fault int

const (
	loseFirstAnswer    fault = iota // a chunk reaches the server, its answer is a 503
	keepHalfFirstChunk              // the server keeps only the first half of a chunk
	loseFinalAnswer                 // the last chunk completes the object, its answer is a 503
	loseOneShotAnswer               // a one-request upload lands, its answer is a 503
	dropConnection                  // a chunk's connection is closed without an answer
)

// faultProxy stands between the driver and fake-gcs-server and injects one
// fault per upload. It answers the status query of resumable uploads
// (which the fake does not implement) from what it has forwarded.
type faultProxy struct {
	t     *testing.T
	fault fault
	rp    *httputil.ReverseProxy

	mu       sync.Mutex
	stored   map[string]int64 // upload_id -> bytes forwarded to the fake
	complete map[string]bool  // upload_id -> the fake completed the object
	faulted  map[string]bool  // upload_id (or "oneshot") -> the fault was injected
	queries  int
	ids      []string // the session URIs seen (to look for in errors)
}

func newFaultProxy(t *testing.T, srv *fakestorage.Server, f fault) *httptest.Server {
	target, _ := url.Parse(srv.URL())
	p := &faultProxy{t: t, fault: f, rp: httputil.NewSingleHostReverseProxy(target),
		stored: map[string]int64{}, complete: map[string]bool{}, faulted: map[string]bool{}}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	return ps
}

// once reports whether the fault for id is still to be injected, and
// records that it now is.
func (p *faultProxy) once(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faulted[id] {
		return false
	}
	p.faulted[id] = true
	return true
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if p.fault == loseOneShotAnswer && r.Method == http.MethodPost && q.Get("uploadType") == "multipart" && p.once("oneshot") {
		p.rp.ServeHTTP(&discard{h: http.Header{}}, r)
		http.Error(w, "injected", http.StatusServiceUnavailable)
		return
	}
	id := q.Get("upload_id")
	if r.Method != http.MethodPut || id == "" {
		p.rp.ServeHTTP(w, r)
		return
	}
	cr := r.Header.Get("Content-Range")
	p.mu.Lock()
	p.ids = append(p.ids, id)
	have, complete := p.stored[id], p.complete[id]
	p.mu.Unlock()
	if strings.HasPrefix(cr, "bytes */") && r.ContentLength == 0 {
		p.mu.Lock()
		p.queries++
		p.mu.Unlock()
		if complete {
			w.WriteHeader(http.StatusOK)
			return
		}
		if cr == "bytes */*" || strconv.FormatInt(have, 10) != strings.TrimPrefix(cr, "bytes */") {
			if have > 0 {
				w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", have-1))
			}
			w.WriteHeader(http.StatusPermanentRedirect)
			return
		}
		p.forward(w, r, id, have, true) // the empty last chunk
		return
	}
	var start, end int64
	var size string
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%s", &start, &end, &size); err != nil {
		p.t.Errorf("Content-Range %q", cr)
		http.Error(w, "bad range", http.StatusBadRequest)
		return
	}
	if start != have {
		p.t.Errorf("chunk %q sent, the server has %d bytes", cr, have)
	}
	last := size != "*"
	switch {
	case p.fault == loseFirstAnswer && p.once(id):
		p.forward(&discard{h: http.Header{}}, r, id, end+1, last)
		http.Error(w, "injected", http.StatusServiceUnavailable)
	case p.fault == keepHalfFirstChunk && !last && end-start+1 >= 2*chunkAlign && p.once(id):
		half := (end - start + 1) / 2
		body, _ := io.ReadAll(r.Body)
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body[:half]))
		r2.ContentLength = half
		r2.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", start, start+half-1))
		p.forward(&discard{h: http.Header{}}, r2, id, start+half, false)
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", start+half-1))
		w.WriteHeader(http.StatusPermanentRedirect)
	case p.fault == loseFinalAnswer && last && p.once(id):
		p.forward(&discard{h: http.Header{}}, r, id, end+1, true)
		http.Error(w, "injected", http.StatusServiceUnavailable)
	case p.fault == dropConnection && p.once(id):
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	default:
		p.forward(w, r, id, end+1, last)
	}
}

// forward sends r to the fake and records what it then holds.
func (p *faultProxy) forward(w http.ResponseWriter, r *http.Request, id string, holds int64, last bool) {
	p.rp.ServeHTTP(w, r)
	p.mu.Lock()
	p.stored[id] = holds
	p.complete[id] = last
	p.mu.Unlock()
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// Each injected fault is survived: the object is whole, and the driver
// asked for the upload's status where it had to.
func TestUploadFaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		fault   fault
		size    int
		chunk   int
		opts    *blob.WriterOptions
		queries bool
	}{
		{"lost answer to a chunk", loseFirstAnswer, 4*chunkAlign + 999, chunkAlign, nil, true},
		{"half a chunk kept", keepHalfFirstChunk, 5*2*chunkAlign + 7, 2 * chunkAlign, nil, false},
		{"lost answer to the last chunk", loseFinalAnswer, 3*chunkAlign + 5, chunkAlign, &blob.WriterOptions{IfNotExist: true}, true},
		{"lost answer to a create-only one-request upload", loseOneShotAnswer, 1000, chunkAlign, &blob.WriterOptions{IfNotExist: true}, false},
		{"dropped connection", dropConnection, 3 * chunkAlign, chunkAlign, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeGCS(t)
			ps := newFaultProxy(t, srv, c.fault)
			p := ps.Config.Handler.(*faultProxy)
			b := open(t, ps.URL, c.chunk)
			ctx := context.Background()
			data := randomBytes(c.size)
			if err := write(ctx, b, "obj", data, c.opts); err != nil {
				t.Fatalf("write through the proxy: %v", err)
			}
			got, err := b.ReadAll(ctx, "obj")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d of %d bytes, equal %v, err %v", len(got), len(data), bytes.Equal(got, data), err)
			}
			p.mu.Lock()
			queries, faulted := p.queries, len(p.faulted)
			p.mu.Unlock()
			if faulted == 0 {
				t.Fatal("no fault was injected")
			}
			if c.queries && queries == 0 {
				t.Fatal("the driver never asked for the upload's status")
			}
		})
	}
}

// A failed upload's error does not carry the session URI (whoever has it
// can write to the upload).
func TestUploadErrorHidesSession(t *testing.T) {
	srv := fakeGCS(t)
	ps := newFaultProxy(t, srv, dropConnection)
	p := ps.Config.Handler.(*faultProxy)
	b, err := OpenBucket(testBucket, Options{Endpoint: ps.URL, Client: &http.Client{}, ChunkSize: chunkAlign, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = write(context.Background(), b, "obj", randomBytes(3*chunkAlign), nil)
	if err == nil {
		t.Fatal("the write succeeded without retries through a dropped connection")
	}
	p.mu.Lock()
	ids := p.ids
	p.mu.Unlock()
	if len(ids) == 0 {
		t.Fatal("no upload session was seen")
	}
	if strings.Contains(err.Error(), ids[0]) || strings.Contains(err.Error(), "upload_id") {
		t.Fatalf("error carries the session: %v", err)
	}
	if ok, _ := b.Exists(context.Background(), "obj"); ok {
		t.Fatal("a failed upload left an object")
	}
}

// A cancelled write commits nothing.
func TestCancelledWriteLeavesNothing(t *testing.T) {
	srv := fakeGCS(t)
	b := open(t, srv.URL(), chunkAlign)
	for _, n := range []int{10, 3 * chunkAlign} {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := b.NewWriter(ctx, "cancelled", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randomBytes(n)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Close(); !errors.Is(err, context.Canceled) && gcerrors.Code(err) != gcerrors.Canceled {
			t.Fatalf("close after cancel (%d bytes): %v", n, err)
		}
		if ok, _ := b.Exists(context.Background(), "cancelled"); ok {
			t.Fatalf("a cancelled write of %d bytes left an object", n)
		}
	}
}
