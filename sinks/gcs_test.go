package sinks_test

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/redback-dev/redback/sinks"
	"github.com/redback-dev/redback/sinks/sinktest"
)

// TestConformanceGCS runs the suite against fake-gcs-server, in process,
// over a real TCP listener.
func TestConformanceGCS(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		Writer: io.Discard,
	})
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	const bucket = "redback-test"
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	var n atomic.Int64
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		return openT(t, fmt.Sprintf("gs://%s/run/t%d?endpoint=%s", bucket, n.Add(1), url.QueryEscape(srv.URL())))
	})
}

// An emulator's endpoint never gets credentials, however its scheme is
// spelled; an https endpoint asks for Application Default Credentials
// (here a missing key file: a clear error, not a token sent anywhere).
func TestGCSEndpointCredentials(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing-key.json")
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "b"})
	upper := "HTTP://" + strings.TrimPrefix(srv.URL(), "http://")
	s := openT(t, "gs://b/p?endpoint="+url.QueryEscape(upper))
	if _, err := s.List(context.Background()); err != nil {
		t.Fatalf("list through %s: %v", upper, err)
	}
	_, err = sinks.Open(context.Background(), "gs://b/p?endpoint="+url.QueryEscape("https://127.0.0.1:1"))
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("https endpoint without credentials: %v", err)
	}
}
