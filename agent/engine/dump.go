// The dump: its options and stats, and its orchestration: one goroutine
// SCANs, readers read batches of keys (one connection each), and the writer
// writes small keys as they come and reads big keys in windows.

package engine

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/redback-dev/redback/codec"
)

// KeyWriter receives the keys of a dump. *codec.Writer satisfies it. Keys
// arrive grouped by database, in ascending database order.
type KeyWriter interface {
	BeginKey(h codec.KeyHeader) error
	WriteString(v []byte) error
	WriteStringPart(p []byte) error
	WriteField(field, value []byte) error
	WriteFieldExpire(field, value []byte, expireAt int64) error
	WriteItem(v []byte) error
	WriteMember(member, score []byte) error
	WriteStreamEntry(e codec.StreamEntry) error
	EndKey() error
}

// DumpOptions tune a dump. Zero values take the defaults.
type DumpOptions struct {
	// Databases to dump; empty means every database that holds keys.
	Databases []int
	// ScanCount is the COUNT of each SCAN and the size of a read batch.
	ScanCount int
	// Workers is the number of batches read concurrently (one connection each).
	Workers int
	// BigElements: a collection with more elements is read in windows
	// (with ReadCommands; ReadAuto judges by MEMORY USAGE against BigBytes
	// alone, since a DUMP of many small elements stays small).
	BigElements int64
	// BigBytes: a string longer than this, or a collection whose estimated
	// memory is larger, is read in windows.
	BigBytes int64
	// Window is the element count of one window of a big collection.
	Window int
	// StringWindow is the byte size of one GETRANGE window of a big string.
	StringWindow int64
	// BatchBytes caps the estimated bytes read in one pipeline.
	BatchBytes int64
	// PipelineKeys caps the DUMPs sent in one pipeline. The server reads
	// 16 KiB of a client's commands at a time and runs them all before it
	// serves anyone else: a pipeline of 1,000 DUMPs makes the other
	// clients wait for some 400 of them (about 2 ms on the benchmark's
	// machine) per reader; 128 keep that wait a third as long.
	PipelineKeys int
	// KeysPerSecond and BytesPerSecond cap the agent's read rate (0: no cap).
	KeysPerSecond  float64
	BytesPerSecond float64
	// Progress, when set, is called from the dump's writer goroutine (one
	// call at a time) after every batch. It must return quickly.
	Progress func(Progress)
	// ReadMode says how small keys are read (DUMP or commands).
	ReadMode ReadMode
	// SkipKeys are never backed up (redback's own lease key: restoring it
	// would block other agents).
	SkipKeys [][]byte
	// Select, when set, keeps only the keys it returns true for
	// (backup.include/exclude); it is called from the scanning goroutine.
	Select func(key []byte) bool
	// Now is the clock used for absolute expiry times (tests).
	Now func() time.Time
}

func (o *DumpOptions) defaults() {
	if o.ScanCount <= 0 {
		o.ScanCount = 1000
	}
	if o.Workers <= 0 {
		o.Workers = 3
	}
	if o.BigElements <= 0 {
		o.BigElements = 2048
	}
	if o.BigBytes <= 0 {
		o.BigBytes = 1 << 20
	}
	if o.Window <= 0 {
		o.Window = 1000
	}
	if o.StringWindow <= 0 {
		o.StringWindow = 1 << 20
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 2 << 20
	}
	if o.PipelineKeys <= 0 {
		o.PipelineKeys = 128
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Progress reports a running dump or restore.
type Progress struct {
	KeysDone  int64 // keys written (dump) or processed (restore)
	KeysTotal int64 // keys expected (DBSIZE sum, or -1 when unknown)
	Bytes     int64 // value bytes read from Redis (dump) or archive bytes consumed (restore)
	DB        int
}

// DumpStats is what a dump did.
type DumpStats struct {
	Keys       int64         // keys written
	KeysPerDB  map[int]int64 // keys written per database
	Vanished   int64         // keys that disappeared (or expired) between SCAN and read
	Duplicates int64         // keys SCAN returned more than once (written once)
	BigKeys    int64         // keys read in windows
	Bytes      int64         // value bytes read
	// RawKeys counts the keys of types the engine does not model, kept as
	// the server's DUMP payload, by their TYPE name.
	RawKeys map[string]int64
	// FieldTTLKeys counts the hashes whose fields carry expiry times.
	FieldTTLKeys int64
}

// Dumper reads every key of one Redis server (one node: the unit a cluster
// dump runs on each primary or replica).
type Dumper struct {
	base *redis.Options
	opt  DumpOptions
	dump dumpState
	// fieldTTLs: the server keeps hash field expiry times (set by Dump).
	fieldTTLs bool
	// bigFieldTTLs is set by writeScanned when the big hash it wrote had
	// field expiry times (read by writeBatch, in the same goroutine).
	bigFieldTTLs bool
}

// NewDumper returns a Dumper for the server base points at.
func NewDumper(base *redis.Options, opt DumpOptions) *Dumper {
	opt.defaults()
	return &Dumper{base: base, opt: opt}
}

func (d *Dumper) skip(k []byte) bool {
	if isTempKey(k) {
		return true // a restore's half-built key: never part of a backup
	}
	for _, s := range d.opt.SkipKeys {
		if string(s) == string(k) {
			return true
		}
	}
	return d.opt.Select != nil && !d.opt.Select(k)
}

// Dump writes every key of the chosen databases to w. It returns when all
// keys are written, or at the first error (ctx cancelled, Redis gone, w
// failing); after an error w holds a partial document that must be
// discarded.
func (d *Dumper) Dump(ctx context.Context, facts ServerFacts, w KeyWriter) (st DumpStats, err error) {
	defer recoverTo(&err)
	st = DumpStats{KeysPerDB: map[int]int64{}, RawKeys: map[string]int64{}}
	d.fieldTTLs = facts.Server.FieldTTLs()
	dbs := d.opt.Databases
	if len(dbs) == 0 {
		dbs = facts.Databases()
	} else {
		dbs = append([]int(nil), dbs...)
		sort.Ints(dbs)
	}
	var total int64
	for _, db := range dbs {
		total += facts.KeysPerDB[db]
	}
	prog := &progressState{total: total, fn: d.opt.Progress}
	var keyLimiter, byteLimiter *rate.Limiter
	if d.opt.KeysPerSecond > 0 {
		keyLimiter = rate.NewLimiter(rate.Limit(d.opt.KeysPerSecond), max(int(d.opt.KeysPerSecond), d.opt.ScanCount))
	}
	if d.opt.BytesPerSecond > 0 {
		byteLimiter = rate.NewLimiter(rate.Limit(d.opt.BytesPerSecond), max(int(d.opt.BytesPerSecond), 64<<20))
	}
	for _, db := range dbs {
		if err := d.dumpDB(ctx, db, w, &st, prog, keyLimiter, byteLimiter); err != nil {
			return st, fmt.Errorf("database %d: %w", db, err)
		}
	}
	return st, nil
}

type progressState struct {
	total, done, bytes int64
	fn                 func(Progress)
}

func (p *progressState) report(db int) {
	if p.fn != nil {
		p.fn(Progress{KeysDone: p.done, KeysTotal: p.total, Bytes: p.bytes, DB: db})
	}
}

// keyMeta is what the meta script tells of one key.
type keyMeta struct {
	key       []byte
	typ       codec.Type
	redisType string // TYPE's answer, for TypeRaw
	pttl      int64
	length    int64
	mem       int64
}

// readKey is a small key read whole.
type readKey struct {
	meta  keyMeta
	items [][]byte // string: [value]; hash: f,v,...; list/set: items; zset: m,s,...; raw: [payload]
	// fieldExpire, for a hash, is the expiry of each field (Unix ms, 0 for
	// none), parallel to the pairs of items; nil when no field has one.
	fieldExpire []int64
	raw         *codec.RawInfo
}

type batchResult struct {
	small    []readKey
	big      []keyMeta
	vanished int64
	bytes    int64
	readAt   time.Time
}

func (d *Dumper) dumpDB(ctx context.Context, db int, w KeyWriter, st *DumpStats, prog *progressState, keyLim, byteLim *rate.Limiter) error {
	c := newClient(d.base, db, d.opt.Workers+2)
	defer c.Close()
	meta := redis.NewScript(metaScript)
	if err := meta.Load(ctx, c).Err(); err != nil {
		return wrapRedis("SCRIPT LOAD", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan [][]byte, d.opt.Workers)
	results := make(chan batchResult, 2*d.opt.Workers)
	var dups atomic.Int64

	// Scanner: SCAN the keyspace, drop keys seen before, hand out batches.
	g.Go(guard(func() error {
		defer close(batches)
		seen := newHashSet()
		var cursor uint64
		for {
			raw, err := c.DoRaw(gctx, "SCAN", cursor, "COUNT", d.opt.ScanCount).Bytes()
			if err != nil {
				return wrapRedis("SCAN", err)
			}
			next, keys, err := parseScan(raw, nil)
			if err != nil {
				return wrapRedis("SCAN", err)
			}
			fresh := keys[:0]
			for _, k := range keys {
				if d.skip(k) {
					continue
				}
				if seen.add(k) {
					fresh = append(fresh, k)
				} else {
					dups.Add(1)
				}
			}
			for len(fresh) > 0 {
				n := min(len(fresh), d.opt.ScanCount)
				if keyLim != nil {
					if err := keyLim.WaitN(gctx, n); err != nil {
						return err
					}
				}
				select {
				case batches <- fresh[:n:n]:
				case <-gctx.Done():
					return gctx.Err()
				}
				fresh = fresh[n:]
			}
			cursor = next
			if cursor == 0 {
				return nil
			}
		}
	}))

	// Readers: read the batches, in a group of their own so that results
	// closes when the last one ends (and the first one's error stops the
	// others at once).
	g.Go(guard(func() error {
		defer close(results)
		readers, rctx := errgroup.WithContext(gctx)
		for i := 0; i < d.opt.Workers; i++ {
			readers.Go(guard(func() error {
				for keys := range batches {
					res, err := d.readBatch(rctx, c, meta, keys)
					if err != nil {
						return err
					}
					if byteLim != nil && res.bytes > 0 {
						if err := byteLim.WaitN(rctx, int(min(res.bytes, int64(byteLim.Burst())))); err != nil {
							return err
						}
					}
					select {
					case results <- res:
					case <-rctx.Done():
						return rctx.Err()
					}
				}
				return nil
			}))
		}
		return readers.Wait()
	}))

	// Writer: small keys as they come, big keys read here in windows so
	// that they stay contiguous in the archive.
	g.Go(guard(func() error {
		for res := range results {
			if err := d.writeBatch(gctx, c, db, w, res, st, prog); err != nil {
				return err
			}
		}
		return nil
	}))
	// The group keeps the first error: the failure, not the cancellation
	// the other goroutines saw after it.
	err := g.Wait()
	st.Duplicates += dups.Load()
	if err != nil {
		return err
	}
	return ctx.Err()
}

func parseType(b []byte) (codec.Type, bool) {
	switch string(b) {
	case "string":
		return codec.TypeString, true
	case "hash":
		return codec.TypeHash, true
	case "list":
		return codec.TypeList, true
	case "set":
		return codec.TypeSet, true
	case "zset":
		return codec.TypeZSet, true
	case "stream":
		return codec.TypeStream, true
	}
	return 0, false
}

// readBatch reads a batch of keys: with DUMP (ReadAuto) unless the server
// refused it, else with commands.
func (d *Dumper) readBatch(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) (batchResult, error) {
	if d.opt.ReadMode == ReadAuto && !d.dump.refused.Load() {
		res, refused, err := d.readBatchDump(ctx, c, meta, keys)
		if !refused {
			return res, err
		}
		d.dump.refused.Store(true)
	}
	return d.readBatchCommands(ctx, c, meta, keys)
}

// rawCmd queues a command whose reply is kept as raw RESP.
func rawCmd(ctx context.Context, pipe redis.Pipeliner, args ...any) *redis.RawCmd {
	cmd := redis.NewRawCmd(ctx, args...)
	_ = pipe.Process(ctx, cmd)
	return cmd
}

func (d *Dumper) header(db int, m keyMeta, readAt time.Time) codec.KeyHeader {
	h := codec.KeyHeader{DB: db, Key: m.key, Type: m.typ}
	if m.typ == codec.TypeRaw {
		h.Raw = &codec.RawInfo{RedisType: m.redisType}
	}
	if m.pttl > 0 {
		h.PTTL = m.pttl
		h.ExpireAt = readAt.UnixMilli() + m.pttl
	}
	return h
}

func (d *Dumper) writeBatch(ctx context.Context, c *redis.Client, db int, w KeyWriter, res batchResult, st *DumpStats, prog *progressState) error {
	for _, k := range res.small {
		h := d.header(db, k.meta, res.readAt)
		if k.raw != nil {
			h.Raw = k.raw
			st.RawKeys[k.raw.RedisType]++
		}
		if k.fieldExpire != nil {
			h.FieldTTLs = true
			st.FieldTTLKeys++
		}
		if err := writeSmall(w, h, k.items, k.fieldExpire); err != nil {
			return err
		}
	}
	n := int64(len(res.small))
	st.Keys += n
	st.KeysPerDB[db] += n
	st.Vanished += res.vanished
	st.Bytes += res.bytes
	prog.done += n
	prog.bytes += res.bytes
	for _, m := range res.big {
		d.bigFieldTTLs = false
		ok, bytes, err := d.writeBig(ctx, c, db, w, m)
		if err != nil {
			return fmt.Errorf("key %s: %w", quoteKey(m.key), err)
		}
		if ok && d.bigFieldTTLs {
			st.FieldTTLKeys++
		}
		st.Bytes += bytes
		prog.bytes += bytes
		if !ok {
			st.Vanished++
			continue
		}
		st.Keys++
		st.BigKeys++
		st.KeysPerDB[db]++
		prog.done++
	}
	prog.report(db)
	return nil
}

func writeSmall(w KeyWriter, h codec.KeyHeader, items [][]byte, fieldExpire []int64) error {
	if err := w.BeginKey(h); err != nil {
		return err
	}
	var err error
	switch h.Type {
	case codec.TypeString, codec.TypeRaw:
		err = w.WriteString(items[0])
	case codec.TypeHash:
		for i := 0; i+1 < len(items) && err == nil; i += 2 {
			if fieldExpire != nil {
				err = w.WriteFieldExpire(items[i], items[i+1], fieldExpire[i/2])
			} else {
				err = w.WriteField(items[i], items[i+1])
			}
		}
	case codec.TypeList, codec.TypeSet:
		for i := 0; i < len(items) && err == nil; i++ {
			err = w.WriteItem(items[i])
		}
	case codec.TypeZSet:
		for i := 0; i+1 < len(items) && err == nil; i += 2 {
			err = w.WriteMember(items[i], items[i+1])
		}
	}
	if err != nil {
		return err
	}
	return w.EndKey()
}

// ReadMode says how small keys are read.
type ReadMode int

const (
	// ReadAuto reads small keys with DUMP, decoded here (the server then
	// copies its compact encodings instead of formatting every element),
	// and falls back to ReadCommands when the server refuses DUMP.
	ReadAuto ReadMode = iota
	// ReadCommands reads small keys with GET, HGETALL, LRANGE, SMEMBERS
	// and ZRANGE WITHSCORES.
	ReadCommands
)

// dumpState remembers whether DUMP works on this server.
type dumpState struct{ refused atomic.Bool }
