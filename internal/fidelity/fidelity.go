// Package fidelity checks that a backup and restore keep a server's data
// exactly: Fill writes every type in every internal encoding the server has
// (with the edge cases that break copies: binary bytes, special scores, hash
// field TTLs, stream consumer groups, module types), Snapshot reads a
// server's whole logical state into a Go value, and Diff compares two
// snapshots with explicit tolerances.
//
// Snapshot reads values with ordinary commands (GET, LRANGE, HGETALL,
// XINFO STREAM FULL, VEMB, ...), never with DUMP, so that it can compare
// servers of different kinds and versions; only types it does not know are
// compared by their DUMP payload.
package fidelity

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Caps is what a server can hold, as Probe finds it.
type Caps struct {
	Kind    string // "redis" or "valkey"
	Version string // the server's own version (valkey_version on Valkey)
	// FieldTTLs: the server keeps expiry times on hash fields (HPEXPIRE).
	FieldTTLs bool
	// VectorSets: the server has Redis 8's vector sets (VADD).
	VectorSets bool
	// ListpackLists and ListpackSets: small lists and small sets of strings
	// are listpacks (Redis 7.2 and later, every Valkey); before, small lists
	// are quicklists and small sets of strings hash tables.
	ListpackLists bool
	ListpackSets  bool
	// Databases is the server's number of databases.
	Databases int
}

// String is "redis 8.0.2 (field TTLs, vector sets)".
func (c Caps) String() string {
	var has []string
	if c.FieldTTLs {
		has = append(has, "field TTLs")
	}
	if c.VectorSets {
		has = append(has, "vector sets")
	}
	s := c.Kind + " " + c.Version
	if len(has) > 0 {
		s += " (" + strings.Join(has, ", ") + ")"
	}
	return s
}

// Probe asks the server what it is and what it has: INFO server for its
// kind and version, COMMAND INFO for hash field TTLs and vector sets.
func Probe(ctx context.Context, c *redis.Client) (Caps, error) {
	text, err := c.Info(ctx, "server").Result()
	if err != nil {
		return Caps{}, fmt.Errorf("INFO server: %w", err)
	}
	info := map[string]string{}
	for line := range strings.SplitSeq(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			info[k] = v
		}
	}
	caps := Caps{Kind: "redis", Version: info["redis_version"]}
	if info["server_name"] == "valkey" || info["valkey_version"] != "" {
		caps.Kind, caps.Version = "valkey", info["valkey_version"]
	}
	if caps.Version == "" {
		return Caps{}, fmt.Errorf("INFO server reports no version")
	}
	if caps.FieldTTLs, err = hasCommand(ctx, c, "HPEXPIRE"); err != nil {
		return Caps{}, err
	}
	if caps.VectorSets, err = hasCommand(ctx, c, "VADD"); err != nil {
		return Caps{}, err
	}
	newer := caps.Kind == "valkey" || versionAtLeast(caps.Version, 7, 2)
	caps.ListpackLists, caps.ListpackSets = newer, newer
	dbs, err := c.ConfigGet(ctx, "databases").Result()
	if err != nil {
		return Caps{}, fmt.Errorf("CONFIG GET databases: %w", err)
	}
	caps.Databases, _ = strconv.Atoi(dbs["databases"])
	return caps, nil
}

// hasCommand reports whether COMMAND INFO knows name.
func hasCommand(ctx context.Context, c *redis.Client, name string) (bool, error) {
	v, err := c.Do(ctx, "COMMAND", "INFO", name).Slice()
	if err != nil {
		return false, fmt.Errorf("COMMAND INFO %s: %w", name, err)
	}
	return len(v) == 1 && v[0] != nil, nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	ma, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	mi := 0
	if len(parts) > 1 {
		mi, _ = strconv.Atoi(parts[1])
	}
	return ma > major || ma == major && mi >= minor
}

// KeyRef names one key of one database.
type KeyRef struct {
	DB  int
	Key string
}

func (k KeyRef) String() string { return fmt.Sprintf("db %d key %s", k.DB, quote(k.Key)) }

// quote renders bytes for a message: quoted, at most 80 bytes.
func quote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// dbClient returns a client like c for database db (the caller closes it).
func dbClient(c *redis.Client, db int) *redis.Client {
	o := *c.Options()
	o.DB = db
	o.Protocol = 2
	return redis.NewClient(&o)
}
