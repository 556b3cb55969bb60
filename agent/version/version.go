// Package version says which redback this binary is: its version, the
// commit it was built from and the Go toolchain, from the build information
// that the Go linker records (runtime/debug.ReadBuildInfo) and from what
// `make build` or the Dockerfile stamp with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped values, set at link time:
//
//	go build -ldflags "-X github.com/redback-dev/redback/agent/version.Version=v1.2.3
//	  -X github.com/redback-dev/redback/agent/version.Revision=abc123
//	  -X github.com/redback-dev/redback/agent/version.Time=2026-12-01T10:00:00Z"
//
// Each one left empty is taken from the build information (the module's
// version and the vcs.* settings that `go build` records in a Git working
// tree), else reads "unknown".
var (
	Version  string
	Revision string
	Time     string
)

// Unknown is what a field reads when nothing recorded it.
const Unknown = "unknown"

// Info describes the running binary. Its JSON form is what
// `redback version --json` prints (fields are only ever added).
type Info struct {
	// Version is the release ("v1.2.3"), a Go pseudo-version of the
	// commit ("v0.0.0-20261201100000-abcdef123456"), or "unknown"
	// ("(devel)" from the build information counts as unknown).
	Version string `json:"version"`
	// Revision is the commit (VCS revision) built, Time its commit time
	// (RFC 3339), Modified whether the working tree had changes.
	Revision string `json:"revision"`
	Time     string `json:"time"`
	Modified bool   `json:"modified"`
	// GoVersion is the toolchain that built the binary ("go1.26.8").
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(bi, Version, Revision, Time)
}

// from builds an Info from bi (may be nil) and the stamped values, which
// win over bi's.
func from(bi *debug.BuildInfo, version, revision, when string) Info {
	in := Info{Version: version, Revision: revision, Time: when, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if in.Version == "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Revision == "" {
					in.Revision = s.Value
				}
			case "vcs.time":
				if in.Time == "" {
					in.Time = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	// go build's pseudo-versions end in "+dirty", git describe --dirty's
	// in "-dirty".
	if strings.HasSuffix(in.Version, "+dirty") || strings.HasSuffix(in.Version, "-dirty") {
		in.Modified = true
	}
	for _, f := range []*string{&in.Version, &in.Revision, &in.Time} {
		if *f == "" {
			*f = Unknown
		}
	}
	return in
}

// String is the one line of `redback version`:
// "redback v1.2.3 (abcdef123456, 2026-12-01T10:00:00Z, modified) go1.26.8 linux/amd64".
func (in Info) String() string {
	rev := in.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	details := rev + ", " + in.Time
	if in.Modified {
		details += ", modified"
	}
	return fmt.Sprintf("redback %s (%s) %s %s", in.Version, details, in.GoVersion, in.Platform)
}
