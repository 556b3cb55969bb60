package agent

import (
	"io"
	"os/exec"
	"strings"
	"testing"
)

// pyCheck feeds r to Python's json module: the archive must be standard JSON.
func pyCheck(t *testing.T, r io.Reader) {
	t.Helper()
	cmd := exec.Command("python3", "-c", "import json,sys; d=json.load(sys.stdin); print(len(d['data']))")
	cmd.Stdin = r
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 json.load: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) == "0" {
		t.Fatalf("python3 read no keys in data")
	}
}
