package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestExportCLI: the fresh-host story with export: back up, export the
// archive as an RDB file, start a new server on it: the same data (DEBUG
// DIGEST). An existing output file is refused and left as it was.
func TestExportCLI(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 2000, Binary: true, BigElements: 3000, Streams: 2, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	want, err := src.Client(t, 0).Do(ctx, "DEBUG", "DIGEST").Text()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"REDIS_URL=" + src.URL(0)}
	out, errOut, code := redbackEnv(t, dir, env, "backup", "--json")
	if code != 0 {
		t.Fatalf("backup: %d %s", code, errOut)
	}
	var b struct {
		Filename  string
		KeysCount int64 `json:"keys_count"`
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir() // the fresh host's server folder
	rdb := filepath.Join(host, "dump.rdb")
	out, errOut, code = redbackEnv(t, dir, env, "export", b.Filename, "-o", rdb, "--server-binary", bin, "--json")
	if code != 0 {
		t.Fatalf("export: %d %s %s", code, out, errOut)
	}
	var res struct {
		Success    bool
		KeysCount  int64 `json:"keys_count"`
		RDBVersion int   `json:"rdb_version"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Success || res.KeysCount != b.KeysCount || b.KeysCount < 2000 || res.RDBVersion != 10 {
		t.Fatalf("export result %s (%v)", out, err)
	}
	dst, err := redistest.StartDir(host)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Stop()
	if got, err := dst.Client(t, 0).Do(ctx, "DEBUG", "DIGEST").Text(); err != nil || got != want {
		t.Fatalf("the server started on the export: digest %s (%v), the source's %s", got, err, want)
	}
	before, _ := os.ReadFile(rdb)
	_, errOut, code = redbackEnv(t, dir, env, "export", b.Filename, "-o", rdb, "--server-binary", bin)
	if after, _ := os.ReadFile(rdb); code != 2 || string(after) != string(before) {
		t.Fatalf("export over an existing file: exit %d (%s), file changed %v", code, errOut, string(after) != string(before))
	}
}
