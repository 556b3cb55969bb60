// Server kinds and versions (Redis or Valkey), and what follows from them:
// hash field expiry, RDB versions.

package engine

import (
	"strconv"
	"strings"
)

// Server is a Redis-protocol server's kind and own version, as INFO server
// tells them. Valkey reports redis_version 7.2.4 whatever its release (for
// clients that test it); its real version is valkey_version.
type Server struct {
	Kind    string // "redis" or "valkey"
	Version string // the server's own version, e.g. "8.2.1" or "9.0.0"
}

// serverOf reads the kind and version from INFO server fields.
func serverOf(info map[string]string) Server {
	if v := info["valkey_version"]; v != "" || info["server_name"] == "valkey" {
		if v == "" {
			v = info["redis_version"]
		}
		return Server{Kind: "valkey", Version: v}
	}
	return Server{Kind: "redis", Version: info["redis_version"]}
}

// String is "redis 8.2.1".
func (s Server) String() string {
	if s.Kind == "" {
		return "an unknown server"
	}
	return s.Kind + " " + s.Version
}

// atLeast reports whether the version is at least major.minor.
func (s Server) atLeast(major, minor int) bool {
	ma, mi := versionParts(s.Version)
	return ma > major || ma == major && mi >= minor
}

func versionParts(v string) (int, int) {
	parts := strings.SplitN(v, ".", 3)
	ma, _ := strconv.Atoi(parts[0])
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma, mi
}

// FieldTTLs reports whether the server keeps expiry times on hash fields
// (HPEXPIRE and friends): Redis 7.4 and later, Valkey 9 and later.
func (s Server) FieldTTLs() bool {
	if s.Kind == "valkey" {
		return s.atLeast(9, 0)
	}
	return s.atLeast(7, 4)
}

// RDBVersion is the RDB version of the server's DUMP payloads and RDB
// files: Redis 7.0 10, 7.2 11, 7.4 and 8.x 12; Valkey 7.2 and 8.x 11,
// Valkey 9 80 (Valkey numbers its own RDB versions from 80 on).
func (s Server) RDBVersion() int {
	if s.Kind == "valkey" {
		if s.atLeast(9, 0) {
			return 80
		}
		return 11
	}
	ma, mi := versionParts(s.Version)
	switch {
	case ma >= 8 || ma == 7 && mi >= 4:
		return 12
	case ma == 7 && mi >= 2:
		return 11
	case ma == 7:
		return 10
	case ma >= 5:
		return 9
	}
	return 0
}
