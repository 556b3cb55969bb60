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
// empty, one request, a resumable upload whose last chunk is empty, partial
// or full.
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

// faultProxy stands between the driver and fake-gcs-server and loses the
// answer to the first chunk of every resumable upload: the chunk reaches
// the server, the driver sees a 503. It answers the status query, which the
// fake does not implement, with what it has forwarded.
type faultProxy struct {
	t       *testing.T
	rp      *httputil.ReverseProxy
	mu      sync.Mutex
	stored  map[string]int64 // upload_id -> bytes forwarded to the fake
	queries int
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("upload_id")
	if r.Method != http.MethodPut || id == "" {
		p.rp.ServeHTTP(w, r)
		return
	}
	cr := r.Header.Get("Content-Range")
	p.mu.Lock()
	have, seen := p.stored[id]
	p.mu.Unlock()
	if cr == "bytes */*" {
		p.mu.Lock()
		p.queries++
		p.mu.Unlock()
		if have > 0 {
			w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", have-1))
		}
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	var start, end int64
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/", &start, &end); err != nil {
		p.rp.ServeHTTP(w, r) // the empty last chunk
		return
	}
	if start != have {
		p.t.Errorf("chunk %q sent, the server has %d bytes", cr, have)
	}
	if !seen {
		p.rp.ServeHTTP(&discard{h: http.Header{}}, r)
		p.mu.Lock()
		p.stored[id] = end + 1
		p.mu.Unlock()
		http.Error(w, "injected", http.StatusServiceUnavailable)
		return
	}
	p.rp.ServeHTTP(w, r)
	p.mu.Lock()
	p.stored[id] = end + 1
	p.mu.Unlock()
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// A chunk whose answer is lost is not sent twice: the driver asks what the
// server has and goes on from there, and the object is whole.
func TestChunkResumedAfterLostAnswer(t *testing.T) {
	srv := fakeGCS(t)
	target, _ := url.Parse(srv.URL())
	p := &faultProxy{t: t, rp: httputil.NewSingleHostReverseProxy(target), stored: map[string]int64{}}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)

	b := open(t, ps.URL, chunkAlign)
	ctx := context.Background()
	data := randomBytes(4*chunkAlign + 999)
	if err := write(ctx, b, "resumed", data, nil); err != nil {
		t.Fatalf("write through the faulty proxy: %v", err)
	}
	got, err := b.ReadAll(ctx, "resumed")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d of %d bytes, equal %v, err %v", len(got), len(data), bytes.Equal(got, data), err)
	}
	if p.queries == 0 {
		t.Fatal("the driver never asked for the upload's status")
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
