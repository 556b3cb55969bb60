// The read rights a SCAN backup needs, checked without reading a key.

package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"

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

// BackupACL is the minimal ACL rule set (ACL SETUSER syntax, after the
// key pattern) of a user that backs up by SCAN: the commands a backup
// sends. A cluster's user needs ClusterACL too; on servers that keep hash
// field expiry times (Redis 7.4, Valkey 9 and later) FieldTTLBackupACL.
// docs/ACL.md explains each.
const BackupACL = "-@all +info +select +scan +type +pttl +dump +memory|usage +script|load " +
	"+getrange +hscan +sscan +lrange +zrange +xrange +xinfo"

// FieldTTLBackupACL is what a backup needs in addition on servers that
// keep hash field expiry times: such hashes are read by commands (the
// script that sizes them, HGETALL) with their fields' expiry times.
const FieldTTLBackupACL = "+evalsha +hlen +hgetall +hpexpiretime"

// ClusterACL is what a backup or restore of a cluster needs in addition:
// the topology, and reads on replicas.
const ClusterACL = "+cluster|nodes +readonly"

// RestoreACL is the minimal ACL rule set of a user that restores: RESTORE,
// the writes of keys built under temporary names, and what the restore's
// scripts call. With --overwrite add +unlink, with --ttl absolute
// +pexpireat; on servers that keep hash field expiry times
// FieldTTLRestoreACL; for a cluster ClusterACL.
const RestoreACL = "-@all +ping +info +select +exists +del +restore +set +append +rpush +hset +sadd +zadd " +
	"+zrem +xadd +xsetid +xgroup|create +xgroup|createconsumer +xclaim +pexpire +persist +rename +evalsha +eval"

// FieldTTLRestoreACL is what a restore needs in addition on servers that
// keep hash field expiry times.
const FieldTTLRestoreACL = "+hpexpireat +script|load"

// scriptACLRE finds, in Redis 7.0's refusal of a command inside a script
// ("... can't run this command or subcommand script: SHA, on
// @user_script:LINE."), the script and the line.
var scriptACLRE = regexp.MustCompile(`script: ([0-9a-f]{40}), on @user_script:(\d+)`)

// scriptCallRE finds the command a script line calls.
var scriptCallRE = regexp.MustCompile(`redis\.call\('([A-Za-z]+)'(?:, *'([A-Za-z]+)')?`)

// scriptSources are the engine's scripts by SHA-1.
var scriptSources = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{metaScript, restoreScript, restoreHashScript, finishScript} {
		m[redis.NewScript(s).Hash()] = s
	}
	return m
}()

// explainScriptACL adds to a script's ACL refusal the command it was
// refused (Redis 7.0 names only the script's line).
func explainScriptACL(err error) error {
	if err == nil {
		return nil
	}
	m := scriptACLRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	src, ok := scriptSources[m[1]]
	line, _ := strconv.Atoi(m[2])
	lines := strings.Split(src, "\n")
	if !ok || line < 1 || line > len(lines) {
		return err
	}
	c := scriptCallRE.FindStringSubmatch(lines[line-1])
	if c == nil {
		return err
	}
	cmd := strings.ToLower(c[1])
	if strings.EqualFold(cmd, "memory") && c[2] != "" {
		cmd += "|" + strings.ToLower(c[2])
	}
	return fmt.Errorf("%w (no permissions to run the '%s' command inside the script)", err, cmd)
}
