package redistest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Compare checks that database b holds exactly the keys of database a, with
// equal values (DEBUG DIGEST-VALUE, which covers every type's content), equal
// stream metadata, and TTLs that differ by at most ttlSlack. It returns the
// first differences found (at most 10), or nil.
func Compare(ctx context.Context, a, b *redis.Client, ttlSlack time.Duration) ([]string, error) {
	var diffs []string
	add := func(f string, args ...any) bool {
		diffs = append(diffs, fmt.Sprintf(f, args...))
		return len(diffs) >= 10
	}
	na, err := a.DBSize(ctx).Result()
	if err != nil {
		return nil, err
	}
	nb, err := b.DBSize(ctx).Result()
	if err != nil {
		return nil, err
	}
	if na != nb {
		add("key count: %d vs %d", na, nb)
	}
	var cursor uint64
	for {
		keys, next, err := a.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		pa, pb := a.Pipeline(), b.Pipeline()
		type pair struct{ da, db, ta, tb *redis.Cmd }
		ps := make([]pair, len(keys))
		ttlA := make([]*redis.DurationCmd, len(keys))
		ttlB := make([]*redis.DurationCmd, len(keys))
		typA := make([]*redis.StatusCmd, len(keys))
		for i, k := range keys {
			ps[i].da = pa.Do(ctx, "DEBUG", "DIGEST-VALUE", k)
			ps[i].db = pb.Do(ctx, "DEBUG", "DIGEST-VALUE", k)
			ttlA[i] = pa.PTTL(ctx, k)
			ttlB[i] = pb.PTTL(ctx, k)
			typA[i] = pa.Type(ctx, k)
		}
		if _, err := pa.Exec(ctx); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if _, err := pb.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		for i, k := range keys {
			da := fmt.Sprint(ps[i].da.Val())
			dbv := fmt.Sprint(ps[i].db.Val())
			if da != dbv {
				if add("key %q: digest %s vs %s", k, da, dbv) {
					return diffs, nil
				}
				continue
			}
			ta, tb := ttlA[i].Val(), ttlB[i].Val()
			if (ta < 0) != (tb < 0) || absDur(ta-tb) > ttlSlack {
				if add("key %q: ttl %v vs %v", k, ta, tb) {
					return diffs, nil
				}
			}
			if typA[i].Val() == "stream" {
				if d := compareStream(ctx, a, b, k); d != "" {
					if add("key %q: %s", k, d) {
						return diffs, nil
					}
				}
			}
		}
		cursor = next
		if cursor == 0 {
			break
		}
	}
	return diffs, nil
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func compareStream(ctx context.Context, a, b *redis.Client, k string) string {
	ia, err1 := a.Do(ctx, "XINFO", "STREAM", k).Slice()
	ib, err2 := b.Do(ctx, "XINFO", "STREAM", k).Slice()
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("XINFO STREAM: %v / %v", err1, err2)
	}
	pick := func(s []any) string {
		var out []string
		for i := 0; i+1 < len(s); i += 2 {
			switch s[i] {
			case "length", "last-generated-id", "max-deleted-entry-id", "entries-added", "groups":
				out = append(out, fmt.Sprint(s[i], "=", s[i+1]))
			}
		}
		return strings.Join(out, " ")
	}
	if pa, pb := pick(ia), pick(ib); pa != pb {
		return fmt.Sprintf("stream info %s vs %s", pa, pb)
	}
	ga, err1 := a.XInfoGroups(ctx, k).Result()
	gb, err2 := b.XInfoGroups(ctx, k).Result()
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("XINFO GROUPS: %v / %v", err1, err2)
	}
	if len(ga) != len(gb) {
		return fmt.Sprintf("%d groups vs %d", len(ga), len(gb))
	}
	for i := range ga {
		if ga[i].Name != gb[i].Name || ga[i].LastDeliveredID != gb[i].LastDeliveredID || ga[i].EntriesRead != gb[i].EntriesRead ||
			ga[i].Pending != gb[i].Pending || ga[i].Consumers != gb[i].Consumers {
			return fmt.Sprintf("group %+v vs %+v", ga[i], gb[i])
		}
	}
	da, err1 := DeliveryState(ctx, a, k)
	db, err2 := DeliveryState(ctx, b, k)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("XINFO STREAM FULL: %v / %v", err1, err2)
	}
	if da != db {
		return fmt.Sprintf("delivery state\n  %s\nvs\n  %s", da, db)
	}
	return ""
}

// DeliveryState renders the consumer groups of a stream for comparison:
// per group its consumers' names and every pending entry with its owner,
// delivery time and delivery count (XINFO STREAM FULL). Consumers' seen and
// active times are left out: a restore cannot set them.
func DeliveryState(ctx context.Context, c *redis.Client, key string) (string, error) {
	full, err := c.XInfoStreamFull(ctx, key, 1_000_000).Result()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, g := range full.Groups {
		fmt.Fprintf(&b, "group %s last=%s:", g.Name, g.LastDeliveredID)
		for _, cons := range g.Consumers {
			fmt.Fprintf(&b, " consumer %s (%d pending)", cons.Name, cons.PelCount)
		}
		for _, p := range g.Pending {
			fmt.Fprintf(&b, " pending %s to %s at %d x%d", p.ID, p.Consumer, p.DeliveryTime.UnixMilli(), p.DeliveryCount)
		}
		b.WriteString("; ")
	}
	return b.String(), nil
}
