package rdbfile

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestRandomized fills each server with random keys whose sizes straddle
// randomly chosen encoding thresholds (listpack vs plain, intset vs
// listpack vs hashtable, node sizes, compression), some far beyond the
// chunk limits, then reads the file with several random chunk limits:
// every read must agree, and agree with the server. The seed is fixed;
// RDBFILE_SEED=N sets another, RDBFILE_SEED=random a new one each run (it
// is logged).
func TestRandomized(t *testing.T) {
	base := uint64(20260101)
	switch s := os.Getenv("RDBFILE_SEED"); s {
	case "":
	case "random":
		base = uint64(time.Now().UnixNano())
	default:
		v, err := strconv.ParseUint(s, 10, 64)
		must(t, err)
		base = v
	}
	t.Logf("RDBFILE_SEED=%d", base)
	for i, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(base, uint64(i)))
			s := redistest.StartServer(t, name)
			f := featuresOf(t, s)
			c := s.Client(t, 0)
			fillRandom(t, rng, c, f)
			data := save(t, s)
			var first *fileModel
			for range 3 {
				o := Options{
					MaxChunkElems: []int{1, 1 + rng.IntN(50), 1000}[rng.IntN(3)],
					MaxChunkBytes: []int{1, 1 + rng.IntN(5000), 1 << 20}[rng.IntN(3)],
				}
				m, err := collect(bytes.NewReader(data), collectOpts{Options: o, walk: rng.IntN(2) == 0})
				if err != nil {
					t.Fatalf("options %+v: %v", o, err)
				}
				if first == nil {
					first = m
					continue
				}
				for id, kv := range m.Keys {
					if !equalValues(kv, first.Keys[id]) || !reflect.DeepEqual(kv.Start, first.Keys[id].Start) {
						t.Errorf("options %+v: %v differs", o, id)
					}
				}
			}
			for id, kv := range first.Keys {
				compareKey(t, s.Client(t, id.DB), f, id, kv)
			}
			checkRawAgainstServer(t, s, data, first, Options{MaxChunkBytes: 1 + rng.IntN(300)})
			encs := map[string]int{}
			for _, kv := range first.Keys {
				encs[kv.Start.Encoding]++
			}
			t.Logf("%d keys, %d bytes, encodings %v, %+v", len(first.Keys), len(data), encs, first.Seen)
		})
	}
}

func randString(rng *rand.Rand, n int) string {
	var b strings.Builder
	if rng.IntN(2) == 0 { // compressible
		unit := make([]byte, 1+rng.IntN(16))
		for i := range unit {
			unit[i] = 'a' + byte(rng.IntN(4))
		}
		for b.Len() < n {
			b.Write(unit)
		}
		return b.String()[:n]
	}
	for range n {
		b.WriteByte(byte(rng.IntN(256)))
	}
	return b.String()
}

// randElem is an integer or a string around the value thresholds.
func randElem(rng *rand.Rand, valueMax int) string {
	switch rng.IntN(10) {
	case 0, 1, 2:
		return strconv.FormatInt([]int64{rng.Int64N(13), rng.Int64N(70000) - 35000, rng.Int64() - math.MaxInt64/2}[rng.IntN(3)], 10)
	case 3:
		return randString(rng, valueMax-1+rng.IntN(3))
	case 4:
		return randString(rng, 100+rng.IntN(300))
	}
	return randString(rng, 1+rng.IntN(12))
}

func fillRandom(t *testing.T, rng *rand.Rand, c *redis.Client, f features) {
	ctx := context.Background()
	lp := 2 + rng.IntN(30)
	val := 8 + rng.IntN(60)
	cfg := map[string]string{
		"list-max-listpack-size":    strconv.Itoa(lp),
		"list-compress-depth":       strconv.Itoa(rng.IntN(3)),
		"hash-max-listpack-entries": strconv.Itoa(lp),
		"hash-max-listpack-value":   strconv.Itoa(val),
		"zset-max-listpack-entries": strconv.Itoa(lp),
		"zset-max-listpack-value":   strconv.Itoa(val),
		"set-max-intset-entries":    strconv.Itoa(2 + rng.IntN(40)),
		"stream-node-max-entries":   strconv.Itoa(2 + rng.IntN(20)),
		"rdbcompression":            []string{"yes", "no"}[rng.IntN(2)],
	}
	if f.setListpack {
		cfg["set-max-listpack-entries"] = strconv.Itoa(lp)
		cfg["set-max-listpack-value"] = strconv.Itoa(val)
	}
	for k, v := range cfg {
		do(t, c, "CONFIG", "SET", k, v)
	}
	t.Logf("config %v", cfg)
	size := func() int {
		switch rng.IntN(6) {
		case 0:
			return lp
		case 1:
			return lp + 1
		case 2:
			return max(1, lp-1)
		case 3:
			return 1500 + rng.IntN(2500)
		}
		return 1 + rng.IntN(3*lp)
	}
	now := time.Now().UnixMilli()
	types := []string{"string", "list", "intset", "set", "zset", "hash", "stream"}
	if f.hfe {
		types = append(types, "hash-ttl")
	}
	pipe := c.Pipeline()
	flush := func() {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil { // (XREADGROUP with nothing new)
			t.Fatal(err)
		}
	}
	for k := range 45 {
		typ := types[rng.IntN(len(types))]
		key := fmt.Sprintf("%s:%d", typ, k)
		n := size()
		args := func(cmd string) []any { return []any{cmd, key} }
		switch typ {
		case "string":
			n := []int{0, 1 + rng.IntN(20), 21 + rng.IntN(100), 5000, 100_000 + rng.IntN(200_000)}[rng.IntN(5)]
			if rng.IntN(4) == 0 {
				pipe.Set(ctx, key, rng.Int64N(1<<40)-1<<39, 0)
			} else {
				pipe.Set(ctx, key, randString(rng, n), 0)
			}
		case "list":
			a := args("RPUSH")
			for range n {
				a = append(a, randElem(rng, val))
			}
			pipe.Do(ctx, a...)
		case "intset":
			a := args("SADD")
			for range n {
				a = append(a, strconv.FormatInt(rng.Int64N(1<<uint(8+rng.IntN(50)))-1<<20, 10))
			}
			pipe.Do(ctx, a...)
		case "set":
			a := args("SADD")
			for range n {
				a = append(a, randElem(rng, val))
			}
			pipe.Do(ctx, a...)
		case "zset":
			a := args("ZADD")
			for range n {
				score := []string{strconv.Itoa(rng.IntN(100)), strconv.FormatFloat(rng.NormFloat64()*1e6, 'g', -1, 64), "inf", "-inf"}[rng.IntN(4)]
				a = append(a, score, randElem(rng, val))
			}
			pipe.Do(ctx, a...)
		case "hash", "hash-ttl":
			a := args("HSET")
			var fields []any
			for j := range n {
				fl := fmt.Sprintf("f%d-%s", j, randElem(rng, val))
				fields = append(fields, fl)
				a = append(a, fl, randElem(rng, val))
			}
			pipe.Do(ctx, a...)
			if typ == "hash-ttl" {
				sub := fields[:1+rng.IntN(len(fields))]
				pipe.Do(ctx, append([]any{"HPEXPIREAT", key, now + 3600_000 + rng.Int64N(1e6), "FIELDS", len(sub)}, sub...)...)
			}
		case "stream":
			n := 1 + rng.IntN(60)
			var ids []string
			ms, seq := uint64(1000), uint64(0)
			for range n {
				if d := uint64(rng.IntN(3)); d > 0 {
					ms, seq = ms+d*uint64(1+rng.IntN(1e6)), uint64(rng.IntN(3))
				} else {
					seq++
				}
				ids = append(ids, fmt.Sprintf("%d-%d", ms, seq))
				a := []any{"XADD", key, ids[len(ids)-1]}
				if rng.IntN(3) == 0 {
					for q := range 1 + rng.IntN(4) {
						a = append(a, fmt.Sprintf("x%d", q), randElem(rng, val))
					}
				} else {
					a = append(a, "a", randElem(rng, val), "b", randElem(rng, val))
				}
				pipe.Do(ctx, a...)
			}
			flush()
			for _, id := range ids {
				if rng.IntN(5) == 0 {
					pipe.Do(ctx, "XDEL", key, id)
				}
			}
			for g := range rng.IntN(3) {
				group := fmt.Sprintf("g%d", g)
				pipe.Do(ctx, "XGROUP", "CREATE", key, group, "0")
				for cs := range rng.IntN(3) {
					pipe.Do(ctx, "XREADGROUP", "GROUP", group, fmt.Sprintf("c%d", cs), "COUNT", 1+rng.IntN(10), "STREAMS", key, ">")
				}
			}
		}
		if rng.IntN(5) == 0 {
			pipe.Do(ctx, "PEXPIREAT", key, now+7200_000+rng.Int64N(1e6))
		}
		flush()
	}
}
