package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redback-dev/redback/sinks"
)

// The storage folder itself may be a symbolic link (backups -> a mounted
// disk): list, stat and open see the archives written through it.
func TestFolderThatIsASymlink(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "backups")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s := openT(t, link)
	commit(t, s, archive, "data")
	infos, err := s.List(context.Background())
	if err != nil || len(infos) != 1 || infos[0].Name != archive || infos[0].Manifest == nil {
		t.Fatalf("List through the link = %+v, %v", infos, err)
	}
	if _, err := os.Stat(filepath.Join(real, archive)); err != nil {
		t.Fatalf("archive not in the linked folder: %v", err)
	}
	// A second Sink on the same link agrees.
	infos, err = openT(t, link).List(context.Background())
	if err != nil || len(infos) != 1 {
		t.Fatalf("List from a new Sink = %+v, %v", infos, err)
	}
}

// A backup's temporary file is readable by its owner only from its first
// byte, not only once committed.
func TestTemporaryArchiveIs0600(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	w, err := s.Create(context.Background(), archive)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("plaintext of every key")); err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, f := range files(t, dir) {
		if filepath.Ext(f) == ".tmp" {
			tmp = append(tmp, f)
		}
	}
	if len(tmp) != 1 {
		t.Fatalf("temporary files %v", tmp)
	}
	fi, err := os.Stat(filepath.Join(dir, tmp[0]))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("temporary archive mode %v, want 0600", fi.Mode().Perm())
	}
}

// Temporary files of killed backups go at the next backup's start once
// nothing has written them for a quarter of an hour; fresher ones (a backup
// running in another process) stay.
func TestStaleTemporaryFilesGoAtTheNextBackup(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	stale := filepath.Join(dir, "redis_backup_20231205_140000.json.gz.18a2b3c4d5e6f708.tmp")
	fresh := filepath.Join(dir, "redis_backup_20231205_140001.json.gz.18a2b3c4d5e6f709.tmp")
	staleManifest := filepath.Join(dir, ".redback", "redis_backup_20231205_140000.json.gz.json.18a2b3c4d5e6f70a.tmp")
	other := filepath.Join(dir, "notes.tmp")
	if err := os.MkdirAll(filepath.Join(dir, ".redback"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, fresh, staleManifest, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-20 * time.Minute)
	for _, p := range []string{stale, staleManifest, other} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, archive, "next backup")
	for _, p := range []string{stale, staleManifest} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s kept: %v", filepath.Base(p), err)
		}
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("%s removed: %v", filepath.Base(p), err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes at a new folder (the tests run as
// root, as CI does; a machine that refuses the mount fails the test).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the fault tests need root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A disk that fills up between the archive and its manifest: the commit
// fails and rolls the archive back, so nothing is listed that retention
// could never prune.
func TestDiskFullBetweenArchiveAndManifest(t *testing.T) {
	dir := mountTmpfs(t, 1<<20)
	s := openT(t, dir)
	ctx := context.Background()
	w, err := s.Create(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	// Fill the rest of the disk.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	if _, err := w.Commit(sinks.Manifest{KeysCount: 1}); err == nil {
		t.Fatal("commit succeeded on a full disk")
	}
	infos, err := s.List(ctx)
	if err != nil || len(infos) != 0 {
		t.Fatalf("after the failed commit: %+v, %v", infos, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, archive)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("archive left behind: %v", err)
	}
	// With room again, the same name commits.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	commit(t, s, archive, "after")
}
