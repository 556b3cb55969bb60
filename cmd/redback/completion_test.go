package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

// completed runs the shell completion of args (cobra's __complete, which
// the scripts of `redback completion SHELL` call) and returns the words.
func completed(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	out, errOut, code := redback(t, dir, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, code, errOut)
	}
	var words []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" && !strings.HasPrefix(l, ":") {
			words = append(words, strings.SplitN(l, "\t", 2)[0])
		}
	}
	return words
}

// TestCompletion: archive names (newest first, after `latest`) complete
// for the commands that take one, as many as they take; target names for
// --target; nothing, and no folder made, for storage that does not exist.
func TestCompletion(t *testing.T) {
	src := redistest.Start(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	var names []string
	for i := 0; i < 2; i++ {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // names have a second's resolution
		}
		if _, errOut, code := redback(t, dir, "--redis-url", src.URL(0), "--storage", store, "-q", "backup"); code != 0 {
			t.Fatal(errOut)
		}
	}
	entries, _ := os.ReadDir(store)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "redis_backup_") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) != 2 {
		t.Fatalf("archives %v", names)
	}
	newestFirst := []string{"latest", names[1], names[0]}
	for _, cmd := range []string{"restore", "verify", "download", "delete", "keys", "show", "export", "diff"} {
		if got := completed(t, dir, "--storage", store, cmd, ""); !slices.Equal(got, newestFirst) {
			t.Errorf("%s: %v, want %v", cmd, got, newestFirst)
		}
	}
	if got := completed(t, dir, "--storage", store, "restore", names[0][:len(names[0])-8]); !slices.Contains(got, names[0]) || slices.Contains(got, "latest") {
		t.Errorf("restore with a prefix: %v", got)
	}
	if got := completed(t, dir, "--storage", store, "diff", names[0], ""); len(got) != 3 {
		t.Errorf("diff's second argument: %v", got)
	}
	if got := completed(t, dir, "--storage", store, "verify", names[0], ""); len(got) != 0 {
		t.Errorf("verify takes one archive, yet a second completes: %v", got)
	}
	missing := filepath.Join(dir, "typo")
	if got := completed(t, dir, "--storage", missing, "restore", ""); len(got) != 0 {
		t.Errorf("missing storage: %v", got)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("completion made the storage folder %s", missing)
	}

	tdir, _, _, _ := twoTargets(t, "")
	if got := completed(t, tdir, "list", "--target", ""); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("--target: %v", got)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if out, errOut, code := redback(t, dir, "completion", shell); code != 0 || !strings.Contains(out, "redback") {
			t.Errorf("completion %s: exit %d %s", shell, code, errOut)
		}
	}
}
