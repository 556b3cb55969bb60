package rdbvalue

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/redistest"
)

func TestRDBVersionFor(t *testing.T) {
	for v, want := range map[string]int{
		"7.0.15": 10, "7.0.0": 10, "6.2.14": 9, "6.0.20": 9, "5.0": 9, "5.0.7": 9, "4.0.14": 8, "3.2.12": 7, "3.0.7": 6,
		"2.8.24": 6, "2.6.0": 6, "7.2.4": 11, "7.2.10": 11, "7.4": 12, "7.4.2": 12, "8.0.2": 12, "8.2.1": 12, "9.0.0": 12,
		"10.1": 12, "7.9": 12, "": 6, "unknown": 6, "x7.0": 6, "7": 10, "7.0.15-rc1": 10, "255.255.255": 12,
	} {
		if got := RDBVersionFor(v); got != want {
			t.Errorf("RDBVersionFor(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestEncodeRestore(t *testing.T) {
	c := server(t)
	info, err := c.Info(ctx, "server").Result()
	must(t, err)
	i := strings.Index(info, "redis_version:")
	serverVersion := strings.TrimSpace(strings.SplitN(info[i+len("redis_version:"):], "\n", 2)[0])
	ver := RDBVersionFor(serverVersion)
	if ver != 10 {
		t.Fatalf("server %s -> RDB %d", serverVersion, ver)
	}
	var dec, dec2 Decoder
	var buf []byte
	for _, lc := range liveCases() {
		runSetup(t, c, lc)
		want, err := redistest.Digest(ctx, c, lc.key)
		must(t, err)
		k, es, err := dec.Decode(dump(t, c, lc.key))
		must(t, err)
		for _, v := range []int{ver, 6, 8, 9} {
			buf, err = Encode(buf[:0], k, es, v)
			if err != nil {
				t.Fatalf("%s: encode: %v", lc.key, err)
			}
			if PayloadRDBVersion(buf) != v {
				t.Fatalf("%s: footer version %d", lc.key, PayloadRDBVersion(buf))
			}
			// The payload decodes to the same elements.
			k2, es2, err := dec2.Decode(buf)
			must(t, err)
			if k2 != k || len(es2) != len(es) {
				t.Fatalf("%s: round trip %v/%d, want %v/%d", lc.key, k2, len(es2), k, len(es))
			}
			for j := range es {
				if !bytes.Equal(es[j], es2[j]) && !(k == KindZSet && j%2 == 1) {
					t.Fatalf("%s: round trip element %d %q, want %q", lc.key, j, es2[j], es[j])
				}
			}
			dst := "r:" + lc.key
			must(t, c.Del(ctx, dst).Err())
			if err := c.Restore(ctx, dst, 0, string(buf)).Err(); err != nil {
				t.Fatalf("%s: RESTORE (RDB %d): %v", lc.key, v, err)
			}
			got, err := redistest.Digest(ctx, c, dst)
			must(t, err)
			if got != want {
				t.Fatalf("%s (RDB %d): digest %s, want %s", lc.key, v, got, want)
			}
		}
		dst := "r:" + lc.key
		// Without REPLACE over an existing key: BUSYKEY.
		if err := c.Restore(ctx, dst, 0, string(buf)).Err(); err == nil || !strings.Contains(err.Error(), "BUSYKEY") {
			t.Fatalf("%s: RESTORE over existing key: %v", lc.key, err)
		}
		// REPLACE with a relative TTL.
		must(t, c.Set(ctx, dst, "other", 0).Err())
		must(t, c.Do(ctx, "RESTORE", dst, 100000, string(buf), "REPLACE").Err())
		if ttl := c.PTTL(ctx, dst).Val(); ttl <= 0 || ttl > 100*time.Second {
			t.Fatalf("%s: PTTL %v", lc.key, ttl)
		}
		// REPLACE with an absolute TTL.
		at := time.Now().Add(time.Hour).UnixMilli()
		must(t, c.Do(ctx, "RESTORE", dst, at, string(buf), "REPLACE", "ABSTTL").Err())
		if ttl := c.PTTL(ctx, dst).Val(); ttl < 59*time.Minute || ttl > time.Hour {
			t.Fatalf("%s: PTTL %v after ABSTTL", lc.key, ttl)
		}
		must(t, c.Persist(ctx, dst).Err()) // the digest covers the expiry
		got, err := redistest.Digest(ctx, c, dst)
		must(t, err)
		if got != want {
			t.Fatalf("%s (ABSTTL): digest %s, want %s", lc.key, got, want)
		}
		// A version newer than the server's is refused: the footer matters.
		buf, err = Encode(buf[:0], k, es, 11)
		must(t, err)
		if err := c.RestoreReplace(ctx, dst, 0, string(buf)).Err(); err == nil {
			t.Fatalf("%s: Redis 7.0 accepted an RDB 11 payload", lc.key)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	b := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	for _, tc := range []struct {
		k   Kind
		es  [][]byte
		ver int
	}{
		{KindString, b(), 10},
		{KindString, b("a", "b"), 10},
		{KindHash, b("a"), 10},
		{KindHash, b(), 10},
		{KindList, b(), 10},
		{KindSet, nil, 10},
		{KindZSet, b("a", "nan"), 10},
		{KindZSet, b("a", "NaN"), 6},
		{KindZSet, b("a", "1e400"), 10},
		{KindZSet, b("a", ""), 10},
		{KindZSet, b("a", "1x"), 10},
		{KindZSet, b("a"), 10},
		{KindString, b("a"), 5},
		{KindString, b("a"), 1 << 16},
		{0, b("a"), 10},
		{Kind(99), b("a"), 10},
	} {
		dst := []byte("prefix")
		out, err := Encode(dst, tc.k, tc.es, tc.ver)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v %q v%d: %v", tc.k, tc.es, tc.ver, err)
		}
		if string(out) != "prefix" {
			t.Fatalf("%v %q: dst changed to %q", tc.k, tc.es, out)
		}
	}
	for _, s := range []string{"inf", "+inf", "-inf", "INF", "-Infinity", "0", "-0", "1e308", "0x1p-2", "  "[:0] + "5"} {
		if _, err := Encode(nil, KindZSet, b("m", s), 10); err != nil {
			t.Fatalf("score %q: %v", s, err)
		}
	}
	// Appends after existing content; the CRC covers only the payload.
	p, err := Encode([]byte("prefix"), KindString, b("v"), 10)
	must(t, err)
	if _, es, err := Decode(p[len("prefix"):], nil, nil); err != nil || string(es[0]) != "v" {
		t.Fatalf("%q %v", es, err)
	}
}

func TestEncodeAllocs(t *testing.T) {
	es := [][]byte{[]byte("a"), []byte("1.5"), []byte("b"), []byte("-inf"), []byte("c"), []byte("2.2250738585072014e-308")}
	buf := make([]byte, 0, 1024)
	for _, k := range []Kind{KindZSet, KindHash, KindList} {
		if a := testing.AllocsPerRun(100, func() { buf, _ = Encode(buf[:0], k, es, 10) }); a != 0 {
			t.Fatalf("%v: %v allocs", k, a)
		}
	}
}
