package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// `redback version`, `--version` and `version --json` say the same, with
// the Go version; a binary from `make build` names the commit it was built
// from.
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{"test", "make"} {
		exe := binary
		var rev string
		if bin == "make" {
			exe = filepath.Join(dir, "redback")
			out, err := exec.Command("git", "rev-parse", "HEAD").Output()
			if err != nil {
				t.Fatalf("git rev-parse HEAD (the test needs the Git working tree): %v", err)
			}
			rev = strings.TrimSpace(string(out))
			if out, err := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+exe).CombinedOutput(); err != nil {
				t.Fatalf("make build: %v\n%s", err, out)
			}
		}
		run := func(args ...string) string {
			t.Helper()
			out, err := exec.Command(exe, args...).Output()
			if err != nil {
				t.Fatalf("%s %v: %v", bin, args, err)
			}
			return string(out)
		}
		line := run("version")
		if flag := run("--version"); flag != line {
			t.Errorf("%s: --version %q, version %q", bin, flag, line)
		}
		if !strings.HasPrefix(line, "redback ") || !strings.Contains(line, runtime.Version()) || strings.Count(line, "\n") != 1 {
			t.Errorf("%s: version line %q", bin, line)
		}
		var in struct {
			Version, Revision, Time string
			GoVersion               string `json:"go_version"`
		}
		if err := json.Unmarshal([]byte(run("version", "--json")), &in); err != nil || in.GoVersion != runtime.Version() {
			t.Fatalf("%s: version --json: %v %+v", bin, err, in)
		}
		if bin == "make" && (in.Revision != rev || in.Version == "unknown" || !strings.Contains(line, rev[:12])) {
			t.Errorf("make build: version %+v (line %q), want revision %s", in, line, rev)
		}
	}
}
