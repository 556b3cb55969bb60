package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	// KeysPerSecond and BytesPerSecond cap the agent's read rate (0: no cap).
	KeysPerSecond  float64
	BytesPerSecond float64
	// Progress, when set, is called from the dump's goroutine after every
	// batch. It must return quickly.
	Progress func(Progress)
	// ReadMode says how small keys are read (DUMP or commands).
	ReadMode ReadMode
	// SkipKeys are never backed up (redback's own lease key: restoring it
	// would block other agents).
	SkipKeys [][]byte
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
	return false
}

// ServerFacts describes the server, for the archive header and for stats.
type ServerFacts struct {
	RedisVersion string // INFO's redis_version (7.2.4 on every Valkey)
	Server       Server // kind and own version
	Role         string
	Mode         string
	// KeysPerDB is the key count of every database that holds keys.
	KeysPerDB  map[int]int64
	UsedMemory int64
	// DatasetMemory is INFO's used_memory_dataset: what the keys take,
	// without the server's own overhead (what a restore of them needs).
	DatasetMemory int64
}

// Databases returns the numbers of KeysPerDB, ascending.
func (f ServerFacts) Databases() []int {
	dbs := make([]int, 0, len(f.KeysPerDB))
	for db := range f.KeysPerDB {
		dbs = append(dbs, db)
	}
	sort.Ints(dbs)
	return dbs
}

// Inspect reads the server's version, role, mode and key counts.
func Inspect(ctx context.Context, base *redis.Options) (ServerFacts, error) {
	c := newClient(base, base.DB, 1)
	defer c.Close()
	info, err := serverInfo(ctx, c, "server", "replication", "keyspace", "memory")
	if err != nil {
		return ServerFacts{}, err
	}
	f := ServerFacts{
		RedisVersion: info["redis_version"],
		Server:       serverOf(info),
		Role:         info["role"],
		Mode:         info["redis_mode"],
		KeysPerDB:    map[int]int64{},
	}
	if f.Mode == "" {
		f.Mode = info["server_mode"] // Valkey 8 and later
	}
	f.UsedMemory, _ = strconv.ParseInt(info["used_memory"], 10, 64)
	f.DatasetMemory, _ = strconv.ParseInt(info["used_memory_dataset"], 10, 64)
	for k, v := range info {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		db, err := strconv.Atoi(k[2:])
		if err != nil {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(part, "keys="); ok {
				if keys, err := strconv.ParseInt(n, 10, 64); err == nil && keys > 0 {
					f.KeysPerDB[db] = keys
				}
			}
		}
	}
	return f, nil
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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

	// Workers: read the batches.
	var wg sync.WaitGroup
	for i := 0; i < d.opt.Workers; i++ {
		wg.Add(1)
		g.Go(guard(func() error {
			defer wg.Done()
			for keys := range batches {
				res, err := d.readBatch(gctx, c, meta, keys)
				if err != nil {
					return err
				}
				if byteLim != nil && res.bytes > 0 {
					if err := byteLim.WaitN(gctx, int(min(res.bytes, int64(byteLim.Burst())))); err != nil {
						return err
					}
				}
				select {
				case results <- res:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		}))
	}
	go func() { wg.Wait(); close(results) }()

	// This goroutine writes: small keys as they come, big keys read here in
	// windows so that they stay contiguous in the archive.
	var werr error
	for res := range results {
		if werr != nil {
			continue // drain so the workers can finish
		}
		werr = guard(func() error { return d.writeBatch(gctx, c, db, w, res, st, prog) })()
		if werr != nil {
			cancel()
		}
	}
	gerr := g.Wait()
	st.Duplicates += dups.Load()
	// When one side fails the other sees its cancellation: report the
	// failure, not "context canceled".
	if err := rootCause(werr, gerr); err != nil {
		return err
	}
	return ctx.Err()
}

// metaScript returns, for each key: type, PTTL, length, and a memory
// estimate for collections of more than 32 elements.
const metaScript = `
local r = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local t = redis.call('TYPE', k).ok
  local n, m = 0, 0
  if t == 'string' then n = redis.call('STRLEN', k)
  elseif t == 'hash' then n = redis.call('HLEN', k)
  elseif t == 'list' then n = redis.call('LLEN', k)
  elseif t == 'set' then n = redis.call('SCARD', k)
  elseif t == 'zset' then n = redis.call('ZCARD', k)
  elseif t == 'stream' then n = redis.call('XLEN', k)
  end
  if t ~= 'string' and t ~= 'none' and n > 32 then
    m = redis.call('MEMORY', 'USAGE', k) or 0
  end
  r[#r+1] = t
  r[#r+1] = redis.call('PTTL', k)
  r[#r+1] = n
  r[#r+1] = m
end
return r
`

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

// inspectKeys runs the meta script over keys.
func inspectKeys(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) ([]keyMeta, error) {
	args := make([]any, 0, len(keys)+3)
	args = append(args, "EVALSHA", meta.Hash(), len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	raw, err := c.DoRaw(ctx, args...).Bytes()
	if err != nil {
		return nil, wrapRedis("EVALSHA", err)
	}
	if len(raw) > 0 && raw[0] == '-' && strings.HasPrefix(string(raw), "-NOSCRIPT") {
		// The script cache was flushed (SCRIPT FLUSH, a restart): load again.
		if err := meta.Load(ctx, c).Err(); err != nil {
			return nil, wrapRedis("SCRIPT LOAD", err)
		}
		return inspectKeys(ctx, c, meta, keys)
	}
	n, off, err := parseArrayHeader(raw)
	if err != nil {
		return nil, wrapRedis("EVALSHA", err)
	}
	if n != 4*len(keys) {
		return nil, fmt.Errorf("redis EVALSHA: %d values for %d keys", n, len(keys))
	}
	out := make([]keyMeta, 0, len(keys))
	for i := range keys {
		var f [4][]byte
		for j := range f {
			v, _, used, err := parseBulk(raw[off:])
			if err != nil {
				return nil, wrapRedis("EVALSHA", err)
			}
			f[j] = v
			off += used
		}
		m := keyMeta{key: keys[i]}
		typ, ok := parseType(f[0])
		if !ok && string(f[0]) != "none" {
			// A type the engine does not model: kept as its DUMP payload.
			typ, m.redisType = codec.TypeRaw, string(f[0])
		}
		m.typ = typ
		m.pttl, _ = strconv.ParseInt(string(f[1]), 10, 64)
		m.length, _ = strconv.ParseInt(string(f[2]), 10, 64)
		m.mem, _ = strconv.ParseInt(string(f[3]), 10, 64)
		out = append(out, m)
	}
	return out, nil
}

func (d *Dumper) isBig(m keyMeta) bool {
	switch m.typ {
	case codec.TypeString:
		return m.length > d.opt.BigBytes
	case codec.TypeStream:
		return true // streams always take the windowed path (it reads their metadata)
	case codec.TypeRaw:
		return false // a DUMP payload is read whole
	}
	return m.length > d.opt.BigElements || m.mem > d.opt.BigBytes
}

func (d *Dumper) estimate(m keyMeta) int64 {
	if m.typ == codec.TypeString {
		return m.length + 64
	}
	if m.typ == codec.TypeRaw {
		return 64 << 10 // unknown: a module value is often large
	}
	if m.mem > 0 {
		return m.mem
	}
	return 64 + 64*m.length
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

// readBatchCommands reads the metadata of keys, then the values of the
// small ones, in pipelines of at most BatchBytes estimated bytes.
func (d *Dumper) readBatchCommands(ctx context.Context, c *redis.Client, meta *redis.Script, keys [][]byte) (batchResult, error) {
	metas, err := inspectKeys(ctx, c, meta, keys)
	if err != nil {
		return batchResult{}, err
	}
	res := batchResult{readAt: d.opt.Now()}
	var pending []keyMeta
	var budget int64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		got, vanished, bytes, err := d.readValues(ctx, c, meta, pending)
		if err != nil {
			return err
		}
		res.small = append(res.small, got...)
		res.vanished += vanished
		res.bytes += bytes
		pending, budget = pending[:0], 0
		return nil
	}
	for _, m := range metas {
		if m.typ == 0 || m.pttl == -2 || m.pttl == 0 {
			res.vanished++ // gone, or expiring this millisecond
			continue
		}
		if d.isBig(m) {
			res.big = append(res.big, m)
			continue
		}
		est := d.estimate(m)
		if budget+est > d.opt.BatchBytes && len(pending) > 0 {
			if err := flush(); err != nil {
				return res, err
			}
		}
		pending = append(pending, m)
		budget += est
	}
	return res, flush()
}

// readValues reads small keys whole, one pipeline. A key that vanished is
// counted; one that changed type is inspected and read again.
func (d *Dumper) readValues(ctx context.Context, c *redis.Client, meta *redis.Script, metas []keyMeta) ([]readKey, int64, int64, error) {
	pipe := c.Pipeline()
	cmds := make([]*redis.RawCmd, len(metas))
	for i, m := range metas {
		switch m.typ {
		case codec.TypeString:
			cmds[i] = rawCmd(ctx, pipe, "GET", m.key)
		case codec.TypeHash:
			cmds[i] = rawCmd(ctx, pipe, "HGETALL", m.key)
		case codec.TypeList:
			cmds[i] = rawCmd(ctx, pipe, "LRANGE", m.key, 0, -1)
		case codec.TypeSet:
			cmds[i] = rawCmd(ctx, pipe, "SMEMBERS", m.key)
		case codec.TypeZSet:
			cmds[i] = rawCmd(ctx, pipe, "ZRANGE", m.key, 0, -1, "WITHSCORES")
		case codec.TypeRaw:
			cmds[i] = rawCmd(ctx, pipe, "DUMP", m.key)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, 0, wrapRedis("read values", err)
	}
	out := make([]readKey, 0, len(metas))
	var vanished, bytes int64
	var retry [][]byte
	for i, m := range metas {
		raw := cmds[i].Val()
		bytes += int64(len(raw))
		var items [][]byte
		var err error
		var ri *codec.RawInfo
		if m.typ == codec.TypeString || m.typ == codec.TypeRaw {
			v, ok, _, perr := parseBulk(raw)
			err = perr
			if err == nil && ok {
				items = [][]byte{v}
				if m.typ == codec.TypeRaw {
					ri = rawInfo(m.redisType, v)
				}
			}
			if err != nil && m.typ == codec.TypeRaw && !isWrongType(err) {
				return nil, 0, 0, fmt.Errorf("key %s of type %s can be kept only as its DUMP payload, and DUMP failed: %w", quoteKey(m.key), m.redisType, err)
			}
		} else {
			items, _, err = parseBulkArray(raw, make([][]byte, 0, 2*m.length))
		}
		if err != nil {
			if isWrongType(err) {
				retry = append(retry, m.key)
				continue
			}
			return nil, 0, 0, fmt.Errorf("read key %s: %w", quoteKey(m.key), err)
		}
		if len(items) == 0 {
			vanished++
			continue
		}
		out = append(out, readKey{meta: m, items: items, raw: ri})
	}
	if d.fieldTTLs {
		if err := d.readFieldTTLs(ctx, c, out); err != nil {
			return nil, 0, 0, err
		}
	}
	if len(retry) > 0 {
		// Keys replaced by another type between the two reads: once more.
		metas2, err := inspectKeys(ctx, c, meta, retry)
		if err != nil {
			return nil, 0, 0, err
		}
		var again []keyMeta
		for _, m := range metas2 {
			if m.typ == 0 || m.pttl == -2 || m.pttl == 0 || d.isBig(m) {
				vanished++ // gone, or now big: rare enough to leave to the next backup
				continue
			}
			again = append(again, m)
		}
		if len(again) > 0 {
			got, v2, b2, err := d.readValues(ctx, c, meta, again)
			if err != nil {
				return nil, 0, 0, err
			}
			out = append(out, got...)
			vanished += v2
			bytes += b2
		}
	}
	return out, vanished, bytes, nil
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

// writeBig reads one big key in windows and writes it. It reports false when
// the key vanished before anything was written.
func (d *Dumper) writeBig(ctx context.Context, c *redis.Client, db int, w KeyWriter, m keyMeta) (bool, int64, error) {
	// Re-read type and TTL now: the batch may be old.
	raw, err := c.DoRaw(ctx, "PTTL", m.key).Bytes()
	if err != nil {
		return false, 0, wrapRedis("PTTL", err)
	}
	pv, _, _, err := parseBulk(raw)
	if err != nil {
		return false, 0, wrapRedis("PTTL", err)
	}
	m.pttl, _ = strconv.ParseInt(string(pv), 10, 64)
	if m.pttl == -2 || m.pttl == 0 {
		return false, 0, nil
	}
	readAt := d.opt.Now()
	h := d.header(db, m, readAt)
	switch m.typ {
	case codec.TypeString:
		return d.writeBigString(ctx, c, w, h)
	case codec.TypeStream:
		return d.writeStream(ctx, c, w, h)
	case codec.TypeHash:
		h.HashAsPairs = true
		ok, n, err := d.writeScanned(ctx, c, w, h, "HSCAN", 2)
		return ok, n, err
	case codec.TypeSet:
		return d.writeScanned(ctx, c, w, h, "SSCAN", 1)
	case codec.TypeList, codec.TypeZSet:
		return d.writeRanged(ctx, c, w, h)
	}
	return false, 0, fmt.Errorf("unexpected type %v", m.typ)
}

// writeBigString reads a string in GETRANGE windows twice: once to learn
// whether it is valid UTF-8 (which decides its encoding in the archive), once
// to write it.
func (d *Dumper) writeBigString(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	var tc codec.TextChecker
	var total int64
	err := d.stringWindows(ctx, c, h.Key, func(p []byte) error {
		_, _ = tc.Write(p)
		total += int64(len(p))
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	if total == 0 {
		// An empty string, or a key gone: GETRANGE answers "" for both.
		n, err := c.Exists(ctx, string(h.Key)).Result()
		if err != nil {
			return false, 0, wrapRedis("EXISTS", err)
		}
		if n == 0 {
			return false, 0, nil
		}
		if err := w.BeginKey(h); err != nil {
			return false, 0, err
		}
		if err := w.WriteString(nil); err != nil {
			return false, 0, err
		}
		return true, 0, w.EndKey()
	}
	h.StringBase64 = !tc.IsText()
	if err := w.BeginKey(h); err != nil {
		return false, 0, err
	}
	if err := d.stringWindows(ctx, c, h.Key, w.WriteStringPart); err != nil {
		return false, 0, err
	}
	if err := w.EndKey(); err != nil {
		if errors.Is(err, codec.ErrStringForm) {
			return false, 0, fmt.Errorf("the value changed while it was read; take the backup again: %w", err)
		}
		return false, 0, err
	}
	return true, 2 * total, nil
}

func (d *Dumper) stringWindows(ctx context.Context, c *redis.Client, key []byte, fn func([]byte) error) error {
	for off := int64(0); ; off += d.opt.StringWindow {
		raw, err := c.DoRaw(ctx, "GETRANGE", key, off, off+d.opt.StringWindow-1).Bytes()
		if err != nil {
			return wrapRedis("GETRANGE", err)
		}
		v, _, _, err := parseBulk(raw)
		if err != nil {
			return wrapRedis("GETRANGE", err)
		}
		if len(v) == 0 {
			return nil
		}
		if err := fn(v); err != nil {
			return err
		}
		if int64(len(v)) < d.opt.StringWindow {
			return nil
		}
	}
}

// scanWindow is one HSCAN or SSCAN reply, with the HPEXPIRETIME reply for
// its fields when field TTLs are read.
type scanWindow struct{ raw, ttls []byte }

// writeScanned writes a hash (HSCAN, pairs) or a set (SSCAN). On servers
// with hash field TTLs, each window's fields have their expiry read right
// after the window.
func (d *Dumper) writeScanned(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader, cmd string, step int) (bool, int64, error) {
	withTTLs := step == 2 && d.fieldTTLs
	h.FieldTTLs = withTTLs
	var cursor uint64
	var fields [][]byte
	windows, stop := fetchAhead(ctx, 4, func(ctx context.Context) (scanWindow, bool, error) {
		raw, err := c.DoRaw(ctx, cmd, h.Key, cursor, "COUNT", d.opt.Window).Bytes()
		if err != nil {
			return scanWindow{}, false, wrapRedis(cmd, err)
		}
		var next uint64
		next, fields, err = parseScan(raw, fields[:0])
		if err != nil {
			return scanWindow{raw: raw}, false, nil // the writer reports it
		}
		cursor = next
		win := scanWindow{raw: raw}
		if withTTLs && len(fields) >= 2 {
			win.ttls, err = c.DoRaw(ctx, fieldTTLArgs(h.Key, fields)...).Bytes()
			if err != nil {
				return scanWindow{}, false, wrapRedis("HPEXPIRETIME", err)
			}
		}
		return win, next != 0, nil
	})
	defer stop()
	started := false
	var bytes int64
	var items [][]byte
	for win := range windows {
		if win.err != nil {
			return false, 0, win.err
		}
		bytes += int64(len(win.v.raw))
		var err error
		_, items, err = parseScan(win.v.raw, items[:0])
		if err != nil {
			if isWrongType(err) && !started {
				return false, bytes, nil // replaced meanwhile: next backup
			}
			return false, 0, wrapRedis(cmd, err)
		}
		var exp []int64
		if win.v.ttls != nil {
			all, err := parseFieldTTLs(win.v.ttls, len(items)/2)
			if err != nil {
				return false, 0, err
			}
			items, exp = applyFieldTTLs(items, all)
			if exp != nil {
				d.bigFieldTTLs = true
			}
		}
		if len(items) > 0 && !started {
			if err := w.BeginKey(h); err != nil {
				return false, 0, err
			}
			started = true
		}
		for i := 0; i+step-1 < len(items); i += step {
			switch {
			case exp != nil:
				err = w.WriteFieldExpire(items[i], items[i+1], exp[i/2])
			case step == 2:
				err = w.WriteField(items[i], items[i+1])
			default:
				err = w.WriteItem(items[i])
			}
			if err != nil {
				return false, 0, err
			}
		}
	}
	if !started {
		return false, bytes, nil
	}
	return true, bytes, w.EndKey()
}

// writeRanged writes a list (LRANGE windows) or a zset (ZRANGE windows, in
// score order).
func (d *Dumper) writeRanged(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	win := int64(d.opt.Window)
	start := int64(0)
	windows, stop := fetchAhead(ctx, 4, func(ctx context.Context) ([]byte, bool, error) {
		var raw []byte
		var err error
		if h.Type == codec.TypeList {
			raw, err = c.DoRaw(ctx, "LRANGE", h.Key, start, start+win-1).Bytes()
		} else {
			raw, err = c.DoRaw(ctx, "ZRANGE", h.Key, start, start+win-1, "WITHSCORES").Bytes()
		}
		if err != nil {
			return nil, false, wrapRedis("range read", err)
		}
		start += win
		n, _, err := parseArrayHeader(raw)
		if err != nil {
			return raw, false, nil // the writer reports it
		}
		if h.Type == codec.TypeZSet {
			n /= 2
		}
		return raw, int64(n) == win, nil
	})
	defer stop()
	started := false
	var bytes int64
	var items [][]byte
	for wv := range windows {
		if wv.err != nil {
			return false, 0, wv.err
		}
		bytes += int64(len(wv.v))
		var err error
		items, _, err = parseBulkArray(wv.v, items[:0])
		if err != nil {
			if isWrongType(err) && !started {
				return false, bytes, nil
			}
			return false, 0, wrapRedis("range read", err)
		}
		if len(items) == 0 {
			break
		}
		if !started {
			if err := w.BeginKey(h); err != nil {
				return false, 0, err
			}
			started = true
		}
		if h.Type == codec.TypeList {
			for _, it := range items {
				if err := w.WriteItem(it); err != nil {
					return false, 0, err
				}
			}
		} else {
			for i := 0; i+1 < len(items); i += 2 {
				if err := w.WriteMember(items[i], items[i+1]); err != nil {
					return false, 0, err
				}
			}
		}
	}
	if !started {
		return false, bytes, nil
	}
	return true, bytes, w.EndKey()
}

// writeStream writes a stream: its metadata (XINFO STREAM, XINFO GROUPS),
// then its entries in XRANGE windows.
func (d *Dumper) writeStream(ctx context.Context, c *redis.Client, w KeyWriter, h codec.KeyHeader) (bool, int64, error) {
	meta, err := streamMeta(ctx, c, h.Key)
	if err != nil {
		if errors.Is(err, errVanished) {
			return false, 0, nil
		}
		return false, 0, err
	}
	h.Stream = meta
	if err := w.BeginKey(h); err != nil {
		return false, 0, err
	}
	var bytes int64
	start := []byte("-")
	for {
		raw, err := c.DoRaw(ctx, "XRANGE", h.Key, start, "+", "COUNT", d.opt.Window).Bytes()
		if err != nil {
			return false, 0, wrapRedis("XRANGE", err)
		}
		bytes += int64(len(raw))
		v, _, err := parseValue(raw, 0)
		if err != nil {
			return false, 0, wrapRedis("XRANGE", err)
		}
		entries, _ := v.([]any)
		var last []byte
		for _, e := range entries {
			pair, _ := e.([]any)
			if len(pair) != 2 {
				return false, 0, fmt.Errorf("XRANGE: unexpected entry shape")
			}
			id, _ := pair[0].([]byte)
			fv, _ := pair[1].([]any)
			se := codec.StreamEntry{ID: id, Fields: make([][]byte, len(fv))}
			for i, x := range fv {
				se.Fields[i], _ = x.([]byte)
			}
			if err := w.WriteStreamEntry(se); err != nil {
				return false, 0, err
			}
			last = id
		}
		if len(entries) < d.opt.Window || last == nil {
			break
		}
		var more bool
		start, more, err = nextStreamID(last)
		if err != nil {
			return false, 0, err
		}
		if !more {
			break // the last entry has the greatest possible ID
		}
	}
	return true, bytes, w.EndKey()
}

var errVanished = errors.New("key vanished")

func streamMeta(ctx context.Context, c *redis.Client, key []byte) (*codec.StreamMeta, error) {
	raw, err := c.DoRaw(ctx, "XINFO", "STREAM", key).Bytes()
	if err != nil {
		return nil, wrapRedis("XINFO STREAM", err)
	}
	v, _, err := parseValue(raw, 0)
	if err != nil {
		var re replyError
		if errors.As(err, &re) && (strings.Contains(string(re), "no such key") || isWrongType(err)) {
			return nil, errVanished
		}
		return nil, wrapRedis("XINFO STREAM", err)
	}
	info := pairs(v)
	m := &codec.StreamMeta{EntriesAdded: -1}
	m.LastID, _ = info["last-generated-id"].([]byte)
	if n, ok := info["entries-added"].([]byte); ok {
		m.EntriesAdded, _ = strconv.ParseInt(string(n), 10, 64)
	}
	if id, ok := info["max-deleted-entry-id"].([]byte); ok {
		m.MaxDeletedID = id
	}
	raw, err = c.DoRaw(ctx, "XINFO", "GROUPS", key).Bytes()
	if err != nil {
		return nil, wrapRedis("XINFO GROUPS", err)
	}
	gv, _, err := parseValue(raw, 0)
	if err != nil {
		return nil, wrapRedis("XINFO GROUPS", err)
	}
	groups, _ := gv.([]any)
	var maxPending int64
	for _, g := range groups {
		gi := pairs(g)
		sg := codec.StreamGroup{EntriesRead: -1}
		sg.Name, _ = gi["name"].([]byte)
		sg.LastDeliveredID, _ = gi["last-delivered-id"].([]byte)
		if n, ok := gi["entries-read"].([]byte); ok {
			sg.EntriesRead, _ = strconv.ParseInt(string(n), 10, 64)
		}
		if n, ok := gi["pending"].([]byte); ok {
			p, _ := strconv.ParseInt(string(n), 10, 64)
			maxPending = max(maxPending, p)
		}
		m.Groups = append(m.Groups, sg)
	}
	if len(m.Groups) > 0 {
		if err := deliveryState(ctx, c, key, m, maxPending); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// maxPendingEntries caps the pending entries of one group that a backup
// keeps (they are held in memory while the stream is written).
const maxPendingEntries = 1_000_000

// deliveryState reads the consumers and pending entries of every group of a
// stream with XINFO STREAM FULL, which gives their times exactly (seen and
// active times of consumers, delivery time and count of each pending
// entry). COUNT is raised to the largest pending list so that every entry
// comes back (the entries of the stream it also returns, up to COUNT, are
// dropped).
func deliveryState(ctx context.Context, c *redis.Client, key []byte, m *codec.StreamMeta, maxPending int64) error {
	if maxPending > maxPendingEntries {
		return fmt.Errorf("a consumer group has %d pending entries, more than a backup keeps (%d)", maxPending, maxPendingEntries)
	}
	raw, err := c.DoRaw(ctx, "XINFO", "STREAM", key, "FULL", "COUNT", max(1, maxPending)).Bytes()
	if err != nil {
		return wrapRedis("XINFO STREAM FULL", err)
	}
	v, _, err := parseValue(raw, 0)
	if err != nil {
		return wrapRedis("XINFO STREAM FULL", err)
	}
	full := pairs(v)
	groups, _ := full["groups"].([]any)
	byName := map[string]*codec.StreamGroup{}
	for i := range m.Groups {
		byName[string(m.Groups[i].Name)] = &m.Groups[i]
	}
	for _, g := range groups {
		gi := pairs(g)
		name, _ := gi["name"].([]byte)
		sg := byName[string(name)]
		if sg == nil {
			continue // created since XINFO GROUPS: the next backup has it
		}
		pel, _ := gi["pending"].([]any)
		for _, e := range pel {
			t, _ := e.([]any)
			if len(t) != 4 {
				return fmt.Errorf("XINFO STREAM FULL: unexpected pending entry shape")
			}
			p := codec.StreamPending{}
			p.ID, _ = t[0].([]byte)
			p.Consumer, _ = t[1].([]byte)
			p.DeliveryTime = intOf(t[2])
			p.DeliveryCount = intOf(t[3])
			sg.Pending = append(sg.Pending, p)
		}
		cons, _ := gi["consumers"].([]any)
		for _, cv := range cons {
			ci := pairs(cv)
			sc := codec.StreamConsumer{ActiveTime: -1}
			sc.Name, _ = ci["name"].([]byte)
			sc.SeenTime = intOf(ci["seen-time"])
			if a, ok := ci["active-time"]; ok {
				sc.ActiveTime = intOf(a)
			}
			sg.Consumers = append(sg.Consumers, sc)
		}
	}
	return nil
}

// intOf reads an integer reply as parseValue returns it (its text).
func intOf(v any) int64 {
	b, _ := v.([]byte)
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return n
}

// pairs turns a flat [name, value, ...] reply into a map.
func pairs(v any) map[string]any {
	arr, _ := v.([]any)
	m := make(map[string]any, len(arr)/2)
	for i := 0; i+1 < len(arr); i += 2 {
		if k, ok := arr[i].([]byte); ok {
			m[string(k)] = arr[i+1]
		}
	}
	return m
}

// nextStreamID returns the smallest ID greater than id ("ms-seq"); more is
// false when id is the greatest ID there is.
func nextStreamID(id []byte) (next []byte, more bool, err error) {
	ms, seq, ok := strings.Cut(string(id), "-")
	if !ok {
		return nil, false, fmt.Errorf("bad stream ID %q", id)
	}
	msN, err1 := strconv.ParseUint(ms, 10, 64)
	seqN, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false, fmt.Errorf("bad stream ID %q", id)
	}
	if seqN == ^uint64(0) {
		if msN == ^uint64(0) {
			return nil, false, nil
		}
		return []byte(strconv.FormatUint(msN+1, 10) + "-0"), true, nil
	}
	return []byte(ms + "-" + strconv.FormatUint(seqN+1, 10)), true, nil
}

// parseValue parses any RESP2 reply into []byte, int64 (as []byte text),
// nil or []any. It allocates; it serves the rare replies (XINFO, XRANGE).
func parseValue(b []byte, depth int) (any, int, error) {
	if depth > 16 {
		return nil, 0, fmt.Errorf("redis: reply nested too deep")
	}
	if len(b) == 0 {
		return nil, 0, errShortReply
	}
	if b[0] != '*' {
		v, ok, n, err := parseBulk(b)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, n, nil
		}
		return v, n, nil
	}
	n, off, err := parseArrayHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if n < 0 {
		return nil, off, nil
	}
	arr := make([]any, 0, n)
	for i := 0; i < n; i++ {
		v, used, err := parseValue(b[off:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		arr = append(arr, v)
		off += used
	}
	return arr, off, nil
}

// quoteKey renders a key for an error message: quoted, at most 100 bytes.
func quoteKey(k []byte) string {
	if len(k) > 100 {
		return strconv.Quote(string(k[:100])) + "..."
	}
	return strconv.Quote(string(k))
}

// ahead is one prefetched window.
type ahead[T any] struct {
	v   T
	err error
}

// fetchAhead calls fetch in a goroutine, keeping up to depth results ready,
// so that reading a big key overlaps with writing it. fetch reports whether
// there is more. The caller must call stop when done (early or not).
func fetchAhead[T any](ctx context.Context, depth int, fetch func(context.Context) (T, bool, error)) (<-chan ahead[T], func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan ahead[T], depth)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			v, more, err := fetch(ctx)
			select {
			case ch <- ahead[T]{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || !more {
				return
			}
		}
	}()
	return ch, func() { cancel(); <-done }
}
