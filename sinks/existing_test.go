package sinks_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/sinks"
)

// OpenExisting never creates a folder: a missing one is ErrNoStorage
// (without the path in the text), an existing one opens as Open would.
func TestOpenExistingCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "backupz")
	for _, spec := range []string{missing, "file://" + missing, filepath.Join(missing, "deeper")} {
		s, err := sinks.OpenExisting(ctx, spec)
		if err == nil {
			s.Close()
			t.Fatalf("OpenExisting(%q) opened a missing folder", spec)
		}
		if !errors.Is(err, sinks.ErrNoStorage) || strings.Contains(err.Error(), dir) {
			t.Errorf("OpenExisting(%q): %v, want ErrNoStorage without the path", spec, err)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("OpenExisting(%q) created the folder: %v", spec, err)
		}
	}
	// A file where the folder should be is still "not a directory".
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sinks.OpenExisting(ctx, file); err == nil || errors.Is(err, sinks.ErrNoStorage) {
		t.Errorf("OpenExisting(a file): %v", err)
	}
	// What Open created, OpenExisting lists.
	w := openT(t, missing)
	commit(t, w, archive, "x")
	s, err := sinks.OpenExisting(ctx, missing)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	infos, err := s.List(ctx)
	if err != nil || len(infos) != 1 || infos[0].Name != archive {
		t.Fatalf("List: %v %v", infos, err)
	}
}
