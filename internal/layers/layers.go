// Package layers states which packages of redback may import which, and
// checks it (`make lint` and `go test ./internal/layers`): the rules keep
// the outer ring thin, so that everything reaches Redis and storage through
// agent.Service.
package layers

import (
	"fmt"
	"strings"
)

// Module is redback's module path.
const Module = "github.com/redback-dev/redback"

// A Rule forbids the packages matching From to import the packages
// matching any of Not directly. A pattern is a package path relative to
// the module ("api"), an external path ("github.com/redis/go-redis/v9"),
// or either ending in "/..." for the package and everything below it.
type Rule struct {
	From string
	Not  []string
	Why  string
}

// Rules are redback's layering rules.
var Rules = []Rule{
	{From: "api", Not: []string{"sinks/...", "agent/engine/...", "codec/...", "github.com/redis/go-redis/...", "agent/scheduled", "agent/daemon"},
		Why: "the API reaches Redis and storage only through agent.Service"},
	{From: "api/console", Not: []string{"api", "agent", "agent/...", "sinks/...", "codec/...", "github.com/redis/go-redis/..."},
		Why: "the web console is static assets that speak to the agent only through the API, over HTTP"},
	{From: "cmd/...", Not: []string{"agent/engine/...", "sinks/...", "codec/...", "github.com/redis/go-redis/..."},
		Why: "the command line parses flags and wires; the agent and the codec do the work"},
	{From: "agent/scheduled", Not: []string{"sinks/...", "agent/engine/...", "codec/...", "github.com/redis/go-redis/..."},
		Why: "a scheduled backup goes through agent.Service"},
	{From: "agent/daemon", Not: []string{"sinks/...", "agent/engine/...", "codec/...", "github.com/redis/go-redis/...", "api/..."},
		Why: "the daemon owns Services, schedulers and leases; it knows nothing below them nor the API"},
	{From: "agent/scheduler", Not: []string{"agent", "agent/engine/...", "sinks/...", "codec/..."},
		Why: "the scheduler only knows when to run a Backuper"},
	{From: "agent/engine/...", Not: []string{"agent", "sinks/...", "api/...", "cmd/...", "agent/config"},
		Why: "the engine moves keys between Redis and the codec, nothing else"},
	{From: "agent/engine/rdbvalue", Not: []string{"agent/engine", "agent/engine/rdbfile"},
		Why: "rdbvalue owns the RDB encodings (listpack, ziplist, intset, zipmap, LZF, CRC-64, the DUMP footer) that the RDB reader and the engine reuse: it needs neither"},
	{From: "agent/engine/rdbfile", Not: []string{"agent/engine"},
		Why: "the RDB reader stands beside rdbvalue (whose decoders it reuses), below the engine"},
	{From: "agent/archiving", Not: []string{"agent", "api/...", "cmd/...", "agent/config", "agent/daemon", "agent/scheduled", "agent/engine"},
		Why: "the archiver stores the replication stream (replica's protocol, codec's layers, sinks' segments) and replays it; bases and configuration are agent.Service's"},
	{From: "codec/...", Not: []string{"agent/...", "agent", "sinks/...", "api/...", "cmd/...", "github.com/redis/go-redis/..."},
		Why: "the archive format stands alone"},
	{From: "sinks/...", Not: []string{"agent/...", "agent", "codec/...", "api/...", "cmd/...", "github.com/redis/go-redis/..."},
		Why: "storage knows archives as named bytes and manifests"},
}

// match reports whether the import path p matches pattern.
func match(pattern, p string) bool {
	full := pattern
	if !strings.Contains(strings.SplitN(pattern, "/", 2)[0], ".") {
		full = Module + "/" + pattern
	}
	if base, ok := strings.CutSuffix(full, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == full
}

// Check returns one message for every import in imports (a package path ->
// the paths it imports directly) that a rule forbids.
func Check(rules []Rule, imports map[string][]string) []string {
	var out []string
	for pkg, imps := range imports {
		for _, r := range rules {
			if !match(r.From, pkg) {
				continue
			}
			for _, imp := range imps {
				for _, not := range r.Not {
					if match(not, imp) {
						out = append(out, fmt.Sprintf("%s imports %s: %s", strings.TrimPrefix(pkg, Module+"/"), imp, r.Why))
					}
				}
			}
		}
	}
	return out
}
