package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/redback-dev/redback/internal/s3test"
)

// Tests of the sweep of stale multipart uploads at Create: against a real
// versitygw process (through a fault-injecting proxy where needed), and
// the idleness rule against a scripted fake.

const sweepBucket = "redback-sweep"

// setSweep shortens the sweep's thresholds for sinks opened after it (the
// sweeper copies them at Open) and restores them when t ends.
func setSweep(t *testing.T, staleAge, timeout time.Duration, pageSize int32) {
	t.Helper()
	oldAge, oldTimeout, oldPage, oldClock := staleUploadAge, sweepTimeout, sweepPageSize, sweepClock
	t.Cleanup(func() {
		staleUploadAge, sweepTimeout, sweepPageSize, sweepClock = oldAge, oldTimeout, oldPage, oldClock
	})
	staleUploadAge, sweepTimeout, sweepPageSize = staleAge, timeout, pageSize
}

// startMPU starts a multipart upload of key, with one part when withPart,
// and returns its upload ID.
func startMPU(t *testing.T, c *s3.Client, key string, withPart bool) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(sweepBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("CreateMultipartUpload %s: %v", key, err)
	}
	if withPart {
		body := bytes.Repeat([]byte("x"), 64<<10)
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(sweepBucket), Key: aws.String(key), UploadId: out.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
		}); err != nil {
			t.Fatalf("UploadPart %s: %v", key, err)
		}
	}
	return aws.ToString(out.UploadId)
}

// pendingMPUs returns the upload IDs in progress in the bucket, by ID, with
// their keys (listed without prefix nor delimiter, paginated).
func pendingMPUs(t *testing.T, c *s3.Client) map[string]string {
	t.Helper()
	got := map[string]string{}
	var km, im *string
	for range 100 {
		out, err := c.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
			Bucket: aws.String(sweepBucket), KeyMarker: km, UploadIdMarker: im,
		})
		if err != nil {
			t.Fatalf("ListMultipartUploads: %v", err)
		}
		for _, u := range out.Uploads {
			got[aws.ToString(u.UploadId)] = aws.ToString(u.Key)
		}
		if !aws.ToBool(out.IsTruncated) {
			return got
		}
		km, im = out.NextKeyMarker, out.NextUploadIdMarker
	}
	t.Fatal("ListMultipartUploads pages forever")
	return nil
}

// backup runs one archive write through Create, Write and Commit.
func backup(t *testing.T, s *Sink, name string) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, name)
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := w.Write([]byte("archive " + name)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := w.Commit(Manifest{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if _, err := s.Stat(ctx, name); err != nil {
		t.Fatalf("Stat after Commit: %v", err)
	}
}

func openSweepSink(t *testing.T, spec string) *Sink {
	t.Helper()
	s, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sweepAge is the stale age of the integration tests, and sweepWait how
// long they let uploads age into staleness (versitygw reports the upload
// folder's modification time, to the second, as the initiation time).
const (
	sweepAge  = 2 * time.Second
	sweepWait = 3500 * time.Millisecond
)

func TestS3CreateAbortsStaleUploads(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	c := gw.Client()
	setSweep(t, sweepAge, 10*time.Second, 1000)
	// A local clock a day fast would make every upload look stale: the
	// sweep must go by the server's clock (its Date header).
	sweepClock = func() time.Time { return time.Now().Add(24 * time.Hour) }

	stale := map[string]string{} // upload ID -> key: must be aborted
	kept := map[string]string{}  // must stay
	for _, k := range []struct {
		key      string
		withPart bool
	}{
		{"team/a/redis_backup_20240101_000000.json.gz.age", true},
		{"team/a/redis_backup_20240101_000000.json.gz.age", false}, // a second upload of one key
		{"team/a/redis_backup_20240101_010000.json", false},
		{"team/a/redis_backup_20240101_020000.json.gz", true},
	} {
		stale[startMPU(t, c, k.key, k.withPart)] = k.key
	}
	for _, key := range []string{
		"team/a/notes.txt", // not an archive name
		"team/a/redis_backup_20240101_000000.json.1a2b.tmp",      // nor is a temporary name
		"team/a/redis_backup_20241301_000000.json",               // no such month
		"team/a/.redback/redis_backup_20240101_000000.json.json", // a manifest
		"team/a/sub/redis_backup_20240101_000000.json",           // below the prefix
		"team/ab/redis_backup_20240101_000000.json",              // a sibling prefix
		"team/b/redis_backup_20240101_000000.json",               // another sink's
		"redis_backup_20240101_000000.json",                      // the bucket root's
	} {
		kept[startMPU(t, c, key, true)] = key
	}
	time.Sleep(sweepWait)
	fresh := startMPU(t, c, "team/a/redis_backup_20240102_000000.json", true)
	kept[fresh] = "team/a/redis_backup_20240102_000000.json"
	freshNoPart := startMPU(t, c, "team/a/redis_backup_20240102_010000.json", false)
	kept[freshNoPart] = "team/a/redis_backup_20240102_010000.json"

	s := openSweepSink(t, gw.SinkURL(sweepBucket, "team/a"))
	if got := pendingMPUs(t, c); len(got) != len(stale)+len(kept) {
		t.Fatalf("Open touched uploads: %d pending, want %d", len(got), len(stale)+len(kept))
	}
	backup(t, s, "redis_backup_20240103_000000.json")

	got := pendingMPUs(t, c)
	for id, key := range stale {
		if _, ok := got[id]; ok {
			t.Errorf("stale upload of %s not aborted", key)
		}
	}
	for id, key := range kept {
		if _, ok := got[id]; !ok {
			t.Errorf("upload of %s aborted; it should stay", key)
		}
	}
	if len(got) != len(kept) {
		t.Errorf("%d uploads pending after the sweep, want %d: %v", len(got), len(kept), got)
	}
	infos, err := s.List(context.Background())
	if err != nil || len(infos) != 1 || infos[0].Name != "redis_backup_20240103_000000.json" {
		t.Errorf("List = %+v, %v", infos, err)
	}
}

// TestS3SweepAtBucketRoot: a sink at the bucket's root sweeps only the
// archive-named uploads directly at the root.
func TestS3SweepAtBucketRoot(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	c := gw.Client()
	setSweep(t, sweepAge, 10*time.Second, 1000)
	stale := startMPU(t, c, "redis_backup_20240101_000000.json", true)
	below := startMPU(t, c, "p/redis_backup_20240101_000000.json", true)
	other := startMPU(t, c, "other.bin", true)
	time.Sleep(sweepWait)
	s := openSweepSink(t, gw.SinkURL(sweepBucket, ""))
	backup(t, s, "redis_backup_20240103_000000.json")
	got := pendingMPUs(t, c)
	if _, ok := got[stale]; ok {
		t.Errorf("stale upload at the root not aborted")
	}
	if _, ok := got[below]; !ok {
		t.Errorf("upload below the root (another sink's) aborted")
	}
	if _, ok := got[other]; !ok {
		t.Errorf("non-archive upload aborted")
	}
}

// TestS3SweepPaginates: with pages of two uploads, every stale one is found.
// versitygw 1.8 refuses the upload-ID markers it returns, so the sweep goes
// on after the key: an upload of a key with two may wait for the next one.
func TestS3SweepPaginates(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	c := gw.Client()
	setSweep(t, sweepAge, 10*time.Second, 2)
	stale := map[string]string{}
	kept := map[string]string{}
	doubled := map[string]bool{}
	for i := range 7 {
		key := fmt.Sprintf("p/redis_backup_20240101_%02d0000.json", i)
		stale[startMPU(t, c, key, i%2 == 0)] = key
		if i%3 == 0 {
			stale[startMPU(t, c, key, false)] = key
			doubled[key] = true
		}
		other := fmt.Sprintf("p/other_%d", i)
		kept[startMPU(t, c, other, false)] = other
	}
	time.Sleep(sweepWait)
	s := openSweepSink(t, gw.SinkURL(sweepBucket, "p"))
	check := func(final bool) {
		t.Helper()
		got := pendingMPUs(t, c)
		left := map[string]int{}
		for id, key := range stale {
			if _, ok := got[id]; ok {
				left[key]++
			}
		}
		for key, n := range left {
			if final || !doubled[key] || n > 1 {
				t.Errorf("final %v: %d stale uploads of %s not aborted", final, n, key)
			}
		}
		for id, key := range kept {
			if _, ok := got[id]; !ok {
				t.Errorf("upload of %s aborted", key)
			}
		}
	}
	backup(t, s, "redis_backup_20240103_000000.json")
	check(false)
	backup(t, s, "redis_backup_20240103_000001.json")
	check(true)
}

// faultProxy sits between a sink and versitygw; it counts the sweep's
// requests and can fail or stall them.
type faultProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	// fault, when set, may answer a request itself (returning true).
	fault                func(w http.ResponseWriter, r *http.Request, op string) bool
	lists, parts, aborts atomic.Int64
}

// sweepOp names the sweep's requests: "list" (ListMultipartUploads), "parts"
// (ListParts), "abort" (AbortMultipartUpload), else "".
func sweepOp(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Has("uploads"):
		return "list"
	case r.Method == http.MethodGet && q.Has("uploadId"):
		return "parts"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "abort"
	}
	return ""
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the signed Host header
	p := &faultProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := sweepOp(r)
		switch op {
		case "list":
			p.lists.Add(1)
		case "parts":
			p.parts.Add(1)
		case "abort":
			p.aborts.Add(1)
		}
		p.mu.Lock()
		fault := p.fault
		p.mu.Unlock()
		if fault != nil && fault(w, r, op) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) setFault(f func(w http.ResponseWriter, r *http.Request, op string) bool) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

func (p *faultProxy) reset() {
	p.lists.Store(0)
	p.parts.Store(0)
	p.aborts.Store(0)
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, code)
}

func (p *faultProxy) sinkURL(prefix string) string {
	q := url.Values{}
	q.Set("endpoint", p.srv.URL)
	q.Set("use_path_style", "true")
	q.Set("region", s3test.Region)
	return "s3://" + sweepBucket + "/" + prefix + "?" + q.Encode()
}

// TestS3SweepCost: Open lists nothing; a Create with nothing stale makes one
// ListMultipartUploads, even with another writer's live upload pending.
func TestS3SweepCost(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	c := gw.Client()
	p := newFaultProxy(t, gw.URL)
	s := openSweepSink(t, p.sinkURL("p"))
	if n := p.lists.Load(); n != 0 {
		t.Errorf("Open made %d ListMultipartUploads", n)
	}
	live := startMPU(t, c, "p/redis_backup_20240101_000000.json", true)
	for i := range 2 {
		p.reset()
		backup(t, s, fmt.Sprintf("redis_backup_20240103_00000%d.json", i))
		if l, pa, a := p.lists.Load(), p.parts.Load(), p.aborts.Load(); l != 1 || pa != 0 || a != 0 {
			t.Errorf("backup %d: %d ListMultipartUploads, %d ListParts, %d aborts; want 1, 0, 0", i, l, pa, a)
		}
	}
	if _, ok := pendingMPUs(t, c)[live]; !ok {
		t.Errorf("a live upload was aborted")
	}
}

// TestS3SweepFailureNeverFailsCreate: whatever the sweep's requests meet,
// the backup goes on, and in bounded time.
func TestS3SweepFailureNeverFailsCreate(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	c := gw.Client()
	const timeout = 750 * time.Millisecond
	setSweep(t, sweepAge, timeout, 1000)
	p := newFaultProxy(t, gw.URL)
	stale := startMPU(t, c, "p/redis_backup_20240101_000000.json", true)
	time.Sleep(sweepWait)
	s := openSweepSink(t, p.sinkURL("p"))

	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}
	cases := []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request, op string) bool
		want  string // the request the fault must have met
	}{
		{"listing fails", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "list" {
				s3Error(w, http.StatusInternalServerError, "InternalError")
				return true
			}
			return false
		}, "list"},
		{"listing denied", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "list" {
				s3Error(w, http.StatusForbidden, "AccessDenied")
				return true
			}
			return false
		}, "list"},
		{"listing not implemented", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "list" {
				s3Error(w, http.StatusNotImplemented, "NotImplemented")
				return true
			}
			return false
		}, "list"},
		{"listing garbage", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "list" {
				w.Header().Set("Content-Type", "application/xml")
				fmt.Fprint(w, "<ListMultipartUploadsResult><Upload><Key>")
				return true
			}
			return false
		}, "list"},
		{"listing stalls", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "list" {
				stall(w, r)
				return true
			}
			return false
		}, "list"},
		{"parts listing fails", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "parts" {
				s3Error(w, http.StatusInternalServerError, "InternalError")
				return true
			}
			return false
		}, "parts"},
		{"parts listing stalls", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "parts" {
				stall(w, r)
				return true
			}
			return false
		}, "parts"},
		{"abort denied", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "abort" {
				s3Error(w, http.StatusForbidden, "AccessDenied")
				return true
			}
			return false
		}, "abort"},
		{"abort stalls", func(w http.ResponseWriter, r *http.Request, op string) bool {
			if op == "abort" {
				stall(w, r)
				return true
			}
			return false
		}, "abort"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.reset()
			p.setFault(tc.fault)
			defer p.setFault(nil)
			start := time.Now()
			backup(t, s, fmt.Sprintf("redis_backup_20240103_0000%02d.json", i))
			if d := time.Since(start); d > timeout+5*time.Second {
				t.Errorf("backup took %v with a sweep bounded by %v", d, timeout)
			}
			var met int64
			switch tc.want {
			case "list":
				met = p.lists.Load()
			case "parts":
				met = p.parts.Load()
			case "abort":
				met = p.aborts.Load()
			}
			if met == 0 {
				t.Fatalf("the sweep never sent the %s request the fault targets", tc.want)
			}
			if _, ok := pendingMPUs(t, c)[stale]; !ok {
				t.Fatalf("the stale upload went despite the fault")
			}
		})
	}
	// With the faults gone, the next backup sweeps it.
	backup(t, s, "redis_backup_20240104_000000.json")
	if _, ok := pendingMPUs(t, c)[stale]; ok {
		t.Errorf("stale upload not aborted once the faults are gone")
	}
}

// TestS3SweepCallerCancel: a caller giving up during the sweep gets Create's
// answer promptly, not at the end of the sweep's own bound.
func TestS3SweepCallerCancel(t *testing.T) {
	s3test.SetEnv(t)
	gw := s3test.Start(t, sweepBucket)
	setSweep(t, sweepAge, time.Minute, 1000)
	p := newFaultProxy(t, gw.URL)
	s := openSweepSink(t, p.sinkURL("p"))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p.setFault(func(w http.ResponseWriter, r *http.Request, op string) bool {
		if op == "list" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return true
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	w, err := s.Create(ctx, "redis_backup_20240103_000000.json")
	if err == nil {
		_ = w.Abort()
		t.Errorf("Create succeeded on a context that expired during its sweep")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Create took %v; its context expired after 300ms", d)
	}
	if n := p.lists.Load(); n != 1 {
		t.Errorf("%d listings, want 1", n)
	}
}

// fakeUploads scripts ListMultipartUploads, ListParts and Abort for the
// idleness rule.
type fakeUploads struct {
	mu       sync.Mutex
	uploads  []types.MultipartUpload // sorted by key, then upload ID
	parts    map[string][]types.Part // by upload ID
	partsErr map[string]error
	listErr  error
	// sameMarker makes every listing page claim more with the same marker.
	sameMarker bool
	// rejectIDMarker refuses upload-ID markers, as versitygw 1.8 does.
	rejectIDMarker bool
	listCalls      int
	partCalls      map[string]int
	aborted        []string
}

func (f *fakeUploads) ListMultipartUploads(_ context.Context, in *s3.ListMultipartUploadsInput, _ ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.rejectIDMarker && in.UploadIdMarker != nil {
		return nil, errors.New("InvalidArgument: Invalid uploadId marker")
	}
	if f.sameMarker {
		return &s3.ListMultipartUploadsOutput{Uploads: f.uploads[:1], IsTruncated: aws.Bool(true),
			NextKeyMarker: f.uploads[0].Key, NextUploadIdMarker: f.uploads[0].UploadId}, nil
	}
	var after []types.MultipartUpload
	for _, u := range f.uploads {
		k, id := aws.ToString(u.Key), aws.ToString(u.UploadId)
		if in.KeyMarker != nil {
			km, im := aws.ToString(in.KeyMarker), aws.ToString(in.UploadIdMarker)
			if k < km || k == km && (im == "" || id <= im) {
				continue
			}
		}
		if !strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			continue
		}
		after = append(after, u)
	}
	n := int(aws.ToInt32(in.MaxUploads))
	out := &s3.ListMultipartUploadsOutput{}
	if n > 0 && len(after) > n {
		after = after[:n]
		out.IsTruncated = aws.Bool(true)
		out.NextKeyMarker = after[n-1].Key
		out.NextUploadIdMarker = after[n-1].UploadId
	}
	out.Uploads = after
	return out, nil
}

func (f *fakeUploads) ListParts(_ context.Context, in *s3.ListPartsInput, _ ...func(*s3.Options)) (*s3.ListPartsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := aws.ToString(in.UploadId)
	f.partCalls[id]++
	if err := f.partsErr[id]; err != nil {
		return nil, err
	}
	marker := 0
	if in.PartNumberMarker != nil {
		marker, _ = strconv.Atoi(*in.PartNumberMarker)
	}
	var ps []types.Part
	for _, p := range f.parts[id] {
		if int(aws.ToInt32(p.PartNumber)) > marker {
			ps = append(ps, p)
		}
	}
	out := &s3.ListPartsOutput{}
	if n := int(aws.ToInt32(in.MaxParts)); n > 0 && len(ps) > n {
		ps = ps[:n]
		out.IsTruncated = aws.Bool(true)
		out.NextPartNumberMarker = aws.String(strconv.Itoa(int(aws.ToInt32(ps[n-1].PartNumber))))
	}
	out.Parts = ps
	return out, nil
}

func (f *fakeUploads) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, aws.ToString(in.UploadId))
	return &s3.AbortMultipartUploadOutput{}, nil
}

func TestSweepIdleRule(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	parts := func(times ...time.Duration) []types.Part {
		var ps []types.Part
		for i, d := range times {
			ps = append(ps, types.Part{PartNumber: aws.Int32(int32(i + 1)), LastModified: ago(d)})
		}
		return ps
	}
	const arch = "p/redis_backup_20240101_000000.json"
	f := &fakeUploads{
		parts:     map[string][]types.Part{},
		partsErr:  map[string]error{},
		partCalls: map[string]int{},
	}
	add := func(id, key string, initiated *time.Time, ps []types.Part) {
		f.uploads = append(f.uploads, types.MultipartUpload{Key: aws.String(key), UploadId: aws.String(id), Initiated: initiated})
		f.parts[id] = ps
	}
	add("a-no-parts", arch, ago(2*time.Hour), nil)
	add("b-old-parts", arch, ago(3*time.Hour), parts(3*time.Hour, 2*time.Hour, time.Hour+time.Minute))
	add("c-recent-part", arch, ago(3*time.Hour), parts(3*time.Hour, 5*time.Minute))
	add("d-recent-part-late-page", arch, ago(5*time.Hour), parts(5*time.Hour, 4*time.Hour, 3*time.Hour, 2*time.Hour, time.Minute))
	add("e-young", arch, ago(59*time.Minute), nil)
	add("f-parts-error", arch, ago(3*time.Hour), nil)
	f.partsErr["f-parts-error"] = errors.New("boom")
	add("g-no-initiated", arch, nil, nil)
	add("h-part-no-time", arch, ago(3*time.Hour), []types.Part{{PartNumber: aws.Int32(1)}})
	add("i-many-old-parts", arch, ago(3*time.Hour), parts(3*time.Hour, 3*time.Hour, 3*time.Hour, 3*time.Hour, 3*time.Hour))
	add("j-other-key", "p/notes.txt", ago(9*time.Hour), nil)
	add("k-below", "p/x/redis_backup_20240101_000000.json", ago(9*time.Hour), nil)
	add("l-outside", "q/redis_backup_20240101_000000.json", ago(9*time.Hour), nil)
	add("m-other-archive", "p/redis_backup_20240102_000000.json.gz.age", ago(time.Hour), nil)
	sort.SliceStable(f.uploads, func(i, j int) bool {
		if *f.uploads[i].Key != *f.uploads[j].Key {
			return *f.uploads[i].Key < *f.uploads[j].Key
		}
		return *f.uploads[i].UploadId < *f.uploads[j].UploadId
	})

	w := newUploadSweeper(f, "b", "p/")
	w.staleAge, w.pageSize, w.now = time.Hour, 2, func() time.Time { return now }
	w.sweep(context.Background())

	sort.Strings(f.aborted)
	want := []string{"a-no-parts", "b-old-parts", "i-many-old-parts", "m-other-archive"}
	if fmt.Sprint(f.aborted) != fmt.Sprint(want) {
		t.Errorf("aborted %v, want %v", f.aborted, want)
	}

	// A server refusing upload-ID markers: the listing goes on after the
	// key. The first page ends in arch's first upload, so arch's others
	// wait for a later sweep; the next key's is still reached.
	fr := &fakeUploads{uploads: f.uploads, parts: f.parts, partsErr: f.partsErr, partCalls: map[string]int{}, rejectIDMarker: true}
	wr := newUploadSweeper(fr, "b", "p/")
	wr.staleAge, wr.pageSize, wr.now = time.Hour, 2, func() time.Time { return now }
	wr.sweep(context.Background())
	sort.Strings(fr.aborted)
	if want := []string{"a-no-parts", "m-other-archive"}; fmt.Sprint(fr.aborted) != fmt.Sprint(want) {
		t.Errorf("refused markers: aborted %v, want %v", fr.aborted, want)
	}
	for _, id := range []string{"e-young", "g-no-initiated", "j-other-key", "k-below", "l-outside"} {
		if f.partCalls[id] != 0 {
			t.Errorf("%s: ListParts called; the listing alone rules it out", id)
		}
	}
	if f.partCalls["i-many-old-parts"] != 3 {
		t.Errorf("i-many-old-parts: %d ListParts pages, want 3", f.partCalls["i-many-old-parts"])
	}
	if f.listCalls < 2 {
		t.Errorf("%d listing pages for %d uploads in pages of 2", f.listCalls, len(f.uploads))
	}

	// Nothing stale: one listing call, nothing else.
	f2 := &fakeUploads{partCalls: map[string]int{}}
	w2 := newUploadSweeper(f2, "b", "p/")
	w2.now = func() time.Time { return now }
	f2.uploads = []types.MultipartUpload{{Key: aws.String(arch), UploadId: aws.String("x"), Initiated: ago(time.Minute)}}
	w2.sweep(context.Background())
	if f2.listCalls != 1 || len(f2.partCalls) != 0 || len(f2.aborted) != 0 {
		t.Errorf("nothing stale: %d listings, %d ListParts, %d aborts", f2.listCalls, len(f2.partCalls), len(f2.aborted))
	}

	// A server repeating its marker does not loop the sweep.
	f2.sameMarker, f2.listCalls = true, 0
	w2.sweep(context.Background())
	if f2.listCalls > 2 {
		t.Errorf("repeated marker: %d listing pages", f2.listCalls)
	}

	// A failed listing aborts nothing.
	f3 := &fakeUploads{listErr: errors.New("boom"), partCalls: map[string]int{}}
	newUploadSweeper(f3, "b", "p/").sweep(context.Background())
	if len(f3.aborted) != 0 || f3.listCalls != 1 {
		t.Errorf("failed listing: %d aborts, %d listings", len(f3.aborted), f3.listCalls)
	}
}

// blockingUploads blocks its listing until released.
type blockingUploads struct {
	fakeUploads
	entered chan struct{}
	release chan struct{}
}

func (b *blockingUploads) ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, o ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.fakeUploads.ListMultipartUploads(ctx, in, o...)
}

// TestSweepConcurrentCreates: a Create arriving while another's sweep runs
// skips its own.
func TestSweepConcurrentCreates(t *testing.T) {
	b := &blockingUploads{entered: make(chan struct{}, 2), release: make(chan struct{})}
	b.partCalls = map[string]int{}
	w := newUploadSweeper(b, "b", "")
	done := make(chan struct{})
	go func() { w.sweep(context.Background()); close(done) }()
	<-b.entered
	w.sweep(context.Background()) // returns at once
	close(b.release)
	<-done
	if b.listCalls != 1 {
		t.Errorf("%d listings for two overlapping sweeps, want 1", b.listCalls)
	}
}

// TestCreateHookRunsAtOnce: a context that ends just before Create installs
// its cancellation hook (here: while the driver opens the write) has the
// hook run at once; it must find the Writer complete and abort it.
func TestCreateHookRunsAtOnce(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The driver calls archiveOpt from within NewWriter: it ends the
	// context there, after Create's own checks.
	var end atomic.Pointer[context.CancelFunc]
	s.archiveOpt = func(func(any) bool) error { (*end.Load())(); return nil }
	for i := range 2000 {
		ctx, cancel := context.WithCancel(context.Background())
		end.Store(&cancel)
		w, err := s.Create(ctx, NewName(time.Unix(int64(i), 0), false, false))
		cancel()
		if err != nil {
			continue // the driver noticed first
		}
		_ = w.Abort()
		if _, err := w.Write([]byte("x")); err == nil {
			t.Fatalf("Write after the context ended succeeded")
		}
	}
}
