package gcsjson

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/drivertest"
)

// TestDriverConformance runs go-cloud's own conformance suite for blob
// drivers (gocloud.dev/blob/drivertest) against the driver, over
// fake-gcs-server in process on a real TCP port, with the fake's object
// listing corrected to what GCS does (see listingFront).
//
// It runs twice: with the default chunk size, where every object of the
// suite goes in one request, and with a chunk of a few bytes, where every
// object but the smallest goes through a resumable upload of many chunks
// (GCS itself would refuse chunks that are not multiples of 256 KiB; the
// fake takes them, which is what lets the suite's small objects exercise
// that path).
//
// What the suite skips, and why:
//   - TestSignedURL: the driver has no signed URLs (SignedURL answers
//     Unimplemented, HTTPClient is nil); the suite skips it itself, and
//     TestKeys and TestAs then skip their signed-URL steps.
//   - TestAs: the driver exposes no driver-specific types, so no AsTest is
//     added to the suite's own (which checks that every As refuses nil).
//
// Nothing else is skipped: SupportsCopy and SupportsNonSlashDelimiters are
// both true.
func TestDriverConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		chunk int
	}{
		{"OneRequest", 0},
		{"Resumable", 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sessions atomic.Int64
			drivertest.RunConformanceTests(t, func(_ context.Context, t *testing.T) (drivertest.Harness, error) {
				return newHarness(t, c.chunk, &sessions)
			}, nil)
			if n := sessions.Load(); (c.chunk > 0) != (n > 0) {
				t.Errorf("%d resumable uploads started with a chunk size of %d", n, c.chunk)
			}
		})
	}
}

// harness serves one test of the suite: a fake-gcs-server of its own (so an
// empty bucket), behind listingFront.
type harness struct {
	srv   *fakestorage.Server
	front *httptest.Server
	chunk int
}

func newHarness(t *testing.T, chunk int, sessions *atomic.Int64) (drivertest.Harness, error) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		return nil, err
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	target, _ := url.Parse(srv.URL())
	front := httptest.NewServer(&listingFront{t: t, fake: srv.URL(), rp: httputil.NewSingleHostReverseProxy(target), sessions: sessions})
	return &harness{srv: srv, front: front, chunk: chunk}, nil
}

func (h *harness) driver(bucket string) (driver.Bucket, error) {
	b, err := newBucket(bucket, Options{Endpoint: h.front.URL, Client: &http.Client{}, RetryDelay: time.Millisecond})
	if err != nil {
		return nil, err
	}
	if h.chunk > 0 {
		b.chunk = h.chunk // below GCS's 256 KiB granularity: see TestDriverConformance
	}
	return b, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Bucket, error) {
	return h.driver(testBucket)
}

func (h *harness) MakeDriverForNonexistentBucket(context.Context) (driver.Bucket, error) {
	return h.driver("bucket-does-not-exist")
}

// HTTPClient is nil: the driver makes no signed URLs.
func (h *harness) HTTPClient() *http.Client { return nil }

func (h *harness) SupportsCopy() bool { return true }

// SupportsNonSlashDelimiters: GCS takes a delimiter of any length.
func (h *harness) SupportsNonSlashDelimiters() bool { return true }

func (h *harness) Close() {
	h.front.Close()
	h.srv.Stop()
}

// listingFront passes every request to fake-gcs-server but the JSON API's
// objects.list, which it answers as GCS documents it (storage/docs/json_api/
// v1/objects/list) from the fake's complete listing under the prefix, where
// the fake (v1.56.1) is wrong in two ways that the suite finds:
//
//   - maxResults bounds "the combined number of entries in items[] and
//     prefixes[]": the fake bounds the items alone and sends every prefix
//     from the page's start on each page;
//   - a prefix is the name "up to and including the requested delimiter":
//     the fake keeps only the delimiter's first byte.
//
// Entries are items and prefixes in one lexicographic run; a page holds at
// most maxResults of them (1000 when unset, as GCS caps it), and its token
// names the last entry, the next page starting after it.
type listingFront struct {
	t        *testing.T
	fake     string // the fake's base URL
	rp       *httputil.ReverseProxy
	sessions *atomic.Int64 // resumable uploads started
}

var listPath = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/?$`)

// listParams are the query parameters of objects.list that the front
// implements: all that the driver sends.
var listParams = map[string]bool{"prefix": true, "delimiter": true, "maxResults": true, "pageToken": true}

func (f *listingFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "resumable" {
		f.sessions.Add(1)
	}
	m := listPath.FindStringSubmatch(r.URL.EscapedPath())
	if r.Method != http.MethodGet || m == nil {
		f.rp.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	for k := range q {
		if !listParams[k] {
			f.t.Errorf("objects.list with parameter %q, which the test's front does not implement", k)
			http.Error(w, "unimplemented parameter", http.StatusNotImplemented)
			return
		}
	}
	prefix, delim, token := q.Get("prefix"), q.Get("delimiter"), q.Get("pageToken")
	max := 1000
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			http.Error(w, `{"error":{"code":400,"message":"invalid maxResults"}}`, http.StatusBadRequest)
			return
		}
		if n > 0 && n < max {
			max = n
		}
	}
	items, status, body := f.all(r.Context(), m[1], prefix)
	if status != http.StatusOK {
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	type entry struct {
		key  string
		item json.RawMessage // nil for a prefix
	}
	var entries []entry
	seen := map[string]bool{}
	for _, it := range items {
		if delim != "" {
			if i := strings.Index(it.name[len(prefix):], delim); i >= 0 {
				p := it.name[:len(prefix)+i+len(delim)]
				if !seen[p] {
					seen[p] = true
					entries = append(entries, entry{key: p})
				}
				continue
			}
		}
		entries = append(entries, entry{key: it.name, item: it.raw})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	start := sort.Search(len(entries), func(i int) bool { return token == "" || entries[i].key > token })
	entries = entries[start:]
	out := struct {
		Kind          string            `json:"kind"`
		Items         []json.RawMessage `json:"items,omitempty"`
		Prefixes      []string          `json:"prefixes,omitempty"`
		NextPageToken string            `json:"nextPageToken,omitempty"`
	}{Kind: "storage#objects"}
	if len(entries) > max {
		out.NextPageToken = entries[max-1].key
		entries = entries[:max]
	}
	for _, e := range entries {
		if e.item != nil {
			out.Items = append(out.Items, e.item)
		} else {
			out.Prefixes = append(out.Prefixes, e.key)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}

type listedItem struct {
	name string
	raw  json.RawMessage // the fake's object resource, passed on as it is
}

// all returns every object under prefix, in the fake's own resource form,
// from its flat listing (which it gets right), or the fake's error answer.
func (f *listingFront) all(ctx context.Context, bucket, prefix string) ([]listedItem, int, []byte) {
	var items []listedItem
	token := ""
	for {
		q := url.Values{"prefix": {prefix}}
		if token != "" {
			q.Set("pageToken", token)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.fake+"/storage/v1/b/"+bucket+"/o?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, http.StatusBadGateway, []byte(err.Error())
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, resp.StatusCode, body
		}
		var page struct {
			Items         []json.RawMessage `json:"items"`
			NextPageToken string            `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, http.StatusBadGateway, []byte(err.Error())
		}
		for _, raw := range page.Items {
			var o struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				return nil, http.StatusBadGateway, []byte(err.Error())
			}
			items = append(items, listedItem{name: o.Name, raw: raw})
		}
		if page.NextPageToken == "" {
			return items, http.StatusOK, nil
		}
		token = page.NextPageToken
	}
}
