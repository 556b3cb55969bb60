package sinks_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/sinks"
)

const archive = "redis_backup_20231205_143022.json.gz"

func commit(t *testing.T, s *sinks.Sink, name, content string) {
	t.Helper()
	w, err := s.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.WriteString(w, content); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := w.Commit(sinks.Manifest{}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// files returns every path (relative, slash-separated) under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFolderCreatedRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	s := openT(t, "backups")
	fi, err := os.Stat("backups")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("folder mode = %v, want 0700", fi.Mode().Perm())
	}
	if got := s.String(); got != "folder backups" {
		t.Errorf("String = %q", got)
	}
	commit(t, s, archive, "x")
	fi, err = os.Stat("backups/.redback")
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf(".redback: %v, %v", fi, err)
	}
	// An archive holds every key: its owner alone may read it.
	fi, err = os.Stat("backups/" + archive)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode: %v, %v", fi, err)
	}
}

func TestFolderLayout(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	commit(t, s, archive, "content")
	got := files(t, dir)
	slices.Sort(got)
	want := []string{".redback", ".redback/" + archive + ".json", archive}
	if !slices.Equal(got, want) {
		t.Fatalf("folder holds %q, want %q (no .attrs sidecars, no temp files)", got, want)
	}
}

func TestFolderSymlinksNotFollowed(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	ctx := context.Background()

	// An archive name that is a symlink to a file, and one to a folder.
	link := "redis_backup_20231205_143022.json"
	dirLink := "redis_backup_20231205_143023.json"
	if err := os.Symlink(secret, filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, dirLink)); err != nil {
		t.Fatal(err)
	}
	// A real archive whose manifest is a symlink to an outside file.
	commit(t, s, archive, "real")
	mpath := filepath.Join(dir, ".redback", archive+".json")
	fake := filepath.Join(outside, "fake.json")
	if err := os.WriteFile(fake, []byte(`{"name":"`+archive+`","size":4,"keys_count":666}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(mpath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fake, mpath); err != nil {
		t.Fatal(err)
	}

	infos, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != archive || infos[0].Manifest != nil {
		t.Fatalf("List = %+v, want only the real archive, without the symlinked manifest", infos)
	}
	for _, n := range []string{link, dirLink} {
		if _, err := s.Stat(ctx, n); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Stat(%s): %v, want ErrNotFound", n, err)
		}
		if _, _, err := s.Open(ctx, n); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Open(%s): %v, want ErrNotFound", n, err)
		}
		if _, err := s.OpenRange(ctx, n, 0, 3); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("OpenRange(%s): %v, want ErrNotFound", n, err)
		}
		if err := s.Delete(ctx, n); !errors.Is(err, sinks.ErrNotFound) {
			t.Errorf("Delete(%s): %v, want ErrNotFound", n, err)
		}
		if w, err := s.Create(ctx, n); !errors.Is(err, sinks.ErrExists) {
			if w != nil {
				_ = w.Abort()
			}
			t.Errorf("Create(%s): %v, want ErrExists", n, err)
		}
	}
	if err := s.WriteManifest(ctx, sinks.Manifest{Name: link}); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("WriteManifest through a symlink: %v", err)
	}
	// Rewriting the manifest replaces the symlink, never writes through it.
	if err := s.WriteManifest(ctx, sinks.Manifest{Name: archive, Size: 4, KeysCount: 1}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(mpath); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("manifest is not a regular file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(fake)
	if !strings.Contains(string(b), "666") {
		t.Errorf("outside file was written through the symlink")
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Errorf("outside file changed")
	}
	if _, err := os.Lstat(filepath.Join(dir, link)); err != nil {
		t.Errorf("symlink was removed: %v", err)
	}

	// A .redback that is a symlink to an outside folder is ignored and
	// never written into.
	dir2 := t.TempDir()
	s2 := openT(t, dir2)
	if err := os.Symlink(outside, filepath.Join(dir2, ".redback")); err != nil {
		t.Fatal(err)
	}
	name := "redis_backup_20231205_143024.json"
	if err := os.WriteFile(filepath.Join(outside, name+".json"), []byte(`{"name":"`+name+`","size":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := s2.Create(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(sinks.Manifest{}); err == nil {
		t.Errorf("Commit wrote its manifest through a symlinked .redback")
	} else if strings.Contains(err.Error(), dir2) || strings.Contains(err.Error(), outside) {
		t.Errorf("error leaks a path: %v", err)
	}
	// The failed commit rolled the archive back: nothing is listed that
	// would stay unprunable for want of a manifest.
	infos, err = s2.List(ctx)
	if err != nil || len(infos) != 0 {
		t.Fatalf("List = %+v, %v; want nothing (the archive rolled back)", infos, err)
	}
	if err := s2.Delete(ctx, name); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("Delete of the rolled-back archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, name+".json")); err != nil {
		t.Errorf("Delete removed a file outside the folder: %v", err)
	}
}

func TestFolderErrorsHidePath(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "backups")
	s := openT(t, dir)
	commit(t, s, archive, "x")
	// A folder named like an archive is not an archive.
	if err := os.Mkdir(filepath.Join(dir, "redis_backup_20231205_143023.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "redis_backup_20231205_143023.json"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Stat(folder): %v", err)
	}
	// Replace the folder by a file: every call fails, none names a path.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err := s.List(ctx)
	errs = append(errs, err)
	_, err = s.Stat(ctx, archive)
	errs = append(errs, err)
	_, _, err = s.Open(ctx, archive)
	errs = append(errs, err)
	w, err := s.Create(ctx, archive)
	if w != nil {
		_, err = w.Commit(sinks.Manifest{})
	}
	errs = append(errs, err)
	errs = append(errs, s.Delete(ctx, archive))
	_, err = sinks.Open(ctx, dir)
	errs = append(errs, err)
	_, err = sinks.Open(ctx, filepath.Join(dir, "sub"))
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded", i)
			continue
		}
		if strings.Contains(err.Error(), base) {
			t.Errorf("call %d: error leaks the path: %v", i, err)
		}
		t.Logf("call %d: %v", i, err)
	}
}

func TestOpenSpecs(t *testing.T) {
	ctx := context.Background()
	bad := []string{
		"",
		"http://example.com/x",
		"ftp://host/x",
		"azblob://container",
		"file://relative/path",
		"file:///tmp/x?metadata=sidecar",
		"mem://a/b",
		"mem://a?x=1",
		"s3://",
		"s3://user:hunter2@bucket/x",
		"s3://bucket/a/../b",
		"s3://bucket/x?unknown=1&region=us-east-1",
		"s3://bucket/x?region=us-east-1&endpoint=http://h&use_path_style=maybe",
		"s3://bucket?sse=rot13&region=us-east-1",
		"gs://",
		"gs://bucket?unknown=1",
		"s3://bu\x7fcket%zz:hunter2",
		"dir\x00/x",
	}
	for _, spec := range bad {
		s, err := sinks.Open(ctx, spec)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", spec)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error leaks a secret: %v", spec, err)
		}
	}
}

// TestKill9MidWrite kills a process in the middle of writing an archive and
// checks that nothing is listed and nothing exists under the final name.
func TestKill9MidWrite(t *testing.T) {
	if dir := os.Getenv("REDBACK_SINKS_SLOW_WRITER"); dir != "" {
		slowWriter(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9MidWrite$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REDBACK_SINKS_SLOW_WRITER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "writing" {
				ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		ready <- errors.New("child exited before writing")
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("child never started writing")
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The partial data is on disk under a temporary name only.
	var tmp []string
	for _, f := range files(t, dir) {
		if strings.HasSuffix(f, ".tmp") {
			tmp = append(tmp, f)
		}
	}
	if len(tmp) != 1 {
		t.Fatalf("expected one stranded temporary file, found %q", files(t, dir))
	}
	if _, err := os.Lstat(filepath.Join(dir, archive)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("final name exists after kill: %v", err)
	}
	s := openT(t, dir)
	infos, err := s.List(context.Background())
	if err != nil || len(infos) != 0 {
		t.Fatalf("List = %+v, %v; want nothing", infos, err)
	}
	if _, err := s.Stat(context.Background(), archive); !errors.Is(err, sinks.ErrNotFound) {
		t.Fatalf("Stat: %v", err)
	}
	// The name is free for a new backup.
	commit(t, s, archive, "after")

	// An old stranded temporary file is removed at the next Open.
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, tmp[0]), old, old); err != nil {
		t.Fatal(err)
	}
	_ = openT(t, dir)
	if _, err := os.Lstat(filepath.Join(dir, tmp[0])); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale temporary file kept: %v", err)
	}
}

// slowWriter is the child of TestKill9MidWrite: it writes an archive slowly,
// forever, until it is killed.
func slowWriter(dir string) {
	ctx := context.Background()
	s, err := sinks.Open(ctx, dir)
	if err != nil {
		os.Exit(3)
	}
	w, err := s.Create(ctx, archive)
	if err != nil {
		os.Exit(4)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; ; i++ {
		if _, err := w.Write(chunk); err != nil {
			os.Exit(5)
		}
		if i == 0 {
			os.Stdout.WriteString("writing\n")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
