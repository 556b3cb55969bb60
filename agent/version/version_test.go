package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201100000-abcdef123456+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abcdef1234567890abcdef1234567890abcdef12"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		}}
	for _, c := range []struct {
		name              string
		bi                *debug.BuildInfo
		ver, rev, when    string
		want              Info
		wantLine, wantNot string
	}{
		{name: "build info only", bi: vcs,
			want: Info{Version: "v0.0.0-20261201100000-abcdef123456+dirty", Revision: "abcdef1234567890abcdef1234567890abcdef12",
				Time: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8"},
			wantLine: "redback v0.0.0-20261201100000-abcdef123456+dirty (abcdef123456, 2026-12-01T10:00:00Z, modified) go1.26.8"},
		{name: "stamped wins", bi: vcs, ver: "v1.2.3", rev: "feedbeef", when: "2027-01-02T03:04:05Z",
			want:     Info{Version: "v1.2.3", Revision: "feedbeef", Time: "2027-01-02T03:04:05Z", GoVersion: "go1.26.8"},
			wantLine: "redback v1.2.3 (feedbeef, 2027-01-02T03:04:05Z) go1.26.8", wantNot: "modified"},
		{name: "devel without vcs", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want:     Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: "go1.26.8"},
			wantLine: "redback unknown (unknown, unknown) go1.26.8", wantNot: "devel"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := from(c.bi, c.ver, c.rev, c.when)
			got.Platform = "" // the test's own
			if got != c.want {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			line := got.String()
			if !strings.HasPrefix(line, c.wantLine) || (c.wantNot != "" && strings.Contains(line, c.wantNot)) {
				t.Fatalf("String() = %q, want prefix %q without %q", line, c.wantLine, c.wantNot)
			}
		})
	}
	if in := from(nil, "", "", ""); in.Version != Unknown || in.GoVersion == "" {
		t.Fatalf("no build info: %+v", in)
	}
}
