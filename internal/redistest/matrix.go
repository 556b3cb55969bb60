package redistest

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Matrix names the servers that tests run against, oldest first: each is
// KIND-VERSION, the server it starts reporting that kind and a version that
// starts with VERSION (valkey-8.1 is a Valkey 8.1.x, redis-8 a Redis 8.x).
// scripts/install-servers.sh (run by `make test`) unpacks them from Debian's
// archive:
//
//	redis-7.0   bookworm's redis-server (the system one)
//	valkey-8.0  bookworm-backports' valkey-server
//	redis-8.0   trixie's redis-server
//	valkey-8.1  trixie's valkey-server
//	redis-8     the newest redis-server 8.x of forky and sid
//	valkey-9    the newest valkey-server 9.x of forky and sid
var Matrix = []string{"redis-7.0", "valkey-8.0", "redis-8.0", "valkey-8.1", "redis-8", "valkey-9"}

// CacheDir is the folder scripts/install-servers.sh fills:
// REDBACK_SERVER_CACHE, or ~/.cache/redback-servers. The servers' wrappers
// are in its bin/.
func CacheDir() (string, error) {
	if d := os.Getenv("REDBACK_SERVER_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home folder for the server cache (set REDBACK_SERVER_CACHE): %w", err)
	}
	return filepath.Join(home, ".cache", "redback-servers"), nil
}

// BinaryFor returns the executable of the Matrix server name: its wrapper in
// CacheDir()/bin. redis-7.0 may also be the system's redis-server, when that
// is a 7.0. A server that is not installed is an error that says to run
// scripts/install-servers.sh.
func BinaryFor(name string) (string, error) {
	if !slices.Contains(Matrix, name) {
		return "", fmt.Errorf("unknown server %q (the matrix is %s)", name, strings.Join(Matrix, ", "))
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "bin", name)
	st, err := os.Stat(p)
	if err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if name == "redis-7.0" {
		if sys, err := exec.LookPath("redis-server"); err == nil {
			out, err := exec.Command(sys, "--version").Output()
			if err == nil && strings.Contains(string(out), " v=7.0.") {
				return sys, nil
			}
		}
	}
	return "", fmt.Errorf("server %s is not installed (no %s): run scripts/install-servers.sh (make test-deps)", name, p)
}

// StartServer starts the Matrix server name for t, like Start, and stops it
// when t ends. It fails t when the server is not installed or does not start.
func StartServer(t testing.TB, name string, extra ...string) *Server {
	t.Helper()
	s, err := StartDirServer(t.TempDir(), name, extra...)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartDirServer starts the Matrix server name in dir (which must exist),
// like StartDir. The caller stops it.
func StartDirServer(dir, name string, extra ...string) (*Server, error) {
	bin, err := BinaryFor(name)
	if err != nil {
		return nil, err
	}
	return startDir(dir, name, bin, extra)
}

// Info returns the fields of INFO section (all of them for ""), asked over
// the server's socket. It needs no password: it fails on a server started
// with --requirepass.
func (s *Server) Info(section string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, Protocol: 2})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := []any{"INFO"}
	if section != "" {
		args = append(args, section)
	}
	text, err := c.Do(ctx, args...).Text()
	if err != nil {
		return nil, err
	}
	return ParseInfo(text), nil
}

// ParseInfo parses the text of an INFO reply into its fields.
func ParseInfo(text string) map[string]string {
	m := make(map[string]string)
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// KindVersion tells which server INFO server fields describe: "valkey" and
// valkey_version for a Valkey (server_name:valkey; its redis_version is a
// fixed 7.2.4 for compatibility), "redis" and redis_version otherwise.
func KindVersion(info map[string]string) (kind, version string) {
	if info["server_name"] == "valkey" {
		return "valkey", info["valkey_version"]
	}
	return "redis", info["redis_version"]
}

// Version returns the kind ("redis" or "valkey") and version (such as
// "8.1.1") the running server reports in INFO server.
func (s *Server) Version() (kind, version string, err error) {
	info, err := s.Info("server")
	if err != nil {
		return "", "", err
	}
	kind, version = KindVersion(info)
	if version == "" {
		return "", "", fmt.Errorf("INFO server reports no version")
	}
	return kind, version, nil
}

// VersionAtLeast reports whether version ("8.1.1", "7.4") is major.minor or
// later. A version that does not parse is not.
func VersionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	maj, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	mnr := 0
	if len(parts) > 1 {
		if mnr, err = strconv.Atoi(parts[1]); err != nil {
			return false
		}
	}
	return maj > major || maj == major && mnr >= minor
}

// DumpRDBVersion returns the RDB version of the DUMP payload of key: the two
// bytes, little-endian, before the payload's 8-byte CRC64 trailer (10 for
// Redis 7.0, 11 for 7.2 and Valkey 8, 12 for Redis 8.0, 80 for Valkey 9).
func DumpRDBVersion(ctx context.Context, c *redis.Client, key string) (int, error) {
	p, err := c.Dump(ctx, key).Bytes()
	if err != nil {
		return 0, fmt.Errorf("DUMP %s: %w", key, err)
	}
	if len(p) < 11 {
		return 0, fmt.Errorf("DUMP %s: a payload of %d bytes", key, len(p))
	}
	return int(binary.LittleEndian.Uint16(p[len(p)-10:])), nil
}
