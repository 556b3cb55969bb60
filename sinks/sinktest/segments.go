package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/redback-dev/redback/sinks"
)

// testSegments: a segment is listed only once committed with its
// manifest, in name order, reads back whole, never replaces another, an
// aborted or cancelled one leaves nothing, archives and segments do not
// see each other, and a deleted one is gone.
func testSegments(t *testing.T, s *sinks.Sink) {
	ctx := ctxFor(t)
	names := []string{"b_0002.wal.gz", "a_0001.wal", "c_0003.wal.gz.age"}
	for i, name := range names {
		w, err := s.CreateSegment(ctx, name)
		if err != nil {
			t.Fatalf("CreateSegment(%s): %v", name, err)
		}
		body := data(uint64(i), 1000*(i+1))
		if err := writeChunks(w, body); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListSegments(ctx); len(got) != i {
			t.Fatalf("%d listed before commit, want %d", len(got), i)
		}
		var gotSize int64
		var gotSum string
		err = w.Commit(func(size int64, sha string) ([]byte, error) {
			gotSize, gotSum = size, sha
			return []byte(fmt.Sprintf(`{"n":%d}`, i)), nil
		})
		if err != nil {
			t.Fatalf("Commit(%s): %v", name, err)
		}
		if gotSize != int64(len(body)) || gotSum != sum(body) {
			t.Fatalf("commit saw %d %s, want %d %s", gotSize, gotSum, len(body), sum(body))
		}
		rc, err := s.OpenSegment(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, body) {
			t.Fatalf("read back %d bytes (%v), want %d", len(back), err, len(body))
		}
		if m, err := s.SegmentManifest(ctx, name); err != nil || string(m) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("manifest %q %v", m, err)
		}
	}
	got, err := s.ListSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, g := range got {
		listed = append(listed, g.Name)
	}
	if fmt.Sprint(listed) != "[a_0001.wal b_0002.wal.gz c_0003.wal.gz.age]" {
		t.Fatalf("listed %v", listed)
	}
	if infos := list(t, s); len(infos) != 0 {
		t.Fatalf("segments listed as archives: %v", infos)
	}
	if _, err := s.CreateSegment(ctx, "a_0001.wal"); !errors.Is(err, sinks.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	for _, bad := range []string{"", "../x.wal", "a/b.wal", "x.json", ".x.wal", "redis_backup_20240101_000000.json"} {
		if _, err := s.CreateSegment(ctx, bad); !errors.Is(err, sinks.ErrInvalidName) {
			t.Fatalf("CreateSegment(%q): %v", bad, err)
		}
	}
	// Aborted, cancelled, or with a failing manifest: nothing.
	w, err := s.CreateSegment(ctx, "d_0004.wal")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("partial"))
	w.Abort()
	cctx, cancel := context.WithCancel(ctx)
	w, err = s.CreateSegment(cctx, "e_0005.wal")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("partial"))
	cancel()
	if err := w.Commit(func(int64, string) ([]byte, error) { return []byte("{}"), nil }); err == nil {
		t.Fatal("commit after cancel succeeded")
	}
	w, err = s.CreateSegment(ctx, "f_0006.wal")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("whole"))
	if err := w.Commit(func(int64, string) ([]byte, error) { return nil, errors.New("no manifest") }); err == nil {
		t.Fatal("commit with a failing manifest succeeded")
	}
	if _, err := s.OpenSegment(ctx, "f_0006.wal"); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("a segment without its manifest was left: %v", err)
	}
	if got, _ := s.ListSegments(ctx); len(got) != 3 {
		t.Fatalf("%d listed after the failures, want 3", len(got))
	}
	for _, name := range names {
		if err := s.DeleteSegment(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSegment(ctx, names[0]); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if got, _ := s.ListSegments(ctx); len(got) != 0 {
		t.Fatalf("%d listed after delete", len(got))
	}
}
