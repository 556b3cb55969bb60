package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestMatrix starts every server of Matrix with the default arguments (and
// so fails when one is not installed: run scripts/install-servers.sh), checks
// that it is the kind and version its name says, that HPEXPIRE works exactly
// on the servers that have hash field expiration (Redis 7.4 and later, Valkey
// 9 and later) and that what Compare needs (DEBUG DIGEST-VALUE) works, and
// logs what else each one has (run with -v to see it).
func TestMatrix(t *testing.T) {
	for _, name := range Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := StartServer(t, name)
			if s.Name != name {
				t.Errorf("Name = %q, want %q", s.Name, name)
			}
			c := s.Client(t, 0)
			if err := c.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING: %v", err)
			}
			kind, version, err := s.Version()
			if err != nil {
				t.Fatal(err)
			}
			wantKind, wantVersion, _ := strings.Cut(name, "-")
			if kind != wantKind || !strings.HasPrefix(version, wantVersion+".") {
				t.Fatalf("%s reports %s %s", name, kind, version)
			}

			hfe := kind == "redis" && VersionAtLeast(version, 7, 4) || kind == "valkey" && VersionAtLeast(version, 9, 0)
			if err := c.HSet(ctx, "h", "f", "v", "g", "w").Err(); err != nil {
				t.Fatal(err)
			}
			got, err := c.Do(ctx, "HPEXPIRE", "h", 100000, "FIELDS", 1, "f").Slice()
			switch {
			case hfe && err != nil:
				t.Errorf("HPEXPIRE on %s %s: %v", kind, version, err)
			case hfe:
				if len(got) != 1 || got[0] != int64(1) {
					t.Errorf("HPEXPIRE = %v, want [1]", got)
				}
				ttl, err := c.Do(ctx, "HPTTL", "h", "FIELDS", 2, "f", "g").Slice()
				if err != nil || len(ttl) != 2 || ttl[0].(int64) <= 0 || ttl[0].(int64) > 100000 || ttl[1] != int64(-1) {
					t.Errorf("HPTTL = %v, %v", ttl, err)
				}
			case err == nil:
				t.Errorf("HPEXPIRE works on %s %s, which should not have it: %v", kind, version, got)
			case !strings.Contains(strings.ToLower(err.Error()), "unknown command"):
				t.Errorf("HPEXPIRE on %s %s: %v, want unknown command", kind, version, err)
			}

			if err := c.Set(ctx, "s", "hello", 0).Err(); err != nil {
				t.Fatal(err)
			}
			d, err := Digest(ctx, c, "s")
			if err != nil || len(d) != 40 {
				t.Errorf("DEBUG DIGEST-VALUE = %q, %v", d, err)
			}
			rdb, err := DumpRDBVersion(ctx, c, "s")
			if err != nil {
				t.Error(err)
			}

			has := func(args ...any) string {
				if err := c.Do(ctx, args...).Err(); err != nil {
					if strings.Contains(strings.ToLower(err.Error()), "unknown command") {
						return "no"
					}
					return "error: " + err.Error()
				}
				return "yes"
			}
			_ = c.XAdd(ctx, &redis.XAddArgs{Stream: "x", ID: "1-1", Values: []any{"a", "1"}}).Err()
			mods, _ := c.Do(ctx, "MODULE", "LIST").Slice()
			t.Logf("%s: %s %s; HPEXPIRE %v, HSETEX %s, VADD %s, XACKDEL %s, JSON.SET %s, BF.ADD %s, TS.CREATE %s, DUMP RDB version %d, modules %v",
				name, kind, version, hfe,
				has("HSETEX", "hx", "PX", 100000, "FIELDS", 1, "f", "v"),
				has("VADD", "vs", "VALUES", 2, 1, 2, "e"),
				has("XACKDEL", "x", "g", "IDS", 1, "1-1"),
				has("JSON.SET", "j", "$", "{}"),
				has("BF.ADD", "b", "e"),
				has("TS.CREATE", "ts"),
				rdb, moduleNames(mods))
		})
	}
}

func moduleNames(mods []any) []string {
	var names []string
	for _, m := range mods {
		switch m := m.(type) {
		case []any: // RESP2: name NAME ver N ...
			for i := 0; i+1 < len(m); i += 2 {
				if m[i] == "name" {
					names = append(names, fmt.Sprint(m[i+1]))
				}
			}
		case map[any]any:
			names = append(names, fmt.Sprint(m["name"]))
		}
	}
	return names
}

func TestBinaryForMissing(t *testing.T) {
	t.Setenv("REDBACK_SERVER_CACHE", t.TempDir())
	for _, name := range []string{"valkey-9", "redis-8"} {
		_, err := BinaryFor(name)
		if err == nil || !strings.Contains(err.Error(), "scripts/install-servers.sh") {
			t.Errorf("BinaryFor(%s) in an empty cache: %v", name, err)
		}
		if _, err := StartDirServer(t.TempDir(), name); err == nil {
			t.Errorf("StartDirServer(%s) in an empty cache succeeded", name)
		}
	}
	if _, err := BinaryFor("redis-6.2"); err == nil || !strings.Contains(err.Error(), "unknown server") {
		t.Errorf("BinaryFor(redis-6.2): %v", err)
	}
}

func TestBinaryForCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("REDBACK_SERVER_CACHE", dir)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "bin", "valkey-8.1")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := BinaryFor("valkey-8.1"); err != nil || got != p {
		t.Errorf("BinaryFor(valkey-8.1) = %q, %v; want %q", got, err, p)
	}
}

func TestKindVersion(t *testing.T) {
	info := ParseInfo("# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.0.1\r\nredis_mode:standalone\r\n")
	if k, v := KindVersion(info); k != "valkey" || v != "9.0.1" {
		t.Errorf("valkey: %s %s", k, v)
	}
	info = ParseInfo("# Server\r\nredis_version:8.0.6\r\nredis_git_sha1:00000000\r\n")
	if k, v := KindVersion(info); k != "redis" || v != "8.0.6" {
		t.Errorf("redis: %s %s", k, v)
	}
	for _, c := range []struct {
		v            string
		major, minor int
		want         bool
	}{
		{"7.4.0", 7, 4, true}, {"7.2.4", 7, 4, false}, {"8.0.2", 7, 4, true},
		{"9.0.0", 9, 0, true}, {"8.1.1", 9, 0, false}, {"10", 9, 0, true},
		{"", 7, 0, false}, {"x.1", 7, 0, false},
	} {
		if got := VersionAtLeast(c.v, c.major, c.minor); got != c.want {
			t.Errorf("VersionAtLeast(%q, %d, %d) = %v", c.v, c.major, c.minor, got)
		}
	}
}
