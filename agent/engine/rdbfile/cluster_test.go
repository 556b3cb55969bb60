package rdbfile

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

// TestClusterSlotInfo saves a single-node cluster: Redis 7.4+ writes
// SLOT_INFO before the keys of each slot, which must match CLUSTER
// COUNTKEYSINSLOT. (Of the matrix only redis-8.0 and redis-8 write it:
// Redis 7.0 predates it, Valkey reads it but does not write it, which
// redis-7.0 and valkey-9 confirm here.)
func TestClusterSlotInfo(t *testing.T) {
	names := []string{"redis-7.0", "redis-8.0", "redis-8", "valkey-9"}
	ctx := context.Background()
	// Start them all first: a new cluster node takes about 2 s to report
	// an ok state.
	servers := map[string]*redistest.Server{}
	for _, name := range names {
		s := redistest.StartServer(t, name, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
		do(t, s.Client(t, 0), "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
		servers[name] = s
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := servers[name]
			f := featuresOf(t, s)
			c := s.Client(t, 0)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(c.ClusterInfo(ctx).Val(), "cluster_state:ok") {
				if time.Now().After(deadline) {
					t.Fatal("cluster state not ok")
				}
				time.Sleep(20 * time.Millisecond)
			}
			for i := range 12 {
				tag := []string{"a", "b", "c"}[i%3]
				do(t, c, "SET", fmt.Sprintf("{%s}k%d", tag, i), i)
				if i%4 == 0 {
					do(t, c, "PEXPIRE", fmt.Sprintf("{%s}k%d", tag, i), 3600_000)
				}
			}
			do(t, c, "HSET", "{a}h", "f", "v")
			data := save(t, s)
			if *update && name == "redis-8" {
				must(t, os.WriteFile(filepath.Join("testdata", name+"-cluster.rdb"), data, 0o644))
			}
			m, err := collect(bytes.NewReader(data), collectOpts{})
			must(t, err)
			if len(m.Keys) != 13 {
				t.Errorf("%d keys", len(m.Keys))
			}
			if !(f.kind == "redis" && redistest.VersionAtLeast(f.version, 7, 4)) {
				if len(m.Slots) != 0 {
					t.Errorf("slot info %v from %s %s", m.Slots, f.kind, f.version)
				}
				return
			}
			if len(m.Slots) != 3 {
				t.Errorf("slot info %v, want 3 slots", m.Slots)
			}
			for _, si := range m.Slots {
				n := c.ClusterCountKeysInSlot(ctx, int(si.Slot)).Val()
				if int64(si.Size) != n {
					t.Errorf("slot %d: size %d, COUNTKEYSINSLOT %d", si.Slot, si.Size, n)
				}
				if si.ExpiresSize == 0 || si.ExpiresSize >= si.Size {
					t.Errorf("slot %d: %d keys with expiry of %d", si.Slot, si.ExpiresSize, si.Size)
				}
			}
		})
	}
}
