package rdbvalue

import (
	"fmt"
	gocrc "hash/crc64"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

var (
	benchOnce     sync.Once
	benchPayloads map[string][]byte
)

// benchData DUMPs a set of typical keys from a throw-away server once.
func benchData(b *testing.B) map[string][]byte {
	benchOnce.Do(func() {
		c := server(b)
		setups := map[string]func() error{
			"hash-listpack": func() error { // 100 fields, compressible (DUMP uses LZF)
				for i := range 100 {
					if err := c.HSet(ctx, "hash-listpack", fmt.Sprintf("field:%d", i), fmt.Sprintf("value-%d", i*7)).Err(); err != nil {
						return err
					}
				}
				return nil
			},
			"hash-listpack-raw": func() error { // 30 random-ish fields: not compressible, stored raw
				for i := range 30 {
					if err := c.HSet(ctx, "hash-listpack-raw", fmt.Sprintf("%x", i*2654435761), fmt.Sprintf("%x", i*40503)).Err(); err != nil {
						return err
					}
				}
				return nil
			},
			"hash-table": func() error {
				var args []any
				for i := range 1000 {
					args = append(args, fmt.Sprintf("field:%d", i), fmt.Sprintf("value-%d", i*7))
				}
				return c.HSet(ctx, "hash-table", args...).Err()
			},
			"zset-listpack": func() error {
				var zs []redis.Z
				for i := range 100 {
					zs = append(zs, redis.Z{Score: float64(i) * 1.25, Member: fmt.Sprintf("member:%d", i)})
				}
				return c.ZAdd(ctx, "zset-listpack", zs...).Err()
			},
			"zset-skiplist": func() error {
				var zs []redis.Z
				for i := range 1000 {
					zs = append(zs, redis.Z{Score: float64(i) / 3, Member: fmt.Sprintf("member:%d", i)})
				}
				return c.ZAdd(ctx, "zset-skiplist", zs...).Err()
			},
			"list-10k": func() error {
				var args []any
				for i := range 10000 {
					args = append(args, fmt.Sprintf("item:%d", i))
				}
				return c.RPush(ctx, "list-10k", args...).Err()
			},
			"set-intset": func() error {
				var args []any
				for i := range 500 {
					args = append(args, i*1001)
				}
				return c.SAdd(ctx, "set-intset", args...).Err()
			},
			"string-10k-lzf": func() error { return c.Set(ctx, "string-10k-lzf", strings.Repeat("a", 10000), 0).Err() },
			"string-100":     func() error { return c.Set(ctx, "string-100", strings.Repeat("xyz\x00", 25), 0).Err() },
		}
		benchPayloads = map[string][]byte{}
		for k, f := range setups {
			if err := f(); err != nil {
				b.Fatal(err)
			}
			benchPayloads[k] = dump(b, c, k)
		}
	})
	if benchPayloads == nil {
		b.Fatal("no bench data")
	}
	return benchPayloads
}

func benchDecode(b *testing.B, key string) {
	p := benchData(b)[key]
	var dec Decoder
	_, es, err := dec.Decode(p)
	if err != nil {
		b.Fatal(err)
	}
	n := len(es)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := dec.Decode(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
}

func BenchmarkDecodeHashListpack(b *testing.B)    { benchDecode(b, "hash-listpack") }
func BenchmarkDecodeHashListpackRaw(b *testing.B) { benchDecode(b, "hash-listpack-raw") }
func BenchmarkDecodeHashTable(b *testing.B)       { benchDecode(b, "hash-table") }
func BenchmarkDecodeZSetListpack(b *testing.B)    { benchDecode(b, "zset-listpack") }
func BenchmarkDecodeZSetSkiplist(b *testing.B)    { benchDecode(b, "zset-skiplist") }
func BenchmarkDecodeList10k(b *testing.B)         { benchDecode(b, "list-10k") }
func BenchmarkDecodeSetIntset(b *testing.B)       { benchDecode(b, "set-intset") }
func BenchmarkDecodeString10kLZF(b *testing.B)    { benchDecode(b, "string-10k-lzf") }
func BenchmarkDecodeString100(b *testing.B)       { benchDecode(b, "string-100") }

// BenchmarkDecodeFresh decodes with no reused buffers (the allocation cost
// of the package-level function with nil dst and scratch).
func BenchmarkDecodeFreshHashListpack(b *testing.B) {
	p := benchData(b)["hash-listpack"]
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(p, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchEncode(b *testing.B, key string) {
	var dec Decoder
	k, es, err := dec.Decode(benchData(b)[key])
	if err != nil {
		b.Fatal(err)
	}
	buf, _ := Encode(nil, k, es, 10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if buf, err = Encode(buf[:0], k, es, 10); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(es)), "ns/elem")
}

func BenchmarkEncodeHash(b *testing.B)      { benchEncode(b, "hash-listpack") }
func BenchmarkEncodeHashTable(b *testing.B) { benchEncode(b, "hash-table") }
func BenchmarkEncodeZSet(b *testing.B)      { benchEncode(b, "zset-skiplist") }
func BenchmarkEncodeList10k(b *testing.B)   { benchEncode(b, "list-10k") }
func BenchmarkEncodeString(b *testing.B)    { benchEncode(b, "string-100") }

func BenchmarkCRC64(b *testing.B) {
	tab := gocrc.MakeTable(jonesPoly)
	for _, n := range []int{64, 1024, 64 << 10} {
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("slicing8/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				CRC64(0, buf)
			}
		})
		b.Run(fmt.Sprintf("hash-crc64/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				gocrc.Update(^uint64(0), tab, buf)
			}
		})
	}
}
