// Clusters: throw-away Redis Cluster (or Valkey cluster) deployments of
// several primaries with replicas on loopback ports, made with the server's
// own cli (--cluster create), resharded and failed over on request.

package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a running cluster owned by a test: Nodes[:Primaries] were made
// primaries by the create, each followed by its replicas (which of them is
// primary now is the cluster's business: see Masters).
type Cluster struct {
	Name      string // the Matrix name; "" for the default server
	Nodes     []*Server
	Primaries int
	cli       string
}

// StartCluster starts primaries*(1+replicas) servers with cluster mode on
// (loopback ports below 55535, the bus port 10000 above), joins them with
// `CLI --cluster create`, waits until every node reports cluster_state:ok,
// and stops them when t ends. name is a Matrix server ("" for the default
// redis-server and the redis-cli on PATH). extra goes to every server.
func StartCluster(t testing.TB, name string, primaries, replicas int, extra ...string) *Cluster {
	t.Helper()
	c, err := startCluster(t, name, primaries, replicas, extra)
	if err != nil {
		t.Fatalf("redistest: cluster: %v", err)
	}
	return c
}

// Owner is what a cluster's processes belong to: a test (testing.TB), or
// a program that removes the folders and stops the processes itself (the
// benchmark).
type Owner interface {
	TempDir() string
	Cleanup(func())
}

// StartClusterFor is StartCluster for an Owner; it returns the error
// instead of failing a test.
func StartClusterFor(o Owner, name string, primaries, replicas int, extra ...string) (*Cluster, error) {
	return startCluster(o, name, primaries, replicas, extra)
}

func startCluster(t Owner, name string, primaries, replicas int, extra []string) (*Cluster, error) {
	bin, cli, err := clusterBinaries(name)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Primaries: primaries, cli: cli}
	args := append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "3000",
		"--cluster-require-full-coverage", "yes",
	}, extra...)
	for i := 0; i < primaries*(1+replicas); i++ {
		s, err := startDirOn(t.TempDir(), name, bin, nil, args, clusterPort)
		if err != nil {
			return nil, err
		}
		t.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}
	create := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		create = append(create, "127.0.0.1:"+strconv.Itoa(s.Port))
	}
	create = append(create, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := c.run(create...); err != nil {
		return nil, fmt.Errorf("--cluster create: %w: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitStable(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// clusterBinaries returns the server and the cli for name.
func clusterBinaries(name string) (bin, cli string, err error) {
	if name == "" {
		if bin, err = Binary(); err != nil {
			return "", "", err
		}
		cli, err = exec.LookPath("redis-cli")
		if err != nil {
			return "", "", fmt.Errorf("redis-cli not found (install redis-tools): %w", err)
		}
		return bin, cli, nil
	}
	if bin, err = BinaryFor(name); err != nil {
		return "", "", err
	}
	cli = bin + "-cli"
	if _, err := exec.LookPath(cli); err != nil {
		return "", "", fmt.Errorf("no cli for %s (%s): run scripts/install-servers.sh: %w", name, cli, err)
	}
	return bin, cli, nil
}

// clusterPort picks a free loopback port below 55535 whose bus port
// (+10000) is free too.
func clusterPort() (int, error) {
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(35000)
		if free(p) && free(p+10000) {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for a cluster node")
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func (c *Cluster) run(args ...string) (string, error) {
	cmd := exec.Command(c.cli, args...)
	out, err := cmd.CombinedOutput()
	s := string(out)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s, err
}

// URL is a redis:// URL of the first node (any node names the cluster).
func (c *Cluster) URL() string { return c.Nodes[0].URL(0) }

// Addrs are the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = "127.0.0.1:" + strconv.Itoa(s.Port)
	}
	return out
}

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2, MaxRedirects: 16})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// ClientDB returns a cluster client of database db (Valkey 9's
// cluster-databases), closed when t ends.
func (c *Cluster) ClientDB(t testing.TB, db int) *redis.ClusterClient {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2, MaxRedirects: 16,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.Select(ctx, db).Err() }})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Node is one line of CLUSTER NODES.
type Node struct {
	ID, Addr, Master string
	Primary          bool
	Server           *Server // the test's process, nil if unknown
}

// Topology reads CLUSTER NODES from the first node that answers.
func (c *Cluster) Topology(ctx context.Context) ([]Node, error) {
	var lastErr error
	for _, s := range c.Nodes {
		nodes, err := c.nodesOf(ctx, s)
		if err == nil {
			return nodes, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (c *Cluster) nodesOf(ctx context.Context, s *Server) ([]Node, error) {
	cl := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, Protocol: 2})
	defer cl.Close()
	txt, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := Node{ID: f[0], Addr: strings.SplitN(f[1], "@", 2)[0], Master: f[3], Primary: strings.Contains(f[2], "master")}
		for _, srv := range c.Nodes {
			if strings.HasSuffix(n.Addr, ":"+strconv.Itoa(srv.Port)) {
				n.Server = srv
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// Masters returns the current primaries.
func (c *Cluster) Masters(ctx context.Context) ([]Node, error) {
	nodes, err := c.Topology(ctx)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, n := range nodes {
		if n.Primary {
			out = append(out, n)
		}
	}
	return out, nil
}

// WaitStable waits until every node reports cluster_state:ok, agrees on the
// number of primaries, and every replica's link to its primary is up.
func (c *Cluster) WaitStable(ctx context.Context) error {
	var why string
	for ctx.Err() == nil {
		why = c.unstable(ctx)
		if why == "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the cluster did not settle: %s", why)
}

func (c *Cluster) unstable(ctx context.Context) string {
	for _, s := range c.Nodes {
		info, err := s.clusterInfo(ctx)
		if err != nil {
			return err.Error()
		}
		if info["cluster_state"] != "ok" {
			return fmt.Sprintf("node %d: cluster_state %s", s.Port, info["cluster_state"])
		}
		nodes, err := c.nodesOf(ctx, s)
		if err != nil {
			return err.Error()
		}
		masters := 0
		for _, n := range nodes {
			if n.Primary {
				masters++
			}
		}
		if masters != c.Primaries {
			return fmt.Sprintf("node %d sees %d primaries", s.Port, masters)
		}
		repl, err := s.Info("replication")
		if err != nil {
			return err.Error()
		}
		if repl["role"] == "slave" && repl["master_link_status"] != "up" {
			return fmt.Sprintf("replica %d: link %s", s.Port, repl["master_link_status"])
		}
	}
	return ""
}

// clusterInfo is CLUSTER INFO's fields.
func (s *Server) clusterInfo(ctx context.Context) (map[string]string, error) {
	cl := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, Protocol: 2})
	defer cl.Close()
	txt, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	return ParseInfo(txt), nil
}

// Reshard moves slots slots from primary from to primary to with `CLI
// --cluster reshard` (the keys move with MIGRATE, in batches of pipeline).
func (c *Cluster) Reshard(from, to Node, slots, pipeline int) error {
	out, err := c.run("--cluster", "reshard", from.Addr, "--cluster-from", from.ID, "--cluster-to", to.ID,
		"--cluster-slots", strconv.Itoa(slots), "--cluster-pipeline", strconv.Itoa(pipeline), "--cluster-yes")
	if err != nil {
		return fmt.Errorf("--cluster reshard: %w: %s", err, out)
	}
	return nil
}

// Failover makes replica (a Server of Nodes that is a replica now) its
// shard's primary with CLUSTER FAILOVER, and waits until it is.
func (c *Cluster) Failover(ctx context.Context, replica *Server) error {
	cl := redis.NewClient(&redis.Options{Network: "unix", Addr: replica.Socket, Protocol: 2})
	defer cl.Close()
	if err := cl.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		return fmt.Errorf("CLUSTER FAILOVER on %d: %w", replica.Port, err)
	}
	for ctx.Err() == nil {
		info, err := replica.Info("replication")
		if err == nil && info["role"] == "master" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("node %d did not become primary: %w", replica.Port, ctx.Err())
}

// CopyTo copies every key of the cluster's database 0 into dst with the
// server's own DUMP and RESTORE (REPLACE, with the key's PTTL), primary by
// primary: a standalone image of the cluster that Compare can check. It is
// independent of redback's engine, which it is used to test.
func (c *Cluster) CopyTo(ctx context.Context, dst *redis.Client) error {
	return c.CopyDBTo(ctx, 0, dst)
}

// CopyDBTo is CopyTo for database db of the cluster (Valkey 9's
// cluster-databases).
func (c *Cluster) CopyDBTo(ctx context.Context, db int, dst *redis.Client) error {
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	for _, m := range masters {
		if m.Server == nil {
			return fmt.Errorf("primary %s is not one of the test's nodes", m.Addr)
		}
		if err := copyNode(ctx, m.Server, db, dst); err != nil {
			return fmt.Errorf("copy %s: %w", m.Addr, err)
		}
	}
	return nil
}

func copyNode(ctx context.Context, s *Server, db int, dst *redis.Client) error {
	src := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, DB: db, Protocol: 2})
	defer src.Close()
	var cursor uint64
	for {
		keys, next, err := src.Scan(ctx, cursor, "*", 500).Result()
		if err != nil {
			return err
		}
		pipe := src.Pipeline()
		dumps := make([]*redis.StringCmd, len(keys))
		ttls := make([]*redis.DurationCmd, len(keys))
		for i, k := range keys {
			dumps[i] = pipe.Dump(ctx, k)
			ttls[i] = pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		out := dst.Pipeline()
		for i, k := range keys {
			payload, err := dumps[i].Result()
			if errors.Is(err, redis.Nil) {
				continue // expired since the SCAN
			}
			ttl := ttls[i].Val()
			if ttl < 0 {
				ttl = 0
			}
			out.RestoreReplace(ctx, k, ttl, payload)
		}
		if _, err := out.Exec(ctx); err != nil {
			return err
		}
		cursor = next
		if cursor == 0 {
			return nil
		}
	}
}
