package s3test

import (
	"context"
	"strings"
	"testing"
)

func TestMissingBinaryIsAnError(t *testing.T) {
	t.Setenv("VERSITYGW", "/nonexistent/versitygw")
	if _, err := StartDir(t.TempDir()); err == nil {
		t.Fatal("StartDir without a binary succeeded")
	}
}

func TestStartCreatesBuckets(t *testing.T) {
	s := Start(t, "one", "two")
	out, err := s.Client().ListBuckets(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, *b.Name)
	}
	if strings.Join(names, ",") != "one,two" {
		t.Fatalf("buckets %v", names)
	}
	if u := s.SinkURL("one", "/a/b/"); !strings.HasPrefix(u, "s3://one/a/b?") || !strings.Contains(u, "use_path_style=true") {
		t.Fatalf("SinkURL = %q", u)
	}
}
