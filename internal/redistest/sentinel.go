// Sentinel: a primary, its replicas and three sentinels that watch them,
// all throw-away processes of the test.

package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the sentinels of StartSentinels watch.
const SentinelMaster = "mymaster"

// Sentinels is a monitored deployment: Data[0] started as the primary,
// the others as its replicas; Sentinels watch it as SentinelMaster.
type Sentinels struct {
	Data      []*Server
	Sentinels []*Server
}

// StartSentinels starts a primary with replicas replicas and three
// sentinels (quorum 2, a primary down after 1 s), and waits until every
// sentinel knows the primary and its replicas. name is a Matrix server
// ("" for the default). Everything stops when t ends.
func StartSentinels(t testing.TB, name string, replicas int) *Sentinels {
	t.Helper()
	start := func(extra ...string) *Server {
		if name == "" {
			return Start(t, extra...)
		}
		return StartServer(t, name, extra...)
	}
	d := &Sentinels{}
	primary := start()
	d.Data = append(d.Data, primary)
	for i := 0; i < replicas; i++ {
		d.Data = append(d.Data, start("--replicaof", "127.0.0.1", strconv.Itoa(primary.Port), "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"))
	}
	bin, err := Binary()
	if name != "" {
		bin, err = BinaryFor(name)
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			SentinelMaster, primary.Port, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := startDirOn(dir, name, bin, []string{conf, "--sentinel"}, nil, freePort)
		if err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		t.Cleanup(s.Stop)
		d.Sentinels = append(d.Sentinels, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.WaitReplicas(ctx, replicas); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return d
}

// URL is the redis+sentinel:// URL of the deployment, database db.
func (d *Sentinels) URL(db int) string {
	var hosts []string
	for _, s := range d.Sentinels {
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(s.Port))
	}
	return fmt.Sprintf("redis+sentinel://%s/%s/%d", strings.Join(hosts, ","), SentinelMaster, db)
}

// Master returns the data server that the sentinels name master now.
func (d *Sentinels) Master(ctx context.Context) (*Server, error) {
	c := redis.NewSentinelClient(&redis.Options{Network: "unix", Addr: d.Sentinels[0].Socket})
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return nil, err
	}
	for _, s := range d.Data {
		if strconv.Itoa(s.Port) == hp[1] {
			return s, nil
		}
	}
	return nil, fmt.Errorf("master %v is none of the test's servers", hp)
}

// WaitReplicas waits until every sentinel sees n replicas of the master,
// and the master's replicas are in sync.
func (d *Sentinels) WaitReplicas(ctx context.Context, n int) error {
	var why string
	for ctx.Err() == nil {
		why = d.notReady(ctx, n)
		if why == "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("sentinels not ready: %s", why)
}

func (d *Sentinels) notReady(ctx context.Context, n int) string {
	for _, s := range d.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Network: "unix", Addr: s.Socket})
		reps, err := c.Replicas(ctx, SentinelMaster).Result()
		c.Close()
		if err != nil {
			return err.Error()
		}
		up := 0
		for _, r := range reps {
			if !strings.Contains(r["flags"], "down") && r["master-link-status"] == "ok" {
				up++
			}
		}
		if up < n {
			return fmt.Sprintf("sentinel %d sees %d of %d replicas", s.Port, up, n)
		}
	}
	return ""
}

// Failover asks a sentinel to fail the master over, and waits until a
// sentinel names another master and that one answers as a master.
func (d *Sentinels) Failover(ctx context.Context) (*Server, error) {
	old, err := d.Master(ctx)
	if err != nil {
		return nil, err
	}
	c := redis.NewSentinelClient(&redis.Options{Network: "unix", Addr: d.Sentinels[0].Socket})
	defer c.Close()
	if err := c.Failover(ctx, SentinelMaster).Err(); err != nil {
		return nil, fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	for ctx.Err() == nil {
		m, err := d.Master(ctx)
		if err == nil && m != old {
			if info, err := m.Info("replication"); err == nil && info["role"] == "master" {
				return m, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no failover: %w", ctx.Err())
}
