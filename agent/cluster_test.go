package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// clusterImage copies a cluster's keys into a fresh server (with the
// server's own DUMP and RESTORE), for Compare.
func clusterImage(t *testing.T, cl *redistest.Cluster) *redistest.Server {
	t.Helper()
	img := redistest.StartServer(t, serverOf(cl))
	must(t, cl.CopyTo(context.Background(), img.Client(t, 0)))
	return img
}

func serverOf(cl *redistest.Cluster) string {
	if cl.Name == "" {
		return "redis-7.0"
	}
	return cl.Name
}

var clusterSpec = datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 3000, BigString: 2 << 20, Streams: 2, Seed: 21}

func TestClusterBackupToSingleServer(t *testing.T) {
	for _, name := range []string{"redis-7.0", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cl := redistest.StartCluster(t, name, 3, 1)
			must(t, datagen.Fill(ctx, cl.Client(t), clusterSpec))
			want, err := cl.Client(t).DBSize(ctx).Result()
			must(t, err)
			store := filepath.Join(t.TempDir(), "b")
			// Any node names the cluster: a replica's URL as well.
			s := newService(t, cl.Nodes[len(cl.Nodes)-1].URL(0), store)
			off := false
			start := time.Now()
			res, err := s.Backup(ctx, BackupOptions{Compress: &off})
			must(t, err)
			if res.KeysCount != want {
				t.Fatalf("archive has %d keys, the cluster %d", res.KeysCount, want)
			}
			b, err := os.ReadFile(filepath.Join(store, res.Filename))
			must(t, err)
			head := string(b[:min(len(b), 4096)])
			if !strings.Contains(head, `"mode":"cluster"`) || strings.Count(head, `"read_from":`) != 3 || strings.Contains(head, "127.0.0.1") {
				t.Fatalf("archive header: %s", head[:min(len(head), 800)])
			}
			dst := redistest.StartServer(t, name)
			r := newService(t, dst.URL(0), store)
			rr, err := r.Restore(ctx, res.Filename, RestoreOptions{})
			must(t, err)
			if rr.RestoredCount != want || rr.ErrorCount != 0 {
				t.Fatalf("restore %+v", rr)
			}
			compare(t, clusterImage(t, cl).Client(t, 0), dst.Client(t, 0), start)
		})
	}
}
