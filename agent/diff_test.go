package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

func diffAll(t *testing.T, s *Service, a, b string, o DiffOptions) (DiffResult, map[string]Difference) {
	t.Helper()
	got := map[string]Difference{}
	res, err := s.Diff(context.Background(), a, b, o, func(d Difference) error {
		got[fmt.Sprintf("%d/%s", d.DB, d.Key)] = d
		return nil
	})
	must(t, err)
	return res, got
}

func keysOf(m map[string]Difference) []string {
	var out []string
	for k, d := range m {
		out = append(out, d.Change+" "+k+fmt.Sprint(d.What))
	}
	sort.Strings(out)
	return out
}

// TestDiff: archives that differ in each way, and the live server; the
// same data written in another order (so SCAN, SMEMBERS and HGETALL give
// other orders) is equal.
func TestDiff(t *testing.T) {
	ctx := context.Background()
	one, two := redistest.Start(t), redistest.Start(t)
	store := filepath.Join(t.TempDir(), "backups")
	fill := func(c *redis.Client, reverse bool) {
		n := 3000
		p := c.Pipeline()
		for j := 0; j < n; j++ {
			i := j
			if reverse {
				i = n - 1 - j
			}
			p.Set(ctx, fmt.Sprintf("s:%d", i), i, 0)
		}
		items := []any{}
		for j := 0; j < 3000; j++ {
			i := j
			if reverse {
				i = 2999 - j
			}
			items = append(items, fmt.Sprint("m", i))
		}
		p.SAdd(ctx, "bigset", items...) // read in windows: SSCAN order
		for j := 0; j < 50; j++ {
			i := j
			if reverse {
				i = 49 - j
			}
			p.HSet(ctx, "hash", fmt.Sprint("m", i), "v")
			p.ZAdd(ctx, "zset", redis.Z{Score: 1, Member: fmt.Sprint("m", i)})
		}
		p.RPush(ctx, "list", "a", "b", "c")
		p.Set(ctx, "ttl:same", "x", time.Hour)
		p.Set(ctx, "ttl:moved", "x", time.Hour)
		p.Set(ctx, "gone", "x", 0)
		p.Set(ctx, "retyped", "x", 0)
		p.Set(ctx, "user:42:a", "good", 0)
		p.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"f", "v"}})
		_, err := p.Exec(ctx)
		must(t, err)
	}
	fill(one.Client(t, 0), false)
	fill(two.Client(t, 0), true)
	s1 := newService(t, one.URL(0), store)
	a, err := s1.Backup(ctx, BackupOptions{})
	must(t, err)
	time.Sleep(1100 * time.Millisecond)
	s2 := newService(t, two.URL(0), store)
	b, err := s2.Backup(ctx, BackupOptions{})
	must(t, err)
	res, got := diffAll(t, s1, a.Filename, b.Filename, DiffOptions{})
	if !res.Equal || len(got) != 0 || res.Same != a.KeysCount {
		t.Fatalf("the same data in another order: %+v %v", res, keysOf(got))
	}

	// Each kind of change.
	c := two.Client(t, 0)
	must(t, c.Set(ctx, "added", "x", 0).Err())
	must(t, c.Del(ctx, "gone").Err())
	must(t, c.Del(ctx, "retyped").Err())
	must(t, c.RPush(ctx, "retyped", "x").Err())
	must(t, c.Set(ctx, "s:7", "changed", 0).Err())
	must(t, c.SRem(ctx, "bigset", "m1500").Err())
	must(t, c.SAdd(ctx, "bigset", "other").Err())
	must(t, c.HSet(ctx, "hash", "m3", "w").Err())
	must(t, c.ZAdd(ctx, "zset", redis.Z{Score: 2, Member: "m4"}).Err())
	must(t, c.LSet(ctx, "list", 0, "z").Err())
	must(t, c.Expire(ctx, "ttl:moved", 3*time.Hour).Err())
	must(t, c.Persist(ctx, "s:9").Err()) // no TTL: no change
	must(t, c.Expire(ctx, "s:8", time.Hour).Err())
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "2-1", Values: []string{"f", "v"}}).Err())
	must(t, c.Set(ctx, "user:42:a", "bad", 0).Err())
	time.Sleep(1100 * time.Millisecond)
	b2, err := s2.Backup(ctx, BackupOptions{})
	must(t, err)
	want := []string{
		"added 0/added[]", "changed 0/bigset[value]", "changed 0/hash[value]", "changed 0/list[value]",
		"changed 0/retyped[type]", "changed 0/s:7[value]", "changed 0/s:8[ttl]", "changed 0/st[value]",
		"changed 0/ttl:moved[ttl]", "changed 0/user:42:a[value]", "changed 0/zset[value]", "removed 0/gone[]",
	}
	res, got = diffAll(t, s1, a.Filename, b2.Filename, DiffOptions{})
	if !slices.Equal(keysOf(got), want) || res.Equal || res.Added != 1 || res.Removed != 1 || res.Changed != 10 || res.Same != a.KeysCount-11 {
		t.Fatalf("diff: %+v\n%q\nwant %q", res, keysOf(got), want)
	}
	if d := got["0/retyped"]; d.A.Type != "string" || d.B.Type != "list" {
		t.Fatalf("retyped: %+v", d)
	}
	// The live server, against the first archive: the same differences.
	res, got = diffAll(t, s2, a.Filename, DiffLive, DiffOptions{})
	if !slices.Equal(keysOf(got), want) || res.B != DiffLive {
		t.Fatalf("diff --live: %+v\n%q", res, keysOf(got))
	}
	// --match; a limit counts them all but hands out the first.
	res, got = diffAll(t, s2, Latest, DiffLive, DiffOptions{Selection: Selection{Match: []string{"user:42:*"}}})
	if !res.Equal || len(got) != 0 || res.Same != 1 {
		t.Fatalf("latest against live: %+v %v", res, keysOf(got))
	}
	res, got = diffAll(t, s2, a.Filename, DiffLive, DiffOptions{Selection: Selection{Match: []string{"user:42:*"}}})
	if res.Changed != 1 || len(got) != 1 || got["0/user:42:a"].Change != "changed" {
		t.Fatalf("--match user:42:*: %+v %v", res, keysOf(got))
	}
	res, got = diffAll(t, s2, a.Filename, b2.Filename, DiffOptions{Limit: 3})
	if len(got) != 3 || !res.Truncated || res.Added+res.Removed+res.Changed != 12 {
		t.Fatalf("limit 3: %+v", res)
	}
	// A wide tolerance takes the moved TTL as the same.
	_, got = diffAll(t, s2, a.Filename, b2.Filename, DiffOptions{TTLTolerance: 3 * time.Hour})
	if _, ok := got["0/ttl:moved"]; ok {
		t.Fatal("ttl:moved reported within the tolerance")
	}
}
