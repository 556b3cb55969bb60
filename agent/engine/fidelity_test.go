package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/fidelity"
	"github.com/redback-dev/redback/internal/redistest"
)

// The two ways a round trip runs: DUMP payloads read and RESTORE payloads
// written with absolute TTLs (field TTLs then come back exactly), the
// archive read in the reader's default chunks (as the agent reads it); and
// commands read and scripts written with relative TTLs, the archive read
// in small chunks (every big key through the chunked path).
var fidelityModes = []struct {
	name   string
	read   ReadMode
	write  WriteMode
	ttl    TTLMode
	reader codec.ReaderOptions
}{
	{"dump-restore-absolute", ReadAuto, WriteAuto, TTLAbsolute, codec.ReaderOptions{}},
	{"commands-script-relative", ReadCommands, WriteScript, TTLRelative, codec.ReaderOptions{MaxChunkItems: 50, MaxChunkBytes: 32 << 10}},
}

// diffOptions are the tolerances of a restore with TTL mode ttl whose
// source was read at since. With relative TTLs, key TTLs and field expiry
// times move by at most the time elapsed since (the restore shifts field
// expiry times by the time since the dump started); with absolute TTLs,
// expiry times come back as recorded (keys' within the few milliseconds a
// dump takes to date a batch, fields' exactly).
func diffOptions(ttl TTLMode, since time.Time) fidelity.DiffOptions {
	if ttl == TTLAbsolute {
		return fidelity.DiffOptions{AbsoluteTTL: true, TTLSlack: 5 * time.Second}
	}
	elapsed := time.Since(since) + 5*time.Second
	return fidelity.DiffOptions{TTLSlack: elapsed, FieldTTLSlack: elapsed}
}

// source is a filled server.
type source struct {
	srv  *redistest.Server
	caps fidelity.Caps
	m    *fidelity.Manifest
	want fidelity.State
}

// wantCaps fails t when the server lacks what its name promises: a test
// that runs on a server without field TTLs or vector sets would pass
// without covering them.
func wantCaps(t *testing.T, name string, caps fidelity.Caps) {
	t.Helper()
	kind, _, _ := strings.Cut(name, "-")
	ttls := name == "redis-8.0" || name == "redis-8" || name == "valkey-9"
	vectors := name == "redis-8.0" || name == "redis-8"
	if caps.Kind != kind || caps.FieldTTLs != ttls || caps.VectorSets != vectors {
		t.Fatalf("%s is %s: want kind %s, field TTLs %v, vector sets %v", name, caps, kind, ttls, vectors)
	}
}

// fillSource starts the server name, fills it with every shape and reads
// its state.
func fillSource(t *testing.T, ctx context.Context, name string) source {
	t.Helper()
	s := redistest.StartServer(t, name)
	c := s.Client(t, 0)
	caps, err := fidelity.Probe(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	wantCaps(t, name, caps)
	m, err := fidelity.Fill(ctx, c, caps, rand.New(rand.NewPCG(20260101, 1)), fidelity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := fidelity.Snapshot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if want.Keys() != m.Len() {
		t.Fatalf("the source holds %d keys, the fill wrote %d", want.Keys(), m.Len())
	}
	return source{srv: s, caps: caps, m: m, want: want}
}

// checkDumpStats compares what the dump says it did with what the fill
// wrote.
func checkDumpStats(t *testing.T, src source, st DumpStats) {
	t.Helper()
	if st.Keys != int64(src.m.Len()) || st.Vanished != 0 || st.Duplicates != 0 {
		t.Errorf("dump stats: %d keys (%d vanished, %d duplicates), the fill wrote %d", st.Keys, st.Vanished, st.Duplicates, src.m.Len())
	}
	for db, n := range src.m.KeysPerDB() {
		if st.KeysPerDB[db] != n {
			t.Errorf("dump stats: %d keys in database %d, the fill wrote %d", st.KeysPerDB[db], db, n)
		}
	}
	raw := src.m.RawKeys()
	if len(raw) != len(st.RawKeys) {
		t.Errorf("dump stats: raw keys %v, the fill wrote %v", st.RawKeys, raw)
	}
	for typ, n := range raw {
		if st.RawKeys[typ] != n {
			t.Errorf("dump stats: raw keys %v, the fill wrote %v", st.RawKeys, raw)
		}
	}
	if want := int64(len(src.m.FieldTTLKeys())); st.FieldTTLKeys != want {
		t.Errorf("dump stats: FieldTTLKeys %d, the fill wrote %d hashes with field TTLs (%v)", st.FieldTTLKeys, want, src.m.FieldTTLKeys())
	}
	if st.BigKeys < 10 {
		t.Errorf("dump stats: only %d keys read in windows", st.BigKeys)
	}
}

// checkArchive reads the archive back and checks what the format promises
// beyond the values: module types as raw payloads described by type, module
// and RDB version, field TTLs on exactly the hashes that have them, sorted
// sets and streams in order (orderErrors).
func checkArchive(t *testing.T, ctx context.Context, src source, archive []byte) {
	t.Helper()
	rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 37, MaxChunkBytes: 4 << 10})
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	fieldTTLs := map[fidelity.KeyRef]bool{}
	for _, k := range src.m.FieldTTLKeys() {
		fieldTTLs[k] = true
	}
	raw := map[fidelity.KeyRef]string{}
	for _, s := range src.m.Shapes {
		if s.Raw {
			raw[s.KeyRef] = s.Type
		}
	}
	var (
		keys          int
		hasFieldTTL   bool
		rawSeen       int
		rdbVersionRaw int
	)
	for k := range raw {
		v, err := redistest.DumpRDBVersion(ctx, src.srv.Client(t, k.DB), k.Key)
		if err != nil {
			t.Fatal(err)
		}
		rdbVersionRaw = v
		break
	}
	for {
		c, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read the archive: %v", err)
		}
		ref := fidelity.KeyRef{DB: c.DB, Key: string(c.Key)}
		if c.First {
			hasFieldTTL = false
		}
		switch c.Type {
		case codec.TypeHash:
			hasFieldTTL = hasFieldTTL || slices.ContainsFunc(c.FieldExpire, func(e int64) bool { return e > 0 })
		case codec.TypeRaw:
			want, ok := raw[ref]
			switch {
			case !ok:
				t.Errorf("%s: kept raw (%+v), but it is a type the engine models", ref, c.Raw)
			case c.Raw == nil || c.Raw.RedisType != want || c.Raw.RDBVersion != rdbVersionRaw:
				t.Errorf("%s: raw info %+v, want type %s, RDB version %d", ref, c.Raw, want, rdbVersionRaw)
			case want == "vectorset" && c.Raw.Module != "vectorset":
				t.Errorf("%s: raw info %+v, want module vectorset", ref, c.Raw)
			}
		}
		if c.Last {
			keys++
			if c.Type == codec.TypeHash && hasFieldTTL != fieldTTLs[ref] {
				t.Errorf("%s: field TTLs in the archive %v, on the source %v", ref, hasFieldTTL, fieldTTLs[ref])
			}
			if c.Type == codec.TypeRaw {
				rawSeen++
			}
		}
		rd.Release(c)
	}
	for _, e := range orderErrors(archive, codec.ReaderOptions{MaxChunkItems: 37, MaxChunkBytes: 4 << 10}) {
		t.Error(e)
	}
	if keys != src.m.Len() || rawSeen != len(raw) {
		t.Errorf("the archive holds %d keys (%d raw), the fill wrote %d (%d raw)", keys, rawSeen, src.m.Len(), len(raw))
	}
}

// orderErrors reads an archive and returns where it breaks the order the
// format promises: sorted sets in ascending order of score, then of member
// bytes; stream entries in ascending order of ID.
func orderErrors(archive []byte, ro codec.ReaderOptions) []string {
	rd := codec.NewReaderOptions(bytes.NewReader(archive), ro)
	var errs []string
	var (
		prevScore  float64
		prevMember []byte
		prevID     string
		first      bool
	)
	for len(errs) < 10 {
		c, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return append(errs, fmt.Sprintf("read the archive: %v", err))
		}
		if c.First {
			first = true
		}
		switch c.Type {
		case codec.TypeZSet:
			for i := 0; i+1 < len(c.Items); i += 2 {
				sc, err := strconv.ParseFloat(string(c.Items[i+1]), 64)
				if err != nil {
					errs = append(errs, fmt.Sprintf("db %d key %q: score %q: %v", c.DB, c.Key, c.Items[i+1], err))
					continue
				}
				if !first && (sc < prevScore || sc == prevScore && bytes.Compare(c.Items[i], prevMember) <= 0) {
					errs = append(errs, fmt.Sprintf("db %d key %q: member %q (score %v) after %q (score %v): not in ascending order", c.DB, c.Key, c.Items[i], sc, prevMember, prevScore))
				}
				prevScore, prevMember, first = sc, append(prevMember[:0], c.Items[i]...), false
			}
		case codec.TypeStream:
			for _, e := range c.Entries {
				if !first && compareStreamIDs(string(e.ID), prevID) <= 0 {
					errs = append(errs, fmt.Sprintf("db %d key %q: entry %s after %s", c.DB, c.Key, e.ID, prevID))
				}
				prevID, first = string(e.ID), false
			}
		}
		rd.Release(c)
	}
	return errs
}

// compareStreamIDs orders stream IDs ("ms-seq") numerically.
func compareStreamIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	pa, _ := strconv.ParseUint(am, 10, 64)
	pb, _ := strconv.ParseUint(bm, 10, 64)
	if pa == pb {
		pa, _ = strconv.ParseUint(as, 10, 64)
		pb, _ = strconv.ParseUint(bs, 10, 64)
	}
	switch {
	case pa < pb:
		return -1
	case pa > pb:
		return 1
	}
	return 0
}

// TestFidelityMatrix: on every server of the matrix, every type in every
// encoding (internal/fidelity's Fill) goes through a dump and a restore into
// a fresh server of the same version, both ways (DUMP/RESTORE with absolute
// TTLs, commands/scripts with relative TTLs), with thresholds that send
// keys down both the whole and the windowed paths; the restored state must
// equal the source's, value by value (Diff, field TTLs exactly with
// absolute TTLs), and digest by digest (DEBUG DIGEST-VALUE).
func TestFidelityMatrix(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := fillSource(t, ctx, name)
			t.Logf("%s: %d keys; encodings %v; field-TTL hashes %d; raw %v", src.caps, src.m.Len(), src.m.Encodings(), len(src.m.FieldTTLKeys()), src.m.RawKeys())
			for _, mode := range fidelityModes {
				t.Run(mode.name, func(t *testing.T) {
					o := smallDump
					o.ReadMode = mode.read
					started := time.Now()
					archive, st := dumpAll(t, ctx, src.srv, o)
					checkDumpStats(t, src, st)
					checkArchive(t, ctx, src, archive)

					dst := redistest.StartServer(t, name)
					rd := codec.NewReaderOptions(bytes.NewReader(archive), mode.reader)
					rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{BatchKeys: 64, WriteMode: mode.write, TTL: mode.ttl, ArchiveTime: started}).Restore(ctx, rd)
					if err != nil {
						t.Fatalf("restore: %v (stats %+v)", err, rs)
					}
					if rs.Restored != int64(src.m.Len()) || rs.Total != rs.Restored || rs.Errors != 0 || rs.Skipped != 0 ||
						rs.PendingLost != 0 || rs.FieldsExpired != 0 || len(rs.Warnings) != 0 {
						t.Errorf("restore stats %+v, want %d keys restored and nothing else", rs, src.m.Len())
					}
					got, err := fidelity.Snapshot(ctx, dst.Client(t, 0))
					if err != nil {
						t.Fatal(err)
					}
					if d := fidelity.Diff(src.want, got, diffOptions(mode.ttl, src.want.TakenAt)); len(d) > 0 {
						t.Errorf("%s, %s: the restored state differs (%d differences):\n%s", name, mode.name, len(d), strings.Join(d, "\n"))
					}
					for _, db := range src.m.DBs() {
						diffs, err := redistest.Compare(ctx, src.srv.Client(t, db), dst.Client(t, db), time.Since(src.want.TakenAt)+5*time.Second)
						if err != nil {
							t.Fatal(err)
						}
						if len(diffs) > 0 {
							t.Errorf("%s, %s, database %d: digests differ:\n%s", name, mode.name, db, strings.Join(diffs, "\n"))
						}
					}
				})
			}
		})
	}
}

// crossVersion is the grid of TestFidelityCrossVersion: newest Valkey to
// oldest Redis and back, Redis 8 to Valkey 8.1 and back.
var crossVersion = []struct{ from, to string }{
	{"valkey-9", "redis-7.0"},
	{"redis-7.0", "valkey-9"},
	{"redis-8", "valkey-8.1"},
	{"valkey-8.1", "redis-8"},
}

// TestFidelityCrossVersion restores the fill of one server into another
// kind or version: everything the target can hold must come back equal
// (Diff), and exactly the keys it cannot hold (hashes with field TTLs on a
// server without them, vector sets in a payload of an RDB version the
// target does not load) must be missing, each counted as an error whose
// message names the reason.
func TestFidelityCrossVersion(t *testing.T) {
	for _, pair := range crossVersion {
		t.Run(pair.from+"-to-"+pair.to, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := fillSource(t, ctx, pair.from)
			dst := redistest.StartServer(t, pair.to)
			dcaps, err := fidelity.Probe(ctx, dst.Client(t, 0))
			if err != nil {
				t.Fatal(err)
			}
			wantCaps(t, pair.to, dcaps)

			// What the target cannot hold, and why.
			missing := map[fidelity.KeyRef]string{}
			if !dcaps.FieldTTLs {
				for _, k := range src.m.FieldTTLKeys() {
					missing[k] = "hash field expiry"
				}
			}
			for _, s := range src.m.Shapes {
				if !s.Raw {
					continue
				}
				v, err := redistest.DumpRDBVersion(ctx, src.srv.Client(t, s.DB), s.Key)
				if err != nil {
					t.Fatal(err)
				}
				// Redis loads its own RDB version and older; Valkey up to 11
				// and its own from 80 on. The pairs of the grid: Redis 8's
				// 12 into Valkey 8.1 (11).
				if dcaps.Kind == "valkey" && v > 11 && v < 80 || dcaps.Kind == "redis" && v >= 80 {
					missing[s.KeyRef] = fmt.Sprintf("RDB version %d", v)
				}
			}
			t.Logf("%s to %s: %d keys, %d the target cannot hold", src.caps, dcaps, src.m.Len(), len(missing))
			if pair.from == "valkey-9" || pair.from == "redis-8" {
				if len(missing) == 0 {
					t.Fatalf("no key the target cannot hold: the grid tests nothing")
				}
			}

			started := time.Now()
			archive, st := dumpAll(t, ctx, src.srv, smallDump)
			checkDumpStats(t, src, st)
			rd := codec.NewReaderOptions(bytes.NewReader(archive), codec.ReaderOptions{MaxChunkItems: 50, MaxChunkBytes: 32 << 10})
			rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{BatchKeys: 64, MaxErrors: -1, ArchiveTime: started}).Restore(ctx, rd)
			if err != nil {
				t.Fatalf("restore: %v (stats %+v)", err, rs)
			}
			if rs.Errors != int64(len(missing)) || rs.Restored != int64(src.m.Len()-len(missing)) || rs.Skipped != 0 || rs.PendingLost != 0 {
				t.Errorf("restore stats %+v: want %d restored and %d errors", rs, src.m.Len()-len(missing), len(missing))
			}
			// Every key that failed has its message, naming the reason (the
			// first maxMessages of them are kept).
			if len(rs.Messages) != min(len(missing), maxMessages) {
				t.Errorf("%d messages for %d keys not restored: %q", len(rs.Messages), len(missing), rs.Messages)
			}
			for _, msg := range rs.Messages {
				found := false
				for k, why := range missing {
					if strings.HasPrefix(msg, "key "+quoteKey([]byte(k.Key))+": ") {
						found = true
						if !strings.Contains(msg, why) {
							t.Errorf("the message for %s does not say %q: %s", k, why, msg)
						}
					}
				}
				if !found {
					t.Errorf("a message for a key that should have been restored: %s", msg)
				}
			}
			if len(missing) <= maxMessages {
				for k := range missing {
					if !slices.ContainsFunc(rs.Messages, func(m string) bool { return strings.HasPrefix(m, "key "+quoteKey([]byte(k.Key))+": ") }) {
						t.Errorf("no message for %s, which was not restored", k)
					}
				}
			}
			got, err := fidelity.Snapshot(ctx, dst.Client(t, 0))
			if err != nil {
				t.Fatal(err)
			}
			dopt := diffOptions(TTLRelative, src.want.TakenAt)
			dopt.Missing = missing
			if d := fidelity.Diff(src.want, got, dopt); len(d) > 0 {
				t.Errorf("%s to %s: the restored state differs (%d differences):\n%s", pair.from, pair.to, len(d), strings.Join(d, "\n"))
			}
		})
	}
}

// A hash with field TTLs of more than 999 fields in one archive chunk (the
// reader's default chunk holds up to 1024): every field must come back,
// with its expiry.
func TestFieldTTLHashOfManyFields(t *testing.T) {
	for _, name := range []string{"redis-8", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := redistest.StartServer(t, name)
			c := src.Client(t, 0)
			pipe := c.Pipeline()
			for i := range 1500 {
				pipe.HSet(ctx, "h", fmt.Sprint("f", i), fmt.Sprint("v", i))
				if i%2 == 0 {
					pipe.Do(ctx, "HPEXPIRE", "h", 3600000+i, "FIELDS", 1, fmt.Sprint("f", i))
				}
			}
			_, err := pipe.Exec(ctx)
			must(t, err)
			want, err := fidelity.Snapshot(ctx, c)
			must(t, err)
			archive, _ := dumpAll(t, ctx, src, DumpOptions{})
			dst := redistest.StartServer(t, name)
			rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{TTL: TTLAbsolute}).Restore(ctx, codec.NewReader(bytes.NewReader(archive)))
			must(t, err)
			got, err := fidelity.Snapshot(ctx, dst.Client(t, 0))
			must(t, err)
			if d := fidelity.Diff(want, got, diffOptions(TTLAbsolute, want.TakenAt)); len(d) > 0 || rs.Restored != 1 {
				t.Fatalf("restore stats %+v; the restored hash differs:\n%s", rs, strings.Join(d, "\n"))
			}
		})
	}
}

// DumpStats.FieldTTLKeys counts every hash with field TTLs, the big ones
// (read with HSCAN) too.
func TestFieldTTLKeysCountsBigHashes(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartServer(t, "redis-8")
	c := src.Client(t, 0)
	pipe := c.Pipeline()
	for _, n := range []int{10, 3000} { // under and over BigElements (2048)
		key := fmt.Sprint("h", n)
		for i := range n {
			pipe.HSet(ctx, key, fmt.Sprint("f", i), "v")
		}
		pipe.Do(ctx, "HPEXPIRE", key, 3600000, "FIELDS", 1, "f1")
	}
	_, err := pipe.Exec(ctx)
	must(t, err)
	_, st := dumpAll(t, ctx, src, DumpOptions{})
	if st.BigKeys != 1 || st.FieldTTLKeys != 2 {
		t.Fatalf("dump stats %+v: want 1 big key and 2 hashes with field TTLs", st)
	}
}

// A sorted set held as a skiplist keeps a score of -0 (a listpack turns it
// into 0, on every server). Restored through the big-key path, its first
// chunk must not make the key a listpack on the way.
func TestBigZSetKeepsNegativeZero(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	args := []any{"ZADD", "z"}
	for i := 1; i < 300; i++ { // over zset-max-listpack-entries (128): a skiplist
		args = append(args, i, fmt.Sprint("m", i))
	}
	// Last: Redis 7.0 starts a listpack and converts it on the way.
	must(t, c.Do(ctx, append(args, "-0", "negative-zero")...).Err())
	if s := c.Do(ctx, "ZSCORE", "z", "negative-zero").Val(); s != "-0" {
		t.Fatalf("the source holds %v", s)
	}
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	dst := redistest.Start(t)
	restoreAll(t, ctx, dst, archive, RestoreOptions{}) // chunks of 50 members: the big-key path
	d := dst.Client(t, 0)
	if s, enc := d.Do(ctx, "ZSCORE", "z", "negative-zero").Val(), d.ObjectEncoding(ctx, "z").Val(); s != "-0" {
		t.Fatalf("restored as a %s, the score of -0 is %v", enc, s)
	}
}

// A dry run with Overwrite counts the keys that exist as restored (the real
// run would replace them): the big ones (several chunks, streams, raw
// payloads) as the small ones.
func TestDryRunOverwriteCountsExistingKeysAsRestored(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	c, d := src.Client(t, 0), dst.Client(t, 0)
	must(t, c.Set(ctx, "small", "v", 0).Err())
	items := make([]any, 300)
	for i := range items {
		items[i] = fmt.Sprint("item", i)
	}
	must(t, c.RPush(ctx, "big", items...).Err()) // several chunks of 50
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", ID: "1-1", Values: []any{"f", "v"}}).Err())
	archive, _ := dumpAll(t, ctx, src, DumpOptions{})
	for _, k := range []string{"small", "big", "stream"} {
		must(t, d.Set(ctx, k, "existing", 0).Err())
	}
	rs := restoreAll(t, ctx, dst, archive, RestoreOptions{DryRun: true, Overwrite: true})
	if rs.Restored != 3 || rs.Skipped != 0 {
		t.Fatalf("dry run with overwrite: stats %+v, want 3 restored (as the real run: %+v)", rs,
			restoreAll(t, ctx, dst, archive, RestoreOptions{Overwrite: true}))
	}
}

// The same for a sorted set written whole by the restore script (ZADD of
// every member): on every server a skiplist keeps its -0.
func TestScriptedZSetKeepsNegativeZero(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			src := redistest.StartServer(t, name)
			c := src.Client(t, 0)
			args := []any{"ZADD", "z"}
			for i := 1; i < 200; i++ { // over zset-max-listpack-entries (128): a skiplist
				args = append(args, i, fmt.Sprint("m", i))
			}
			must(t, c.Do(ctx, append(args, "-0", "negative-zero")...).Err())
			if s := c.Do(ctx, "ZSCORE", "z", "negative-zero").Val(); s != "-0" {
				t.Fatalf("the source holds %v", s)
			}
			archive, _ := dumpAll(t, ctx, src, DumpOptions{})
			dst := redistest.StartServer(t, name)
			rd := codec.NewReader(bytes.NewReader(archive)) // one chunk: the small-key path
			rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{WriteMode: WriteScript}).Restore(ctx, rd)
			must(t, err)
			d := dst.Client(t, 0)
			if s, enc := d.Do(ctx, "ZSCORE", "z", "negative-zero").Val(), d.ObjectEncoding(ctx, "z").Val(); s != "-0" || rs.Restored != 1 {
				t.Fatalf("restored (%+v) as a %s, the score of -0 is %v", rs, enc, s)
			}
		})
	}
}
