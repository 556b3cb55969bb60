package sinks_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/redback-dev/redback/sinks"
	"github.com/redback-dev/redback/sinks/sinktest"
)

func openT(t *testing.T, spec string) *sinks.Sink {
	t.Helper()
	s, err := sinks.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open(%s): %v", spec, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformanceMem(t *testing.T) {
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		return openT(t, "mem://")
	})
}

func TestConformanceFolder(t *testing.T) {
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		return openT(t, filepath.Join(t.TempDir(), "backups"))
	})
}

func TestConformanceFileURL(t *testing.T) {
	sinktest.RunConformance(t, func(t *testing.T) *sinks.Sink {
		return openT(t, "file://"+filepath.ToSlash(t.TempDir()))
	})
}
