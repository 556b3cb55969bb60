// Checks of a restore target before the first write: CheckTarget (a replica,
// an evicting maxmemory policy) and CheckMemory (room for the data).

package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CheckTarget refuses targets on which a restore would fail or do harm: a
// read-only replica, or a server with a maxmemory that evicts keys when
// full (allkeys-*, and volatile-*, which evicts the keys that have a TTL): a
// restore would silently evict production keys. allowEviction skips the
// second test. A node of a cluster (a replica's too) stands for the
// cluster: every primary is checked.
func CheckTarget(ctx context.Context, base *redis.Options, allowEviction bool) error {
	return eachPrimary(ctx, base, func(o *redis.Options, _ int) error { return checkTarget(ctx, o, allowEviction) })
}

// eachPrimary calls fn with base, or, when base names a node of a cluster,
// with each primary's options in turn (and their number).
func eachPrimary(ctx context.Context, base *redis.Options, fn func(o *redis.Options, n int) error) error {
	seeds, err := clusterSeeds(ctx, base)
	if err != nil {
		return err
	}
	if seeds == nil {
		return fn(base, 1)
	}
	for _, addr := range seeds {
		o := *base
		o.Network, o.Addr, o.DB = "tcp", addr, 0
		if err := fn(&o, len(seeds)); err != nil {
			return fmt.Errorf("cluster node %s: %w", addr, err)
		}
	}
	return nil
}

func checkTarget(ctx context.Context, base *redis.Options, allowEviction bool) error {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "replication", "memory")
	if err != nil {
		return err
	}
	if info["role"] == "slave" {
		return errors.New("the target Redis is a read-only replica: restore into its primary")
	}
	policy := info["maxmemory_policy"]
	if !allowEviction && info["maxmemory"] != "0" && (strings.HasPrefix(policy, "allkeys-") || strings.HasPrefix(policy, "volatile-")) {
		return fmt.Errorf("the target Redis has maxmemory-policy %s: a restore could evict existing keys; set it to noeviction first (and make room), or pass --allow-eviction", policy)
	}
	return nil
}

// ErrNoRoom is a target without the memory a restore needs.
var ErrNoRoom = errors.New("not enough memory on the target")

// CheckMemory refuses a restore that needs about need bytes (the source's
// dataset memory at backup time; 0 when unknown: nothing is checked) into
// a server that has less room: below its maxmemory, or, without one, below
// the machine's memory. A server that fills up under noeviction refuses
// every write, production's included, so this runs before the first one.
// On a cluster, each primary must have room for its share (need divided
// by the number of primaries).
func CheckMemory(ctx context.Context, base *redis.Options, need int64) error {
	if need <= 0 {
		return nil
	}
	return eachPrimary(ctx, base, func(o *redis.Options, n int) error { return checkMemory(ctx, o, need/int64(n)) })
}

func checkMemory(ctx context.Context, base *redis.Options, need int64) error {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "memory")
	if err != nil {
		return err
	}
	used, _ := strconv.ParseInt(info["used_memory"], 10, 64)
	limit, _ := strconv.ParseInt(info["maxmemory"], 10, 64)
	what := "maxmemory"
	if limit == 0 {
		limit, _ = strconv.ParseInt(info["total_system_memory"], 10, 64)
		what = "the machine's memory"
	}
	if limit > 0 && used+need > limit {
		return fmt.Errorf("%w: the archive's data took about %s on its server, and the target uses %s of %s (%s): free memory or raise maxmemory first, or pass --ignore-memory", ErrNoRoom, mb(need), mb(used), mb(limit), what)
	}
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
