// Package datagen fills a Redis server with generated data for tests and
// benchmarks: every type, binary bytes in keys, fields, members and values,
// TTLs, big keys, several databases. The data depends only on the seed.
package datagen

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Spec says what to generate in one database.
type Spec struct {
	Keys int // small keys, of mixed types
	// TTLPercent of the small keys get a TTL of 1 to 10 hours.
	TTLPercent int
	// Binary makes about one key in eight use bytes that are not UTF-8 (in
	// the key, fields, members or values).
	Binary bool
	// BigElements creates one hash, list, set and zset of this many
	// elements each (0: none).
	BigElements int
	// BigString creates one string of this many bytes (0: none).
	BigString int
	// Streams creates this many streams with entries and consumer groups.
	Streams int
	Seed    uint64
}

// Emitter receives the generated commands.
type Emitter interface {
	// Cmd queues one command.
	Cmd(args ...string) error
	// Flush sends what is queued.
	Flush() error
}

// Pipeliner is a client that makes pipelines: *redis.Client, or a
// *redis.ClusterClient (which routes each command by its key's slot).
type Pipeliner interface {
	Pipeline() redis.Pipeliner
}

// Fill writes spec's data into c's database, in pipelines.
func Fill(ctx context.Context, c Pipeliner, spec Spec) error {
	e := &pipeEmitter{ctx: ctx, pipe: c.Pipeline()}
	if err := Generate(e, spec); err != nil {
		return err
	}
	return e.Flush()
}

type pipeEmitter struct {
	ctx  context.Context
	pipe redis.Pipeliner
}

func (p *pipeEmitter) Cmd(args ...string) error {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	p.pipe.Do(p.ctx, a...)
	if p.pipe.Len() >= 1000 {
		return p.Flush()
	}
	return nil
}

func (p *pipeEmitter) Flush() error {
	if p.pipe.Len() == 0 {
		return nil
	}
	cmds, err := p.pipe.Exec(p.ctx)
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("%v: %w", c.Args()[0], c.Err())
			}
		}
	}
	return err
}

// RESPWriter is an Emitter that writes the commands in RESP to w, as
// `redis-cli --pipe` reads them.
type RESPWriter struct {
	W   *bufio.Writer
	buf []byte
}

// Cmd implements Emitter.
func (r *RESPWriter) Cmd(args ...string) error {
	b := r.buf[:0]
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	r.buf = b
	_, err := r.W.Write(b)
	return err
}

// Flush implements Emitter.
func (r *RESPWriter) Flush() error { return r.W.Flush() }

// Generate emits spec's data as commands.
func Generate(e Emitter, spec Spec) error {
	rng := rand.New(rand.NewPCG(spec.Seed, 42))
	var err error
	do := func(args ...string) {
		if err == nil {
			err = e.Cmd(args...)
		}
	}
	for i := 0; i < spec.Keys; i++ {
		bin := spec.Binary && rng.IntN(8) == 0
		key := fmt.Sprintf("key:%d:%s", i, word(rng, 6))
		if bin {
			key += string(binBytes(rng, 4))
		}
		switch rng.IntN(10) {
		case 0, 1, 2, 3: // strings
			v := randValue(rng, bin, 8+rng.IntN(120))
			if rng.IntN(50) == 0 {
				v = strconv.Itoa(rng.IntN(1 << 30)) // a counter
			}
			do("SET", key, v)
		case 4, 5: // hashes
			n := 1 + rng.IntN(12)
			args := []string{"HSET", key}
			for j := 0; j < n; j++ {
				args = append(args, "f"+strconv.Itoa(j)+randValue(rng, bin, 3), randValue(rng, bin, 5+rng.IntN(40)))
			}
			do(args...)
		case 6: // lists
			n := 1 + rng.IntN(15)
			args := []string{"RPUSH", key}
			for j := 0; j < n; j++ {
				args = append(args, randValue(rng, bin, 4+rng.IntN(30)))
			}
			do(args...)
		case 7: // sets
			n := 1 + rng.IntN(15)
			args := []string{"SADD", key}
			for j := 0; j < n; j++ {
				args = append(args, "m"+strconv.Itoa(j)+randValue(rng, bin, 6))
			}
			do(args...)
		default: // sorted sets
			n := 1 + rng.IntN(15)
			args := []string{"ZADD", key}
			for j := 0; j < n; j++ {
				args = append(args, formatScore(score(rng)), "z"+strconv.Itoa(j)+randValue(rng, bin, 6))
			}
			do(args...)
		}
		if spec.TTLPercent > 0 && rng.IntN(100) < spec.TTLPercent {
			ms := (3600+durationJitter(rng))*1000 + int64(rng.IntN(1000))
			do("PEXPIRE", key, strconv.FormatInt(ms, 10))
		}
		if err != nil {
			return err
		}
	}
	if spec.BigElements > 0 {
		fillBig(do, rng, spec.BigElements, spec.Binary)
	}
	if spec.BigString > 0 {
		fillBigString(do, rng, spec.BigString, spec.Binary)
	}
	for s := 0; s < spec.Streams; s++ {
		fillStream(do, rng, fmt.Sprintf("stream:%d", s), 5+rng.IntN(50))
	}
	if err != nil {
		return err
	}
	return e.Flush()
}

func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func durationJitter(rng *rand.Rand) int64 { return int64(rng.IntN(9 * 3600)) }

func score(rng *rand.Rand) float64 {
	switch rng.IntN(20) {
	case 0:
		return math.Inf(1)
	case 1:
		return math.Inf(-1)
	case 2:
		return float64(rng.IntN(1000))
	}
	return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(30)-10))
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func word(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// binBytes returns bytes that are not valid UTF-8 (and include NUL).
func binBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	b[0] = 0xff
	if n > 1 {
		b[1] = 0
	}
	return b
}

func randValue(rng *rand.Rand, bin bool, n int) string {
	if bin && rng.IntN(3) == 0 {
		return string(binBytes(rng, n))
	}
	switch rng.IntN(12) {
	case 0:
		return "ünïcødé ✓ " + word(rng, n)
	case 1:
		return "line\nbreak\t\"quoted\" \\ " + word(rng, n)
	}
	return word(rng, n)
}

func fillBig(do func(...string), rng *rand.Rand, n int, bin bool) {
	const step = 1000
	for start := 0; start < n; start += step {
		end := min(start+step, n)
		h := []string{"HSET", "big:hash"}
		l := []string{"RPUSH", "big:list"}
		st := []string{"SADD", "big:set"}
		z := []string{"ZADD", "big:zset"}
		for i := start; i < end; i++ {
			h = append(h, "field:"+strconv.Itoa(i), randValue(rng, bin, 20))
			l = append(l, randValue(rng, bin, 16))
			st = append(st, "member:"+strconv.Itoa(i))
			z = append(z, formatScore(score(rng)), "zm:"+strconv.Itoa(i))
		}
		do(h...)
		do(l...)
		do(st...)
		do(z...)
	}
	do("EXPIRE", "big:zset", strconv.Itoa(48*3600))
}

func fillBigString(do func(...string), rng *rand.Rand, n int, bin bool) {
	const step = 1 << 20
	for off := 0; off < n; off += step {
		size := min(step, n-off)
		var part []byte
		if bin {
			part = binBytes(rng, size)
		} else {
			part = []byte(word(rng, size))
		}
		do("APPEND", "big:string", string(part))
	}
}

func fillStream(do func(...string), rng *rand.Rand, key string, n int) {
	for i := 0; i < n; i++ {
		do("XADD", key, fmt.Sprintf("%d-%d", 1700000000000+i, i%3), "f1", word(rng, 8), "f0", strconv.Itoa(i))
	}
	do("XGROUP", "CREATE", key, "workers", "0")
	do("XGROUP", "CREATE", key, "audit", "$")
	// Deliver a few entries so that last-delivered-id and entries-read move.
	do("XREADGROUP", "GROUP", "workers", "c1", "COUNT", "3", "STREAMS", key, ">")
	// Delete an entry: max-deleted-entry-id moves, last-generated-id stays.
	do("XDEL", key, fmt.Sprintf("%d-%d", 1700000000000+n-1, (n-1)%3))
}
