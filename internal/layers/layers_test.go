package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLayering checks the rules against the module's packages (their
// non-test imports, as `go list` reports them).
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		imports[f[0]] = f[1:]
	}
	for _, must := range []string{"api", "cmd/redback", "agent/engine", "codec", "sinks", "agent/daemon"} {
		if _, ok := imports[Module+"/"+must]; !ok {
			t.Fatalf("go list did not report %s: the rules would check nothing", must)
		}
	}
	for _, msg := range Check(Rules, imports) {
		t.Error(msg)
	}
}

// TestCheckFindsForbiddenImports: the checker itself flags what the rules
// forbid and nothing else.
func TestCheckFindsForbiddenImports(t *testing.T) {
	imports := map[string][]string{
		Module + "/api":                   {Module + "/agent", Module + "/sinks", "github.com/redis/go-redis/v9"},
		Module + "/cmd/redback":           {Module + "/agent/engine", Module + "/agent", "filippo.io/age", Module + "/codec"},
		Module + "/agent/engine/rdbvalue": {Module + "/agent", Module + "/agent/engine/rdbfile"},
		Module + "/agent/engine/rdbfile":  {Module + "/agent/engine/rdbvalue"}, // allowed: it reuses rdbvalue's decoders
		Module + "/agent/enginex":         {Module + "/sinks"},                 // not agent/engine/...
		Module + "/codec":                 {"filippo.io/age", Module + "/internal/pipe"},
	}
	got := Check(Rules, imports)
	slices.Sort(got)
	var pairs []string
	for _, g := range got {
		pairs = append(pairs, strings.SplitN(g, ":", 2)[0])
	}
	slices.Sort(pairs)
	want := []string{
		"agent/engine/rdbvalue imports " + Module + "/agent",
		"agent/engine/rdbvalue imports " + Module + "/agent/engine/rdbfile",
		"api imports " + Module + "/sinks",
		"api imports github.com/redis/go-redis/v9",
		"cmd/redback imports " + Module + "/agent/engine",
		"cmd/redback imports " + Module + "/codec",
	}
	slices.Sort(want)
	if !slices.Equal(pairs, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(pairs, "\n"), strings.Join(want, "\n"))
	}
}
