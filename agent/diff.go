package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"time"

	"filippo.io/age"
	"golang.org/x/sync/errgroup"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/glob"
)

// Diff compares two sets of keys, each read once as a stream (an archive in
// SCAN order, or the live server through the dump engine), in bounded
// memory:
//
//  1. Each side is reduced to one small record per key: database, key,
//     type, absolute expiry, and a 128-bit digest of the value that does
//     not depend on the order SCAN, HSCAN or SSCAN gave (a set, hash or
//     zset digest is the sum of its elements' digests; a list, string or
//     stream digest is of its elements in order). A big key is digested
//     as its chunks go by, never held.
//  2. The records are spilled to diffParts temporary files per side,
//     partitioned by a hash of (database, key), so that a key of A and
//     the same key of B land in files of the same number.
//  3. Partition by partition, the records of A go into a map and those of
//     B are looked up in it: keys only in B were added, keys only in A
//     removed, keys in both with a different type, digest or expiry
//     (beyond the tolerance) changed.
//
// Memory is that of one partition's map of A: about (keys/diffParts) x
// (key length + 60 bytes), 1.2 MiB for a million keys of 20 bytes, plus
// the buffers of the 2 x diffParts files (16 KiB each).
const (
	diffParts   = 128
	diffPartBuf = 16 << 10
)

// DiffOptions tune a comparison.
type DiffOptions struct {
	ReadOptions
	// Selection compares only the keys it picks (on both sides).
	Selection Selection
	// TTLTolerance: expiry times that differ by no more are the same
	// (default 2s; seed archives know TTLs to the second only).
	TTLTolerance time.Duration
	// TempDir holds the spill files (default os.TempDir()); they are
	// removed before Diff returns.
	TempDir string
	// Limit stops handing out differences after that many (0: none);
	// the counts cover them all.
	Limit int
}

// DiffLive names the live server as the second side of a Diff.
const DiffLive = "live"

// Difference is one key that differs.
type Difference struct {
	DB      int    `json:"db"`
	Key     Bytes  `json:"key"`
	Escaped string `json:"escaped"`
	// Change is "added" (only in B), "removed" (only in A) or "changed";
	// What says what changed: "type", "value", "ttl".
	Change string   `json:"change"`
	What   []string `json:"what,omitempty"`
	A      *KeySide `json:"a,omitempty"`
	B      *KeySide `json:"b,omitempty"`

	// soonest is side A's earliest expiry (of the key or of a hash field,
	// Unix ms; 0: none), for a drill to tell a key that expired while it
	// ran from one that did not restore.
	soonest int64
}

// KeySide is a key as one side of a Diff holds it.
type KeySide struct {
	Type string `json:"type"`
	// ExpireAt is the absolute expiry (Unix ms), 0 when none.
	ExpireAt int64 `json:"expire_at,omitempty"`
}

// DiffResult answers GET /api/backup/diff and `redback diff --json`.
type DiffResult struct {
	Differences []Difference `json:"differences"`
	A           string       `json:"a"`
	B           string       `json:"b"`
	Added       int64        `json:"added"`
	Removed     int64        `json:"removed"`
	Changed     int64        `json:"changed"`
	Same        int64        `json:"same"`
	// Equal: no difference at all.
	Equal bool `json:"equal"`
	// Truncated: Differences holds the first DiffOptions.Limit only.
	Truncated bool   `json:"truncated,omitempty"`
	Success   bool   `json:"success"`
	Error     string `json:"error,omitempty"`
}

// Diff compares archive a with archive b, or with the live server when b
// is DiffLive, and calls fn for every difference (not in key order: by
// partition). The result counts them all. Both archives are read to their
// ends (their checksums checked).
func (s *Service) Diff(ctx context.Context, a, b string, o DiffOptions, fn func(Difference) error) (res DiffResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	sel, err := o.Selection.compile()
	if err != nil {
		return res, err
	}
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = 2 * time.Second
	}
	aa, releaseA, err := s.resolve(ctx, a, o.Local)
	defer releaseA()
	if err != nil {
		return res, err
	}
	res.A, res.B = aa.Name, DiffLive
	var bb archive
	if b != DiffLive {
		var releaseB func()
		bb, releaseB, err = s.resolve(ctx, b, o.Local)
		defer releaseB()
		if err != nil {
			return res, err
		}
		res.B = bb.Name
	}
	sa, sb, cleanup, err := newSpills(o.TempDir, "diff")
	if err != nil {
		return res, err
	}
	defer cleanup()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(guardPanic(func() error { return s.digestArchive(gctx, aa, o.Identities, sel, sa) }))
	g.Go(guardPanic(func() error {
		if b == DiffLive {
			return s.digestLive(gctx, sel, sb)
		}
		return s.digestArchive(gctx, bb, o.Identities, sel, sb)
	}))
	if err := g.Wait(); err != nil {
		return res, err
	}
	emit := func(d Difference) error {
		switch d.Change {
		case "added":
			res.Added++
		case "removed":
			res.Removed++
		default:
			res.Changed++
		}
		if o.Limit > 0 && res.Added+res.Removed+res.Changed > int64(o.Limit) {
			res.Truncated = true
			return nil
		}
		return fn(d)
	}
	if res.Same, err = compareSpills(ctx, sa, sb, o.TTLTolerance.Milliseconds(), emit); err != nil {
		return res, err
	}
	res.Equal = res.Added+res.Removed+res.Changed == 0
	return res, nil
}

// compareSpills finishes both sides' spills and compares them partition
// by partition (see Diff), calling emit for every difference; it returns
// how many keys were the same. Expiry times within tol ms are the same.
func compareSpills(ctx context.Context, sa, sb *spill, tol int64, emit func(Difference) error) (same int64, err error) {
	if err := sa.finish(); err != nil {
		return 0, err
	}
	if err := sb.finish(); err != nil {
		return 0, err
	}
	for p := 0; p < diffParts; p++ {
		if err := ctx.Err(); err != nil {
			return same, err
		}
		n, err := comparePart(sa, sb, p, tol, emit)
		if err != nil {
			return same, err
		}
		same += n
	}
	return same, nil
}

// guardPanic turns a panic of fn into an error (a panic in an errgroup
// goroutine would end the process).
func guardPanic(fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("internal error: %v", r)
			}
		}()
		return fn()
	}
}

// keyRecord is what a Diff keeps of one key.
type keyRecord struct {
	db       int
	key      []byte
	typ      codec.Type
	expireAt int64 // absolute, Unix ms; 0: none
	digest   [16]byte
	// soonest is the earliest expiry of the key or of one of its hash
	// fields (absolute, Unix ms; 0: none); only a drill sets it.
	soonest int64
}

// digestArchive reads archive a and spills a record of each key sel picks.
func (s *Service) digestArchive(ctx context.Context, a archive, ids []age.Identity, sel *keySelection, sp *spill) error {
	var created int64
	var d digester
	return s.walk(ctx, a, ids, func(h codec.Header) { created = h.CreatedAt.UnixMilli() }, func(k *walkedKey) (bool, error) {
		if !sel.picks(k.db, k.key, k.typ, k.raw) {
			return true, nil
		}
		c := k.last
		d.meta(c.Stream)
		r := keyRecord{db: k.db, key: k.key, typ: k.typ, digest: d.end()}
		if c.HasTTL && c.PTTL > 0 {
			r.expireAt = c.ExpireAt
			if r.expireAt == 0 {
				r.expireAt = created + c.PTTL
			}
		}
		return true, sp.add(&r)
	}, func(c *codec.Chunk) error {
		if c.First {
			d.begin(c.Type, c.Raw)
		}
		d.chunk(c)
		return nil
	})
}

// digestLive dumps the live server through the engine into a KeyWriter
// that spills a record of each key.
func (s *Service) digestLive(ctx context.Context, sel *keySelection, sp *spill) error {
	facts, err := engine.Inspect(ctx, s.redis)
	if err != nil {
		return err
	}
	if facts.Mode == engine.ModeCluster {
		return engine.ErrCluster
	}
	dbs := s.cfg.Redis.Databases
	if sel != nil && len(sel.dbs) > 0 {
		dbs = sel.dbs
	}
	var pick func([]byte) bool
	if sel != nil && !sel.set.Empty() {
		pick = sel.set.Selects
	}
	dumper := engine.NewDumper(s.redis, engine.DumpOptions{
		Databases: dbs, ScanCount: s.cfg.Backup.ScanCount, Workers: s.cfg.Backup.Workers,
		KeysPerSecond: s.cfg.Backup.KeysPerSecond, BytesPerSecond: s.cfg.Backup.BytesPerSecond,
		SkipKeys: s.skipKeys(), Select: pick,
	})
	w := &liveDigest{sel: sel, sp: sp}
	if _, err := dumper.Dump(ctx, facts, w); err != nil {
		return fmt.Errorf("read the live server: %w", err)
	}
	return nil
}

// liveDigest is the KeyWriter of digestLive (and of a drill's reading
// back of its scratch server).
type liveDigest struct {
	sel  *keySelection
	sp   *spill
	d    digester
	h    codec.KeyHeader
	skip bool
	// perDB and perType, when not nil, count the keys digested.
	perDB   map[int]int64
	perType map[codec.Type]int64
}

func (l *liveDigest) BeginKey(h codec.KeyHeader) error {
	l.h = h
	l.skip = !l.sel.picks(h.DB, h.Key, h.Type, h.Raw)
	l.d.begin(h.Type, h.Raw)
	if !l.skip && l.perDB != nil {
		l.perDB[h.DB]++
		l.perType[h.Type]++
	}
	return nil
}

func (l *liveDigest) WriteString(v []byte) error     { l.d.str(v); return nil }
func (l *liveDigest) WriteStringPart(p []byte) error { l.d.str(p); return nil }
func (l *liveDigest) WriteField(f, v []byte) error   { l.d.pair(f, v, 0); return nil }
func (l *liveDigest) WriteFieldExpire(f, v []byte, at int64) error {
	l.d.pair(f, v, at)
	return nil
}
func (l *liveDigest) WriteItem(v []byte) error                   { l.d.item(v); return nil }
func (l *liveDigest) WriteMember(m, score []byte) error          { l.d.member(m, score); return nil }
func (l *liveDigest) WriteStreamEntry(e codec.StreamEntry) error { l.d.entry(e); return nil }

func (l *liveDigest) EndKey() error {
	l.d.meta(l.h.Stream)
	dg := l.d.end()
	if l.skip {
		return nil
	}
	r := keyRecord{db: l.h.DB, key: l.h.Key, typ: l.h.Type, digest: dg}
	if l.h.PTTL > 0 {
		r.expireAt = l.h.ExpireAt
	}
	return l.sp.add(&r)
}

// digester digests one value: ordered elements into a running SHA-256,
// unordered ones as the sum of their own digests (in four 64-bit lanes).
type digester struct {
	typ     codec.Type
	ordered hash.Hash
	sum     [4]uint64
	buf     []byte

	// restorable leaves out what no restore can reproduce byte for byte:
	// the seen and active times of stream consumers (a restore's XGROUP
	// CREATECONSUMER sets them to its own time), and the payloads of raw
	// values (a module rebuilds its value on RESTORE: a vector set's DUMP
	// differs after; RESTORE checks the payload's own checksum). A drill
	// digests both sides so.
	restorable bool
	// fieldShift moves the hash field expiries of archive chunks (a
	// relative restore's shift); fields whose moved expiry is not after
	// fieldsAlive are left out (the restore drops them). Zero for Diff.
	fieldShift, fieldsAlive int64
	// soonest is the earliest hash field expiry digested since begin (0:
	// none), after fieldShift.
	soonest int64
}

func (d *digester) begin(t codec.Type, raw *codec.RawInfo) {
	if d.ordered == nil {
		d.ordered = sha256.New()
	}
	d.typ = t
	d.ordered.Reset()
	d.sum = [4]uint64{}
	d.soonest = 0
	d.ordered.Write([]byte{byte(t)})
	if raw != nil {
		d.field([]byte(raw.RedisType))
	}
}

// field writes a length-prefixed byte string to the ordered digest.
func (d *digester) field(b []byte) {
	d.buf = binary.AppendUvarint(d.buf[:0], uint64(len(b)))
	d.ordered.Write(d.buf)
	d.ordered.Write(b)
}

func (d *digester) str(p []byte) {
	if d.restorable && d.typ == codec.TypeRaw {
		return // see restorable
	}
	d.ordered.Write(p)
}
func (d *digester) item(b []byte) {
	if d.typ == codec.TypeSet {
		d.add(b)
		return
	}
	d.field(b)
}

func (d *digester) pair(f, v []byte, at int64) {
	if at > 0 && (d.soonest == 0 || at < d.soonest) {
		d.soonest = at
	}
	d.buf = binary.AppendUvarint(d.buf[:0], uint64(len(f)))
	d.buf = append(d.buf, f...)
	d.buf = binary.AppendUvarint(d.buf, uint64(len(v)))
	d.buf = append(d.buf, v...)
	d.buf = binary.AppendVarint(d.buf, at)
	d.addBuf()
}

func (d *digester) member(m, score []byte) {
	d.buf = binary.AppendUvarint(d.buf[:0], uint64(len(m)))
	d.buf = append(d.buf, m...)
	d.buf = append(d.buf, canonicalScore(score)...)
	d.addBuf()
}

func (d *digester) entry(e codec.StreamEntry) {
	d.field(e.ID)
	d.buf = binary.AppendUvarint(d.buf[:0], uint64(len(e.Fields)))
	d.ordered.Write(d.buf)
	for _, f := range e.Fields {
		d.field(f)
	}
}

// add adds the digest of b to the unordered sum.
func (d *digester) add(b []byte) {
	h := sha256.Sum256(b)
	for i := range d.sum {
		d.sum[i] += binary.LittleEndian.Uint64(h[8*i:])
	}
}

func (d *digester) addBuf() { d.add(d.buf) }

// chunk digests the elements of an archive's chunk.
func (d *digester) chunk(c *codec.Chunk) {
	switch c.Type {
	case codec.TypeString, codec.TypeRaw:
		for _, p := range c.Items {
			d.str(p)
		}
	case codec.TypeHash:
		for i := 0; i+1 < len(c.Items); i += 2 {
			var at int64
			if c.FieldExpire != nil {
				at = c.FieldExpire[i/2]
			}
			if at > 0 && d.fieldShift != 0 {
				at += d.fieldShift
			}
			if at > 0 && at <= d.fieldsAlive {
				continue
			}
			d.pair(c.Items[i], c.Items[i+1], at)
		}
	case codec.TypeZSet:
		for i := 0; i+1 < len(c.Items); i += 2 {
			d.member(c.Items[i], c.Items[i+1])
		}
	case codec.TypeStream:
		for _, e := range c.Entries {
			d.entry(e)
		}
	default:
		for _, it := range c.Items {
			d.item(it)
		}
	}
}

// meta digests a stream's metadata (groups by name, their consumers by
// name, pending entries in ID order).
func (d *digester) meta(m *codec.StreamMeta) {
	if m == nil {
		return
	}
	d.field(m.LastID)
	d.field([]byte(strconv.FormatInt(m.EntriesAdded, 10)))
	d.field(m.MaxDeletedID)
	groups := slices.Clone(m.Groups)
	slices.SortFunc(groups, func(a, b codec.StreamGroup) int { return compareBytes(a.Name, b.Name) })
	for _, g := range groups {
		d.field(g.Name)
		d.field(g.LastDeliveredID)
		d.field([]byte(strconv.FormatInt(g.EntriesRead, 10)))
		cs := slices.Clone(g.Consumers)
		slices.SortFunc(cs, func(a, b codec.StreamConsumer) int { return compareBytes(a.Name, b.Name) })
		for _, c := range cs {
			d.field(c.Name)
			if !d.restorable {
				d.field([]byte(strconv.FormatInt(c.SeenTime, 10) + "/" + strconv.FormatInt(c.ActiveTime, 10)))
			}
		}
		for _, p := range g.Pending {
			d.field(p.ID)
			d.field(p.Consumer)
			d.field([]byte(strconv.FormatInt(p.DeliveryTime, 10) + "/" + strconv.FormatInt(p.DeliveryCount, 10)))
		}
	}
}

func compareBytes(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// canonicalScore is a score's text as one form for one number: "%.17g"
// and the shortest form read alike, -0 is 0 (Redis 7.0 stores it so), and
// "inf", "+inf" are one.
func canonicalScore(s []byte) []byte {
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return s
	}
	if f == 0 {
		f = 0
	}
	if math.IsInf(f, 0) {
		if f > 0 {
			return []byte("inf")
		}
		return []byte("-inf")
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}

func (d *digester) end() [16]byte {
	for _, v := range d.sum {
		d.buf = binary.LittleEndian.AppendUint64(d.buf[:0], v)
		d.ordered.Write(d.buf)
	}
	var out [16]byte
	copy(out[:], d.ordered.Sum(nil))
	return out
}

// newSpills makes the spills of both sides of a comparison in a new
// temporary folder under dir (os.TempDir() when ""); cleanup closes and
// removes them. what names the comparison in errors ("diff", "drill").
func newSpills(dir, what string) (a, b *spill, cleanup func(), err error) {
	tmp, err := os.MkdirTemp(dir, "redback-"+what+"-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: temporary folder: %w", what, err)
	}
	seed := maphash.MakeSeed()
	if a, err = newSpill(tmp, "a", seed); err == nil {
		if b, err = newSpill(tmp, "b", seed); err != nil {
			a.close()
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, nil, err
	}
	return a, b, func() { a.close(); b.close(); os.RemoveAll(tmp) }, nil
}

// spill is one side's partition files.
type spill struct {
	seed  maphash.Seed
	files []*os.File
	ws    []*bufio.Writer
	buf   []byte
}

func newSpill(dir, side string, seed maphash.Seed) (*spill, error) {
	sp := &spill{seed: seed}
	for i := 0; i < diffParts; i++ {
		f, err := os.Create(fmt.Sprintf("%s/%s%03d", dir, side, i))
		if err != nil {
			sp.close()
			return nil, fmt.Errorf("diff: spill file: %w", err)
		}
		sp.files = append(sp.files, f)
		sp.ws = append(sp.ws, bufio.NewWriterSize(f, diffPartBuf))
	}
	return sp, nil
}

func (sp *spill) part(db int, key []byte) int {
	var h maphash.Hash
	h.SetSeed(sp.seed)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(db))
	h.Write(b[:])
	h.Write(key)
	return int(h.Sum64() % diffParts)
}

// add appends r to its partition: db, key length, key, type, expiry,
// digest, soonest expiry.
func (sp *spill) add(r *keyRecord) error {
	b := binary.AppendUvarint(sp.buf[:0], uint64(r.db))
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	b = append(b, r.key...)
	b = append(b, byte(r.typ))
	b = binary.AppendVarint(b, r.expireAt)
	b = append(b, r.digest[:]...)
	b = binary.AppendVarint(b, r.soonest)
	sp.buf = b
	if _, err := sp.ws[sp.part(r.db, r.key)].Write(b); err != nil {
		return fmt.Errorf("diff: spill: %w", err)
	}
	return nil
}

// finish flushes the writers and rewinds the files for reading.
func (sp *spill) finish() error {
	for i, w := range sp.ws {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("diff: spill: %w", err)
		}
		if _, err := sp.files[i].Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("diff: spill: %w", err)
		}
	}
	return nil
}

func (sp *spill) close() {
	for _, f := range sp.files {
		f.Close()
	}
}

// readRecords calls fn for every record of partition p (r is reused).
func (sp *spill) readRecords(p int, fn func(r *keyRecord) error) error {
	br := bufio.NewReaderSize(sp.files[p], diffPartBuf)
	var r keyRecord
	for {
		db, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return nil
		}
		n, err2 := binary.ReadUvarint(br)
		if err != nil || err2 != nil || n > 1<<30 {
			return errors.New("diff: a damaged spill file")
		}
		r.db = int(db)
		r.key = slices.Grow(r.key[:0], int(n))[:n]
		if _, err := io.ReadFull(br, r.key); err != nil {
			return errors.New("diff: a damaged spill file")
		}
		t, err := br.ReadByte()
		if err != nil {
			return errors.New("diff: a damaged spill file")
		}
		r.typ = codec.Type(t)
		if r.expireAt, err = binary.ReadVarint(br); err != nil {
			return errors.New("diff: a damaged spill file")
		}
		if _, err := io.ReadFull(br, r.digest[:]); err != nil {
			return errors.New("diff: a damaged spill file")
		}
		if r.soonest, err = binary.ReadVarint(br); err != nil {
			return errors.New("diff: a damaged spill file")
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// comparePart compares partition p of both sides.
func comparePart(a, b *spill, p int, tol int64, emit func(Difference) error) (same int64, err error) {
	type entry struct {
		typ      codec.Type
		expireAt int64
		digest   [16]byte
		seen     bool
		key      []byte
		db       int
		soonest  int64
	}
	idx := map[string]int{}
	var recs []entry
	err = a.readRecords(p, func(r *keyRecord) error {
		k := string(binary.AppendUvarint(nil, uint64(r.db))) + string(r.key)
		idx[k] = len(recs)
		recs = append(recs, entry{typ: r.typ, expireAt: r.expireAt, digest: r.digest, key: slices.Clone(r.key), db: r.db, soonest: r.soonest})
		return nil
	})
	if err != nil {
		return 0, err
	}
	err = b.readRecords(p, func(r *keyRecord) error {
		k := string(binary.AppendUvarint(nil, uint64(r.db))) + string(r.key)
		bs := &KeySide{Type: typeName(r.typ), ExpireAt: r.expireAt}
		i, ok := idx[k]
		if !ok {
			return emit(Difference{DB: r.db, Key: Bytes(slices.Clone(r.key)), Escaped: glob.Quote(r.key), Change: "added", B: bs})
		}
		e := &recs[i]
		e.seen = true
		var what []string
		switch {
		case e.typ != r.typ:
			what = append(what, "type")
		case e.digest != r.digest:
			what = append(what, "value")
		}
		if (e.expireAt == 0) != (r.expireAt == 0) || abs64(e.expireAt-r.expireAt) > tol {
			what = append(what, "ttl")
		}
		if len(what) == 0 {
			same++
			return nil
		}
		return emit(Difference{DB: r.db, Key: Bytes(slices.Clone(r.key)), Escaped: glob.Quote(r.key), Change: "changed", What: what,
			A: &KeySide{Type: typeName(e.typ), ExpireAt: e.expireAt}, B: bs, soonest: e.soonest})
	})
	if err != nil {
		return same, err
	}
	for _, e := range recs {
		if !e.seen {
			if err := emit(Difference{DB: e.db, Key: Bytes(e.key), Escaped: glob.Quote(e.key), Change: "removed",
				A: &KeySide{Type: typeName(e.typ), ExpireAt: e.expireAt}, soonest: e.soonest}); err != nil {
				return same, err
			}
		}
	}
	return same, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
