package sinks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/redback-dev/redback/sinks"
	"github.com/redback-dev/redback/sinks/sinktest"
)

// fakeS3 is an in-process S3-compatible server (gofakes3) with a front
// handler that (1) honours If-None-Match: * on CompleteMultipartUpload,
// which gofakes3 ignores but S3 implements, and (2) records what clients
// send that S3-compatible stores choke on.
type fakeS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend
	mu      sync.Mutex // serialises conditional writes

	checksumHeaders atomic.Int64 // requests carrying x-amz-checksum-* / sdk-checksum
	hdrMu           sync.Mutex
	putHeaders      map[string]http.Header // by key, for PUT / CreateMultipartUpload
}

func newFakeS3(t *testing.T, bucket string) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New(), putHeaders: map[string]http.Header{}}
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	inner := gofakes3.New(f.backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			lk := strings.ToLower(k)
			if strings.HasPrefix(lk, "x-amz-checksum-") || lk == "x-amz-sdk-checksum-algorithm" {
				f.checksumHeaders.Add(1)
			}
		}
		q := r.URL.Query()
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
		if len(parts) == 2 && (r.Method == http.MethodPut && !q.Has("partNumber") || r.Method == http.MethodPost && q.Has("uploads")) {
			f.hdrMu.Lock()
			f.putHeaders[parts[1]] = r.Header.Clone()
			f.hdrMu.Unlock()
		}
		if r.Header.Get("If-None-Match") == "*" && len(parts) == 2 {
			f.mu.Lock()
			defer f.mu.Unlock()
			if r.Method == http.MethodPost && q.Has("uploadId") {
				if _, err := f.backend.HeadObject(parts[0], parts[1]); err == nil {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(http.StatusPreconditionFailed)
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`)
					return
				}
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// s3Env points the AWS default chain at static test credentials only.
func s3Env(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "verysecretsecretkey")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/redback-test")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/redback-test")
}

func (f *fakeS3) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
	})
}

func (f *fakeS3) pendingUploads(t *testing.T, bucket string) int {
	t.Helper()
	out, err := f.client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Logf("pending upload: key %s", aws.ToString(u.Key))
	}
	return len(out.Uploads)
}

func TestConformanceS3(t *testing.T) {
	s3Env(t)
	const bucket = "redback-test"
	f := newFakeS3(t, bucket)
	var n atomic.Int64
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		spec := fmt.Sprintf("s3://%s/run/t%d?endpoint=%s&use_path_style=true", bucket, n.Add(1), url.QueryEscape(f.srv.URL))
		return openT(t, spec)
	})
	if got := f.pendingUploads(t, bucket); got != 0 {
		t.Errorf("%d multipart uploads left pending after aborted and cancelled writes", got)
	}
	if got := f.checksumHeaders.Load(); got != 0 {
		t.Errorf("%d requests carried checksum headers despite a custom endpoint", got)
	}
}

func TestS3PrefixIsolationAndOptions(t *testing.T) {
	s3Env(t)
	const bucket = "redback-test"
	f := newFakeS3(t, bucket)
	ctx := context.Background()
	base := "s3://" + bucket + "/%s?endpoint=" + url.QueryEscape(f.srv.URL) + "&s3ForcePathStyle=true&region=eu-west-1"
	a := openT(t, strings.Replace(base, "%s", "team/a", 1)+"&storage_class=STANDARD_IA&sse=AES256")
	b := openT(t, strings.Replace(base, "%s", "team/b", 1))
	root := openT(t, strings.Replace(base, "%s", "", 1))
	commit(t, a, archive, "in a")
	commit(t, b, "redis_backup_20231205_143023.json", "in b")
	for _, c := range []struct {
		s    *sinks.Sink
		want int
	}{{a, 1}, {b, 1}, {root, 0}} {
		infos, err := c.s.List(ctx)
		if err != nil || len(infos) != c.want {
			t.Errorf("%s: List = %+v, %v; want %d", c.s, infos, err, c.want)
		}
	}
	if _, err := f.backend.HeadObject(bucket, "team/a/"+archive); err != nil {
		t.Errorf("archive not under its prefix: %v", err)
	}
	if _, err := f.backend.HeadObject(bucket, "team/a/.redback/"+archive+".json"); err != nil {
		t.Errorf("manifest not under the prefix: %v", err)
	}
	f.hdrMu.Lock()
	h := f.putHeaders["team/a/"+archive]
	mh := f.putHeaders["team/a/.redback/"+archive+".json"]
	f.hdrMu.Unlock()
	if h.Get("X-Amz-Storage-Class") != "STANDARD_IA" || h.Get("X-Amz-Server-Side-Encryption") != "AES256" {
		t.Errorf("archive PUT headers: storage class %q, sse %q", h.Get("X-Amz-Storage-Class"), h.Get("X-Amz-Server-Side-Encryption"))
	}
	if h.Get("If-None-Match") != "*" {
		t.Errorf("archive PUT without If-None-Match: *")
	}
	if mh.Get("X-Amz-Storage-Class") != "" {
		t.Errorf("manifest got storage class %q", mh.Get("X-Amz-Storage-Class"))
	}
	if got := a.String(); strings.Contains(got, "secret") || !strings.HasPrefix(got, "s3://redback-test/team/a") {
		t.Errorf("String = %q", got)
	}
}

func TestS3ServerMissingFails(t *testing.T) {
	s3Env(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	s := openT(t, "s3://b/p?endpoint="+url.QueryEscape(addr)+"&use_path_style=true")
	ctx := context.Background()
	if _, err := s.List(ctx); err == nil {
		t.Fatalf("List against a dead endpoint succeeded")
	} else if strings.Contains(err.Error(), "verysecret") {
		t.Fatalf("error leaks the secret key: %v", err)
	}
}
