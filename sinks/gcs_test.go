package sinks_test

import (
	"fmt"
	"io"
	"net/url"
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
