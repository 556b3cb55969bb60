// Inspect: what a dump learns of the server before it starts (version, role,
// mode, key counts, memory).

package engine

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ModeCluster is ServerFacts.Mode of a Redis Cluster (or Valkey cluster) node.
const ModeCluster = "cluster"

// ErrCluster refuses to read a cluster node as if it were the whole
// deployment (its keys are one shard's) where the cluster as a whole is
// not supported yet (diff --live).
var ErrCluster = errors.New("the Redis URL names a node of a Redis Cluster, which holds only its own shard's slots: comparing a live cluster is not supported yet (back it up and compare the archive)")

// ServerFacts describes the server, for the archive header and for stats.
type ServerFacts struct {
	RedisVersion string // INFO's redis_version (7.2.4 on every Valkey)
	Server       Server // kind and own version
	Role         string
	Mode         string
	// KeysPerDB is the key count of every database that holds keys.
	KeysPerDB  map[int]int64
	UsedMemory int64
	// DatasetMemory is INFO's used_memory_dataset: what the keys take,
	// without the server's own overhead (what a restore of them needs).
	DatasetMemory int64
}

// Databases returns the numbers of KeysPerDB, ascending.
func (f ServerFacts) Databases() []int {
	dbs := make([]int, 0, len(f.KeysPerDB))
	for db := range f.KeysPerDB {
		dbs = append(dbs, db)
	}
	sort.Ints(dbs)
	return dbs
}

// modeOf is INFO server's mode: redis_mode, or server_mode (Valkey 8 and
// later).
func modeOf(info map[string]string) string {
	if m := info["redis_mode"]; m != "" {
		return m
	}
	return info["server_mode"]
}

// Inspect reads the server's version, role, mode and key counts.
func Inspect(ctx context.Context, base *redis.Options) (ServerFacts, error) {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "server", "replication", "keyspace", "memory")
	if err != nil {
		return ServerFacts{}, err
	}
	f := ServerFacts{
		RedisVersion: info["redis_version"],
		Server:       serverOf(info),
		Role:         info["role"],
		Mode:         info["redis_mode"],
		KeysPerDB:    map[int]int64{},
	}
	f.Mode = modeOf(info)
	f.UsedMemory, _ = strconv.ParseInt(info["used_memory"], 10, 64)
	f.DatasetMemory, _ = strconv.ParseInt(info["used_memory_dataset"], 10, 64)
	for k, v := range info {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		db, err := strconv.Atoi(k[2:])
		if err != nil {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(part, "keys="); ok {
				if keys, err := strconv.ParseInt(n, 10, 64); err == nil && keys > 0 {
					f.KeysPerDB[db] = keys
				}
			}
		}
	}
	return f, nil
}
