package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/internal/redistest"
)

// verify of an archive that nothing can vouch for (a seed archive copied
// in without its manifest) fails with exit status 1 and records nothing;
// one that carries its own checksum (format version 2) verifies by it.
func TestVerifyIntegrity(t *testing.T) {
	src := redistest.Start(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "backups")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{
		"../../codec/testdata/seed_ascii.json": "redis_backup_20231205_143022.json",
		"../../codec/testdata/v2.json.gz":      "redis_backup_20250611_090000.json.gz",
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seed, v2 := "redis_backup_20231205_143022.json", "redis_backup_20250611_090000.json.gz"
	url := "--redis-url=" + src.URL(0)

	out, errOut, code := redback(t, dir, url, "verify", seed, "--json")
	var res struct {
		Success   bool   `json:"success"`
		Integrity string `json:"integrity"`
		Recorded  bool   `json:"recorded"`
		KeysCount int64  `json:"keys_count"`
		Error     string `json:"error"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || res.Success || res.Recorded || res.Integrity != "none" ||
		res.KeysCount != 8 || !strings.Contains(res.Error, "carries no checksum") || !strings.Contains(errOut, "cannot be verified") {
		t.Fatalf("verify --json of a seed archive: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := redback(t, dir, url, "verify", seed); code != 1 || !strings.Contains(errOut, "cannot be verified") {
		t.Fatalf("verify of a seed archive: exit %d: %s", code, errOut)
	}
	if out, _, _ := redback(t, dir, url, "list", "--json"); strings.Contains(out, `"verified":true`) {
		t.Fatalf("the seed archive is listed as verified:\n%s", out)
	}

	out, errOut, code = redback(t, dir, url, "verify", v2)
	if code != 0 || !strings.Contains(out, "OK "+v2) || !strings.Contains(out, "the archive's own checksum matches") {
		t.Fatalf("verify of a version 2 archive: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = redback(t, dir, url, "verify", v2, "--json")
	if code != 0 || !strings.Contains(out, `"integrity":"manifest+archive"`) {
		t.Fatalf("verify again (now with the manifest written the first time): exit %d\n%s", code, out)
	}
}
