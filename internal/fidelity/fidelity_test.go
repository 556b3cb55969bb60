package fidelity

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

// Fill gets every shape its encoding on every server of the matrix (it
// checks them itself), and Snapshot reads the same state twice.
func TestFillEveryServer(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := redistest.StartServer(t, name)
			c := s.Client(t, 0)
			caps, err := Probe(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			kind, _, _ := strings.Cut(name, "-")
			wantTTLs := name == "redis-8.0" || name == "redis-8" || name == "valkey-9"
			wantVectors := name == "redis-8.0" || name == "redis-8"
			if caps.Kind != kind || caps.FieldTTLs != wantTTLs || caps.VectorSets != wantVectors || caps.Databases != 16 {
				t.Fatalf("%s: probed %+v", name, caps)
			}
			m, err := Fill(ctx, c, caps, rand.New(rand.NewPCG(1, 2)), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d keys in databases %v; encodings %v; %d field-TTL hashes, raw %v",
				caps, m.Len(), m.DBs(), m.Encodings(), len(m.FieldTTLKeys()), m.RawKeys())
			a, err := Snapshot(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if a.Keys() != m.Len() {
				t.Fatalf("snapshot has %d keys, the fill wrote %d", a.Keys(), m.Len())
			}
			b, err := Snapshot(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(a, b, DiffOptions{TTLSlack: 5 * time.Second}); len(d) > 0 {
				t.Fatalf("two snapshots of one server differ:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// Diff notices every kind of change a restore could make, down to a
// field's expiry moved by one millisecond.
func TestDiffCatches(t *testing.T) {
	ctx := context.Background()
	s := redistest.StartServer(t, "redis-8")
	c := s.Client(t, 0)
	caps, err := Probe(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fill(ctx, c, caps, rand.New(rand.NewPCG(3, 4)), Options{BigString: 200 << 10}); err != nil {
		t.Fatal(err)
	}
	a, err := Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	exp := a.DBs[0]["hash:fttl-small"].FieldExpire["f0"]
	var pend Pending
	for _, g := range a.DBs[0]["stream:pel"].Stream.Groups {
		if g.Name == "workers" {
			pend = g.Pending[len(g.Pending)-1]
		}
	}
	changes := []struct {
		key  string
		args []any
	}{
		{"str:int", []any{"SET", "str:int", "12346"}},
		{"str:big-binary", []any{"SETRANGE", "str:big-binary", 1 << 17, "X"}},
		{"list:big", []any{"LSET", "list:big", 777, "changed"}},
		{"set:int16", []any{"SREM", "set:int16", "1"}},
		{"zset:special", []any{"ZADD", "zset:special", "1e308", "s00"}},
		{"hash:small", []any{"HSET", "hash:small", "\x00", "changed"}},
		{"hash:fttl-small", []any{"HPEXPIREAT", "hash:fttl-small", exp + 1, "FIELDS", 1, "f0"}},
		{"hash:fttl-big", []any{"HPERSIST", "hash:fttl-big", "FIELDS", 1, "f0:"}},
		{"str:ttl", []any{"PERSIST", "str:ttl"}},
		{"stream:pel", []any{"XCLAIM", "stream:pel", "workers", pend.Consumer, 0, pend.ID, "TIME", pend.DeliveryTime, "RETRYCOUNT", pend.DeliveryCount + 1, "JUSTID"}},
		{"stream:big", []any{"XGROUP", "CREATECONSUMER", "stream:big", "g", "new"}},
		{"stream:groups-only", []any{"XGROUP", "DELCONSUMER", "stream:groups-only", "g1", "alice"}},
		{"stream:basic", []any{"XADD", "stream:basic", "*", "f", "v"}},
		{"vset:q8", []any{"VSETATTR", "vset:q8", "e1", `{"changed":1}`}},
		{"vset:bin-reduced", []any{"VREM", "vset:bin-reduced", "b7"}},
	}
	for _, ch := range changes {
		if err := c.Do(ctx, ch.args...).Err(); err != nil {
			t.Fatalf("%v: %v", ch.args, err)
		}
	}
	if err := c.Rename(ctx, "list:small", "list:renamed").Err(); err != nil {
		t.Fatal(err)
	}
	b, err := Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	diffs := Diff(a, b, DiffOptions{TTLSlack: 5 * time.Second})
	all := strings.Join(diffs, "\n")
	t.Logf("differences:\n%s", all)
	for _, want := range append([]string{"list:small", "list:renamed"}, keysOf(changes)...) {
		if !strings.Contains(all, quote(want)) {
			t.Errorf("the change of %s went unnoticed", quote(want))
		}
	}
	// And nothing else.
	changed := append([]string{"list:small", "list:renamed"}, keysOf(changes)...)
	for _, d := range diffs {
		ok := false
		for _, k := range changed {
			ok = ok || strings.HasPrefix(d, "db 0 key "+quote(k)+":")
		}
		if !ok {
			t.Errorf("a difference that was not made: %s", d)
		}
	}

	// Missing: a key listed is expected absent from b, and an error when
	// present; a listed key absent from a is an error too.
	miss := map[KeyRef]string{{0, "list:small"}: "test"}
	if d := strings.Join(Diff(a, b, DiffOptions{TTLSlack: 5 * time.Second, Missing: miss}), "\n"); strings.Contains(d, `"list:small": missing`) {
		t.Errorf("a key listed as missing is reported:\n%s", d)
	}
	miss = map[KeyRef]string{{0, "str:raw"}: "test", {0, "no-such-key"}: "test"}
	d := strings.Join(Diff(a, a, DiffOptions{Missing: miss}), "\n")
	if !strings.Contains(d, `"str:raw": restored, but it should not have been`) || !strings.Contains(d, `"no-such-key": listed as missing`) {
		t.Errorf("Missing is not checked:\n%s", d)
	}
}

func keysOf(cs []struct {
	key  string
	args []any
}) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.key)
	}
	return out
}
