package rdbvalue

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/redistest"
)

// nativeInts are integers at every boundary of the listpack and intset
// integer encodings, and strings that look like integers but that the
// server keeps as strings.
var nativeInts = []string{
	"0", "1", "127", "128", "-1", "4095", "4096", "-4096", "-4097", "32767", "32768", "-32768",
	"-32769", "8388607", "8388608", "-8388608", "-8388609", "2147483647", "2147483648",
	"-2147483648", "-2147483649", "9223372036854775807", "-9223372036854775808",
	"007", "+5", "-0", "9223372036854775808", "-9223372036854775809", " 1", "1 ", "",
}

// nativeElem returns a random element: an integer-like string, a short or
// binary string, or one around the listpack value limits (63-65 bytes),
// and, when long is set, one that needs a 12- or 32-bit listpack length.
func nativeElem(r *rand.Rand, long bool) string {
	switch r.IntN(8) {
	case 0, 1:
		return nativeInts[r.IntN(len(nativeInts))]
	case 2:
		return strconv.FormatInt(r.Int64()>>r.IntN(64), 10)
	case 3:
		b := make([]byte, 1+r.IntN(8))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case 4:
		return string(bytes.Repeat([]byte{'v'}, 63+r.IntN(3)))
	case 5:
		if long {
			return string(bytes.Repeat([]byte{'L'}, []int{4095, 4096, 70000}[r.IntN(3)]))
		}
	}
	return fmt.Sprintf("e%d", r.IntN(1_000_000))
}

// nativeScores are sorted-set scores of every kind the server formats
// differently.
var nativeScores = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, -2.5, 1e300, -1e-300, 5e-324,
	math.Inf(1), math.Inf(-1), 1 << 52, 1<<52 + 1, 1 << 53, -(1 << 52), 123456789.125, 3}

var nativeCounts = []int{1, 2, 63, 64, 127, 128, 129, 200, 511, 512, 513, 700}

// TestEncodeNativeMatrix builds random values of every kind and size
// around the servers' compact-encoding thresholds on each server of the
// matrix (deep-checking every RESTORE payload), once with commands and
// once by RESTORE of EncodeNative's payload, and requires the same value
// (DEBUG DIGEST-VALUE), the same encoding (OBJECT ENCODING), and, for the
// compact ones the server writes the same way, the same bytes as its DUMP.
func TestEncodeNativeMatrix(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			s := redistest.StartServer(t, name, "--sanitize-dump-payload", "yes", "--rdbcompression", "no")
			c := s.Client(t, 0)
			info, err := s.Info("server")
			must(t, err)
			ver := RDBVersionFor(info["redis_version"])
			enc := Encoder{Limits: DefaultLimits()}
			r := rand.New(rand.NewPCG(13, uint64(len(name))))
			natives := 0
			for i := range 160 {
				k := []Kind{KindHash, KindZSet, KindSet, KindList}[i%4]
				n := nativeCounts[r.IntN(len(nativeCounts))]
				elems := buildRef(t, c, r, k, n)
				payload, native, err := enc.EncodeNative(nil, k, elems, ver)
				if err != nil {
					t.Fatalf("%v of %d: %v", k, n, err)
				}
				if native {
					natives++
				}
				must(t, c.Del(ctx, "got").Err())
				if err := c.Restore(ctx, "got", 0, string(payload)).Err(); err != nil {
					t.Fatalf("%v of %d elements (native %v): RESTORE: %v", k, n, native, err)
				}
				want, err := redistest.Digest(ctx, c, "ref")
				must(t, err)
				got, err := redistest.Digest(ctx, c, "got")
				must(t, err)
				if got != want {
					t.Fatalf("%v of %d elements (native %v): digest %s, want %s", k, n, native, got, want)
				}
				wantEnc := c.ObjectEncoding(ctx, "ref").Val()
				if gotEnc := c.ObjectEncoding(ctx, "got").Val(); gotEnc != wantEnc {
					t.Fatalf("%v of %d elements (native %v): encoding %s, want %s", k, n, native, gotEnc, wantEnc)
				}
				// Hashes and sets in a compact encoding are written in the
				// server's own order and form: byte for byte its DUMP.
				if native && (k == KindHash || k == KindSet) {
					if ref := dump(t, c, "ref"); !bytes.Equal(ref[:len(ref)-10], payload[:len(payload)-10]) { // Valkey 9 writes its own RDB version in the footer
						t.Fatalf("%v of %d elements (%s): payload differs from the server's DUMP\n got %q\nwant %q", k, n, wantEnc, payload, ref)
					}
				}
			}
			if natives < 40 {
				t.Fatalf("only %d of 160 values were written natively", natives)
			}
			t.Logf("%s (RDB %d): %d of 160 values native", name, ver, natives)
		})
	}
}

// buildRef writes a random value of kind k with about n elements to key
// "ref" with commands and returns its elements as an archive holds them
// (the server's order; a sorted set's in random order, scores as text).
func buildRef(t *testing.T, c *redis.Client, r *rand.Rand, k Kind, n int) [][]byte {
	t.Helper()
	must(t, c.Del(ctx, "ref").Err())
	seen := map[string]bool{}
	allInts := r.IntN(3) == 0 // sets: integers only (an intset)
	var args []any
	for len(seen) < n {
		e := nativeElem(r, k == KindList)
		if allInts {
			e = strconv.Itoa(r.IntN(1<<20) - 1<<19)
		}
		if k != KindList && seen[e] {
			if len(seen) > 0 && r.IntN(50) == 0 {
				break // a short value now and then
			}
			continue
		}
		seen[e] = true
		switch k {
		case KindHash:
			args = append(args, e, nativeElem(r, false))
		case KindZSet:
			args = append(args, nativeScores[r.IntN(len(nativeScores))], e)
		default:
			args = append(args, e)
		}
		if k == KindList && len(args) >= n {
			break
		}
	}
	var err error
	switch k {
	case KindHash:
		err = c.HSet(ctx, "ref", args...).Err()
	case KindZSet:
		zs := make([]redis.Z, 0, len(args)/2)
		for i := 0; i < len(args); i += 2 {
			zs = append(zs, redis.Z{Score: args[i].(float64), Member: args[i+1]})
		}
		err = c.ZAdd(ctx, "ref", zs...).Err()
	case KindSet:
		err = c.SAdd(ctx, "ref", args...).Err()
	case KindList:
		err = c.RPush(ctx, "ref", args...).Err()
	}
	must(t, err)
	var out []string
	switch k {
	case KindHash:
		m, err := c.Do(ctx, "HGETALL", "ref").StringSlice()
		must(t, err)
		out = m
	case KindZSet:
		zs, err := c.ZRangeWithScores(ctx, "ref", 0, -1).Result()
		must(t, err)
		r.Shuffle(len(zs), func(i, j int) { zs[i], zs[j] = zs[j], zs[i] })
		for _, z := range zs {
			out = append(out, z.Member.(string), strconv.FormatFloat(z.Score, 'g', -1, 64))
		}
	case KindSet:
		out, err = c.SMembers(ctx, "ref").Result()
		must(t, err)
	case KindList:
		out, err = c.LRange(ctx, "ref", 0, -1).Result()
		must(t, err)
	}
	elems := make([][]byte, len(out))
	for i, s := range out {
		elems[i] = []byte(s)
	}
	return elems
}

// TestEncodeNativeRefusesRepeats: a compact encoding is trusted by a
// server that does not sanitize payloads, so EncodeNative refuses values
// that repeat a field or member (Encode leaves that to the server).
func TestEncodeNativeRefusesRepeats(t *testing.T) {
	enc := Encoder{Limits: DefaultLimits()}
	for _, tc := range []struct {
		k     Kind
		elems []string
	}{
		{KindHash, []string{"f", "1", "g", "2", "f", "3"}},
		{KindSet, []string{"a", "b", "a"}},
		{KindSet, []string{"5", "7", "5"}},
		{KindZSet, []string{"m", "1", "n", "2", "m", "3"}},
	} {
		var elems [][]byte
		for _, s := range tc.elems {
			elems = append(elems, []byte(s))
		}
		_, native, err := enc.EncodeNative(nil, tc.k, elems, 11)
		if !errors.Is(err, ErrInvalid) || native {
			t.Errorf("%v %q: native %v, err %v; want ErrInvalid", tc.k, tc.elems, native, err)
		}
	}
}

// TestEncodeNativeDecodes: every native payload decodes (Decode) to the
// elements it was built from (a sorted set's in score order).
func TestEncodeNativeDecodes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	enc := Encoder{Limits: DefaultLimits()}
	var dec Decoder
	for i := range 2000 {
		k := []Kind{KindHash, KindSet, KindList}[i%3]
		n := 1 + r.IntN(300)
		seen := map[string]bool{}
		var elems [][]byte
		want := n
		if k == KindHash {
			want = 2 * n
		}
		for len(elems) < want {
			e := nativeElem(r, k == KindList)
			if k != KindList {
				if seen[e] {
					continue
				}
				seen[e] = true
			}
			elems = append(elems, []byte(e))
			if k == KindHash {
				elems = append(elems, []byte(nativeElem(r, false)))
			}
		}
		payload, _, err := enc.EncodeNative(nil, k, elems, 11)
		if err != nil {
			t.Fatal(err)
		}
		gk, got, err := dec.Decode(payload)
		if err != nil || gk != k {
			t.Fatalf("%v of %d: decode %v %v", k, len(elems), gk, err)
		}
		if k == KindSet {
			// An intset is sorted: compare as sets.
			want := map[string]bool{}
			for _, e := range elems {
				want[string(e)] = true
			}
			for _, g := range got {
				if !want[string(g)] {
					t.Fatalf("set: decoded %q, not in the input", g)
				}
			}
			if len(got) != len(elems) {
				t.Fatalf("set: decoded %d members, want %d", len(got), len(elems))
			}
			continue
		}
		if len(got) != len(elems) {
			t.Fatalf("%v: decoded %d elements, want %d", k, len(got), len(elems))
		}
		for j := range got {
			if !bytes.Equal(got[j], elems[j]) {
				t.Fatalf("%v: element %d is %q, want %q", k, j, got[j], elems[j])
			}
		}
	}
}

// BenchmarkEncodeNative compares EncodeNative with Encode on the small
// values of the benchmark's dataset (ten elements of 8 bytes).
func BenchmarkEncodeNative(b *testing.B) {
	mk := func(n int, f func(i int) string) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte(f(i))
		}
		return out
	}
	vals := map[Kind][][]byte{
		KindHash: mk(20, func(i int) string { return fmt.Sprintf("f%07d", i) }),
		KindZSet: mk(20, func(i int) string {
			if i%2 == 1 {
				return strconv.FormatFloat(float64(i)*1.5, 'g', -1, 64)
			}
			return fmt.Sprintf("m%07d", i)
		}),
		KindSet:  mk(10, func(i int) string { return fmt.Sprintf("s%07d", i) }),
		KindList: mk(10, func(i int) string { return fmt.Sprintf("l%07d", i) }),
	}
	for _, k := range []Kind{KindHash, KindZSet, KindSet, KindList} {
		elems := vals[k]
		b.Run(k.String()+"/plain", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf, _ = Encode(buf[:0], k, elems, 11)
			}
		})
		b.Run(k.String()+"/native", func(b *testing.B) {
			enc := Encoder{Limits: DefaultLimits()}
			var buf []byte
			for b.Loop() {
				buf, _, _ = enc.EncodeNative(buf[:0], k, elems, 11)
			}
		})
	}
}
