// Cluster topology: CLUSTER NODES read and checked (every slot served, no
// slot moving), the options that reach each node, and the comparison that
// tells a resharding from a failover.

package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// ErrTopology is a cluster whose shape forbids a complete backup: slots no
// node serves, a slot being migrated, a failed primary, or a change of slot
// owners during the backup. Its message says which.
var ErrTopology = errors.New("cluster topology")

// ClusterNode is one node of a cluster, as CLUSTER NODES lists it.
type ClusterNode struct {
	ID   string
	Addr string // host:port of its clients' port
	// Failed: flagged fail (or fail?) by the node asked.
	Failed bool
}

// SlotRange is an inclusive range of hash slots.
type SlotRange struct{ Start, End int }

// Shard is a primary, its replicas and the slots it serves.
type Shard struct {
	Primary  ClusterNode
	Replicas []ClusterNode
	Slots    []SlotRange
}

// Topology is a cluster's shards that serve slots, ordered by their first
// slot.
type Topology struct {
	Shards []Shard
}

// DiscoverCluster reads the topology from the node base points at (CLUSTER
// NODES, which every server version has and which, unlike CLUSTER SHARDS
// and CLUSTER SLOTS, shows slots being migrated). It fails with
// ErrTopology when a slot has no owner, a slot is being migrated or
// imported, or a primary that serves slots is flagged as failed.
func DiscoverCluster(ctx context.Context, base *redis.Options) (Topology, error) {
	c := newClient(base, 0, 1)
	defer c.Close()
	txt, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return Topology{}, wrapRedis("CLUSTER NODES", err)
	}
	host := ""
	if base.Network != "unix" {
		host, _, _ = net.SplitHostPort(base.Addr)
	}
	return parseClusterNodes(txt, host)
}

// parseClusterNodes parses CLUSTER NODES text; host replaces the empty
// address a node gives itself before it has met another.
func parseClusterNodes(txt, host string) (Topology, error) {
	type entry struct {
		node    ClusterNode
		primary bool
		master  string
		slots   []SlotRange
	}
	var entries []entry
	var moving []string
	for _, line := range strings.Split(strings.TrimSpace(txt), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		if strings.HasPrefix(addr, ":") && host != "" {
			addr = net.JoinHostPort(host, addr[1:])
		}
		flags := strings.Split(f[2], ",")
		e := entry{node: ClusterNode{ID: f[0], Addr: addr}, master: f[3]}
		for _, fl := range flags {
			switch fl {
			case "master":
				e.primary = true
			case "fail", "fail?":
				e.node.Failed = true
			}
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				moving = append(moving, s)
				continue
			}
			a, b, ok := strings.Cut(s, "-")
			if !ok {
				b = a
			}
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil || lo < 0 || hi >= Slots || lo > hi {
				return Topology{}, fmt.Errorf("CLUSTER NODES: a slot range %q", s)
			}
			e.slots = append(e.slots, SlotRange{lo, hi})
		}
		entries = append(entries, e)
	}
	if len(moving) > 0 {
		return Topology{}, fmt.Errorf("%w: slots are being migrated (%s): a resharding is running; back up when it ends", ErrTopology, strings.Join(moving, " "))
	}
	var t Topology
	byID := map[string]int{}
	var owned [Slots]bool
	for _, e := range entries {
		if !e.primary || len(e.slots) == 0 {
			continue
		}
		if e.node.Failed {
			return Topology{}, fmt.Errorf("%w: primary %s (%s) is flagged as failed and no replica has taken over", ErrTopology, e.node.ID, e.node.Addr)
		}
		for _, r := range e.slots {
			for s := r.Start; s <= r.End; s++ {
				owned[s] = true
			}
		}
		byID[e.node.ID] = len(t.Shards)
		t.Shards = append(t.Shards, Shard{Primary: e.node, Slots: e.slots})
	}
	for _, e := range entries {
		if i, ok := byID[e.master]; ok && !e.primary {
			t.Shards[i].Replicas = append(t.Shards[i].Replicas, e.node)
		}
	}
	if missing := unowned(&owned); missing != "" {
		return Topology{}, fmt.Errorf("%w: no node serves slots %s: the cluster is incomplete (cluster_state:fail); a backup would miss their keys", ErrTopology, missing)
	}
	for i := range t.Shards {
		sort.Slice(t.Shards[i].Slots, func(a, b int) bool { return t.Shards[i].Slots[a].Start < t.Shards[i].Slots[b].Start })
		sort.Slice(t.Shards[i].Replicas, func(a, b int) bool { return t.Shards[i].Replicas[a].ID < t.Shards[i].Replicas[b].ID })
	}
	sort.Slice(t.Shards, func(a, b int) bool { return t.Shards[a].Slots[0].Start < t.Shards[b].Slots[0].Start })
	return t, nil
}

// unowned lists the slots not owned, as ranges ("0-99 5000").
func unowned(owned *[Slots]bool) string {
	var out []string
	for s := 0; s < Slots; s++ {
		if owned[s] {
			continue
		}
		e := s
		for e+1 < Slots && !owned[e+1] {
			e++
		}
		if e > s {
			out = append(out, fmt.Sprintf("%d-%d", s, e))
		} else {
			out = append(out, strconv.Itoa(s))
		}
		if len(out) == 8 {
			out = append(out, "...")
			break
		}
		s = e
	}
	return strings.Join(out, " ")
}

// members is the shard's node IDs, sorted: what a failover leaves as it
// was (the primary and a replica swap roles) and a resharding does not.
func (s Shard) members() string {
	ids := []string{s.Primary.ID}
	for _, r := range s.Replicas {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

// owners maps each slot to the members of the shard that serves it.
func (t Topology) owners() []string {
	out := make([]string, Slots)
	for _, sh := range t.Shards {
		m := sh.members()
		for _, r := range sh.Slots {
			for s := r.Start; s <= r.End; s++ {
				out[s] = m
			}
		}
	}
	return out
}

// SameSlots returns an ErrTopology error when a slot is served by another
// shard in now than in t (a resharding); a failover inside a shard, which
// keeps its members, is no change.
func (t Topology) SameSlots(now Topology) error {
	a, b := t.owners(), now.owners()
	for s := 0; s < Slots; s++ {
		if a[s] != b[s] {
			return fmt.Errorf("%w: slot %d moved to another shard during the backup (a resharding): the archive would be incomplete; run the backup again", ErrTopology, s)
		}
	}
	return nil
}

// nodeOptions reach node addr with base's credentials, TLS and timeouts.
// Every connection is put in READONLY mode: reads on a replica are then
// served (and on a primary that a failover turns into a replica, they go
// on being served).
func nodeOptions(base *redis.Options, addr string) *redis.Options {
	o := *base
	o.Network = "tcp"
	o.Addr = addr
	prev := base.OnConnect
	o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		if err := cn.ReadOnly(ctx).Err(); err != nil {
			return wrapRedis("READONLY", err)
		}
		if prev != nil {
			return prev(ctx, cn)
		}
		return nil
	}
	return &o
}
