package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/internal/redistest"
)

// TestDrillPinCLI: as a user would: backups, a drill of the newest (text
// and --json), a pin with a note that survives prune --keep 1 and shows in
// list, delete refused while pinned, unpin; a damaged archive fails its
// drill with status 1 and list says so.
func TestDrillPinCLI(t *testing.T) {
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(t.Context(), k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	url := "--redis-url=" + src.URL(0)
	var names []string
	for range 3 {
		out, errOut, code := redback(t, dir, url, "backup", "--json")
		var b struct {
			Filename string `json:"filename"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &b) != nil {
			t.Fatalf("backup: %d %s %s", code, out, errOut)
		}
		names = append(names, b.Filename)
	}
	out, errOut, code := redback(t, dir, url, "drill", "--server-binary", bin)
	if code != 0 || !strings.Contains(out, "Drill PASSED "+names[2]+": 3 keys restored") {
		t.Fatalf("drill: %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = redback(t, dir, url, "drill", names[1], "--server-binary", bin, "--json")
	var res struct {
		Success  bool             `json:"success"`
		Compared int64            `json:"compared"`
		PerType  map[string]int64 `json:"keys_per_type"`
		Recorded bool             `json:"recorded"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Success || res.Compared != 3 || res.PerType["string"] != 3 || !res.Recorded {
		t.Fatalf("drill --json: %d\n%s\n%s", code, out, errOut)
	}

	if out, errOut, code := redback(t, dir, url, "pin", names[0], "--note", "before the migration"); code != 0 || !strings.Contains(out, "Pinned "+names[0]) {
		t.Fatalf("pin: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := redback(t, dir, url, "pin", names[0], "--note", "bad\x1bnote"); code != 2 || !strings.Contains(errOut, "control character") {
		t.Fatalf("pin with a control character: %d %s", code, errOut)
	}
	if _, errOut, code := redback(t, dir, url, "delete", names[0]); code != 1 || !strings.Contains(errOut, "is pinned") {
		t.Fatalf("delete of a pinned archive: %d %s", code, errOut)
	}
	out, errOut, code = redback(t, dir, url, "prune", "--keep", "1", "--json")
	if code != 0 || !strings.Contains(out, names[1]) {
		t.Fatalf("prune: %d %s %s", code, out, errOut)
	}
	out, _, _ = redback(t, dir, url, "list")
	if !strings.Contains(out, names[0]) || strings.Contains(out, names[1]) || !strings.Contains(out, names[2]) ||
		!strings.Contains(out, "pinned: before the migration") || !strings.Contains(out, "passed ") {
		t.Fatalf("list after prune --keep 1:\n%s", out)
	}
	out, _, _ = redback(t, dir, url, "list", "--json")
	var l struct {
		Backups []struct {
			Filename    string `json:"filename"`
			Pinned      bool   `json:"pinned"`
			Note        string `json:"note"`
			DrillResult string `json:"drill_result"`
		} `json:"backups"`
	}
	if json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 2 || !l.Backups[0].Pinned || l.Backups[0].Note != "before the migration" ||
		l.Backups[1].DrillResult != "passed" || l.Backups[1].Pinned {
		t.Fatalf("list --json:\n%s", out)
	}
	if _, errOut, code := redback(t, dir, url, "unpin", names[0]); code != 0 {
		t.Fatalf("unpin: %d %s", code, errOut)
	}
	if out, _, code := redback(t, dir, url, "prune", "--keep", "1", "--json"); code != 0 || !strings.Contains(out, names[0]) {
		t.Fatalf("prune after unpin: %d %s", code, out)
	}

	// A damaged archive: one byte changed in storage.
	p := filepath.Join(dir, "backups", names[2])
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = redback(t, dir, url, "drill", "latest", "--server-binary", bin)
	if code != 1 || !strings.Contains(out, "Drill FAILED") || !strings.Contains(errOut, "damaged") {
		t.Fatalf("drill of a damaged archive: %d\n%s\n%s", code, out, errOut)
	}
	if out, _, _ := redback(t, dir, url, "list"); !strings.Contains(out, "failed ") {
		t.Fatalf("list after a failed drill:\n%s", out)
	}
}
