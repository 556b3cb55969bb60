package sinks_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/redback-dev/redback/internal/s3test"
	"github.com/redback-dev/redback/sinks"
	"github.com/redback-dev/redback/sinks/sinktest"
)

// TestConformanceVersityGW runs the suite against a real S3-compatible
// server process: versitygw serving a temporary folder. It fails (never
// skips) when the binary is missing.
func TestConformanceVersityGW(t *testing.T) {
	s3test.SetEnv(t)
	const bucket = "redback-test"
	gw := s3test.Start(t, bucket)
	var n atomic.Int64
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		return openT(t, gw.SinkURL(bucket, fmt.Sprintf("run/t%d", n.Add(1))))
	})
	out, err := gw.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left pending after aborted and cancelled writes: key %s", aws.ToString(u.Key))
	}
}
