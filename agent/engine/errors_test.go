package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
)

// The engine tells errors apart by type and by code; the message is read
// only for ERR replies (errMessageIs).
func TestErrorClasses(t *testing.T) {
	busy := replyError("BUSYKEY Target key name already exists.")
	wrapped := fmt.Errorf("redis write: %w", busy)
	unknown := replyError("ERR unknown command 'RESTORE', with args beginning with: ")
	readonly := replyError("READONLY You can't write against a read only replica.")
	noperm := replyError("NOPERM User u has no permissions to run the 'restore' command")
	netErr := &net.OpError{Op: "read", Net: "unix", Err: errors.New("connection reset by peer")}
	for _, c := range []struct {
		name string
		got  bool
		want bool
	}{
		{"BUSYKEY has its code", hasCode(busy, "BUSYKEY"), true},
		{"a wrapped BUSYKEY has its code", hasCode(wrapped, "BUSYKEY"), true},
		{"BUSYKEY is not WRONGTYPE", isWrongType(busy), false},
		{"WRONGTYPE", isWrongType(replyError("WRONGTYPE Operation against a key holding the wrong kind of value")), true},
		{"a plain error with a reply's text is no reply", hasCode(errors.New("BUSYKEY x"), "BUSYKEY"), false},
		{"unknown command by its message", errMessageIs(unknown, "unknown command"), true},
		{"the message is read only for ERR replies", errMessageIs(busy, "Target key"), false},
		{"a payload RESTORE refuses", errMessageIs(replyError("ERR DUMP payload version or checksum are wrong"), "DUMP payload version"), true},
		{"READONLY stops a restore", isFatal(readonly), true},
		{"NOPERM stops a restore", isFatal(noperm), true},
		{"NOAUTH stops a restore", isFatal(replyError("NOAUTH Authentication required.")), true},
		{"LOADING stops a restore", isFatal(replyError("LOADING Redis is loading the dataset in memory")), true},
		{"MASTERDOWN stops a restore", isFatal(replyError("MASTERDOWN Link with MASTER is down")), true},
		{"BUSYKEY fails one key", failsOneKey(busy), true},
		{"ERR fails one key", failsOneKey(replyError("ERR Bad data format")), true},
		{"READONLY does not fail one key only", failsOneKey(readonly), false},
		{"a lost connection stops a restore", failsOneKey(netErr), false},
		{"a cancelled context stops a restore", failsOneKey(fmt.Errorf("redis write: %w", context.Canceled)), false},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v", c.name, c.got)
		}
	}
}
