// Errors: how the engine tells Redis errors apart (those that stop a restore,
// those that fail one key, and the replies it acts on: BUSYKEY, WRONGTYPE,
// NOSCRIPT...), and how it words them.
//
// A Redis error reply starts with a code, its first word. The engine tells
// replies from other failures (a lost connection, a timeout, a cancelled
// context) by type (redis.Error, which replyError implements too), and
// replies from each other by their code (hasCode, go-redis's typed errors);
// where Redis gives no code but the generic ERR, by the message, in
// errMessageIs alone.

package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// wrapRedis adds context to a Redis error.
func wrapRedis(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis %s: %w", op, explainScriptACL(err))
}

// quoteKey renders a key for an error message: quoted, at most 100 bytes.
func quoteKey(k []byte) string {
	if len(k) > 100 {
		return strconv.Quote(string(k[:100])) + "..."
	}
	return strconv.Quote(string(k))
}

// isReply reports whether err is (or wraps) an error reply of the server,
// as opposed to a failure to reach it or to read its answer.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// hasCode reports whether err is an error reply whose code (its first word)
// begins with code.
func hasCode(err error, code string) bool {
	return redis.HasErrorPrefix(err, code)
}

// errMessageIs reports whether err is an error reply with the generic ERR
// code whose message begins with msg. Redis gives some refusals no code of
// their own: an unknown (or renamed) command, a RESTORE payload it cannot
// load ("DUMP payload version or checksum are wrong", "Bad data format"),
// XINFO of a missing key ("no such key"), an option it does not know
// ("syntax error"). The message is then all there is to tell them apart, and
// this is the one place that reads it; the wording is the same on Redis 7.0
// to 8 and Valkey 8 and 9.
func errMessageIs(err error, msg string) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	rest, ok := strings.CutPrefix(re.Error(), "ERR ")
	return ok && strings.HasPrefix(rest, msg)
}

// isWrongType reports whether err is a WRONGTYPE reply (the key changed type
// between two reads).
func isWrongType(err error) bool { return hasCode(err, "WRONGTYPE") }

// isFatal reports errors after which no further write can succeed: the
// server is a replica now (READONLY), the user may not write (NOPERM,
// NOAUTH), the server is loading its data (LOADING) or cut off from its
// primary (MASTERDOWN).
func isFatal(err error) bool {
	return redis.IsReadOnlyError(err) || redis.IsPermissionError(err) || hasCode(err, "NOAUTH") ||
		redis.IsLoadingError(err) || redis.IsMasterDownError(err)
}

// failsOneKey reports whether err is the server's refusal of one command
// (pipelines return the first of those; the others are on their commands):
// the key it wrote fails, the restore goes on. Any other error (a fatal
// reply, a lost connection, a timeout, the end of the context) stops it.
func failsOneKey(err error) bool {
	return isReply(err) && !isFatal(err)
}
