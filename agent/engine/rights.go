// The read rights a SCAN backup needs, checked without reading a key.

package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/redis/go-redis/v9"
)

// CheckBackupRights runs, on a key name that does not exist, every
// command a SCAN backup sends for a small key (SCAN, TYPE, PTTL, MEMORY
// USAGE, DUMP) and loads the backup's script, so that an ACL user that
// lacks one is told before the night's backup fails. It reads no data and
// writes none (a loaded script is only cached). The error names the
// command the server refused.
func CheckBackupRights(ctx context.Context, base *redis.Options) error {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	var b [12]byte
	_, _ = rand.Read(b[:])
	k := "redback:check:" + hex.EncodeToString(b[:])
	for _, args := range [][]any{
		{"SCAN", 0, "COUNT", 1}, {"TYPE", k}, {"PTTL", k}, {"MEMORY", "USAGE", k}, {"DUMP", k},
	} {
		if err := c.Do(ctx, args...).Err(); err != nil && err != redis.Nil {
			return wrapRedis(args[0].(string), err)
		}
	}
	if err := redis.NewScript(metaScript).Load(ctx, c).Err(); err != nil {
		return wrapRedis("SCRIPT LOAD", err)
	}
	return nil
}
