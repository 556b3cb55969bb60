// The target's thresholds for its compact encodings, so that RESTORE
// payloads are written in the encodings it would keep (rdbvalue.Encoder).

package engine

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// compactLimits reads the target's *-max-listpack-* and
// set-max-intset-entries settings. Where CONFIG is refused (managed
// services rename it) or a setting is missing (older servers), the
// defaults stand: a value written compact beyond a lowered threshold is
// still loaded correctly, the server converts it at its next write.
func compactLimits(ctx context.Context, c redis.UniversalClient) rdbvalue.Limits {
	lim := rdbvalue.DefaultLimits()
	m, err := c.ConfigGet(ctx, "*-max-*").Result()
	if err != nil {
		return lim
	}
	for name, field := range map[string]*int{
		"hash-max-listpack-entries": &lim.HashEntries,
		"hash-max-listpack-value":   &lim.HashValue,
		"zset-max-listpack-entries": &lim.ZSetEntries,
		"zset-max-listpack-value":   &lim.ZSetValue,
		"set-max-listpack-entries":  &lim.SetEntries,
		"set-max-listpack-value":    &lim.SetValue,
		"set-max-intset-entries":    &lim.IntsetEntries,
		"list-max-listpack-size":    &lim.ListFill,
	} {
		if v, err := strconv.Atoi(m[name]); err == nil && m[name] != "" {
			*field = v
		}
	}
	return lim
}
