package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// odd keys: glob specials, binary bytes, a backslash, an empty key.
var oddKeys = []string{"odd*[key]", "odd?\\x41", "bin:\xff\x00\x80", "\x00lead", "", "user:42:\xfe"}

// fillLook puts a few keys of every type, with and without TTLs, into c.
func fillLook(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	must(t, datagen.Fill(ctx, c, datagen.Spec{Keys: 300, TTLPercent: 20, Binary: true, Streams: 1, Seed: 5}))
	p := c.Pipeline()
	for i := 0; i < 5; i++ {
		p.HSet(ctx, fmt.Sprintf("user:42:h%d", i), "name", "ann", "n", i)
		p.Set(ctx, fmt.Sprintf("user:42:s%d", i), strings.Repeat("x", i), time.Hour)
		p.RPush(ctx, fmt.Sprintf("user:43:l%d", i), "a", "b", i)
	}
	for _, k := range oddKeys {
		p.Set(ctx, k, "odd", 0)
	}
	p.ZAdd(ctx, "board", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: -2, Member: "\xffb"})
	p.SAdd(ctx, "tags", "x", "y", "z")
	p.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "1-1", Values: []string{"f", "v"}})
	p.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "2-1", Values: []string{"g", "w"}})
	p.XGroupCreate(ctx, "events", "workers", "0")
	_, err := p.Exec(ctx)
	must(t, err)
	must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "alice", Streams: []string{"events", ">"}, Count: 1}).Err())
}

// serverKeys returns the keys of c's database matching raw pattern p.
func serverKeys(t *testing.T, c *redis.Client, p string) []string {
	t.Helper()
	ks, err := c.Keys(context.Background(), p).Result()
	must(t, err)
	sort.Strings(ks)
	return ks
}

func listKeys(t *testing.T, s *Service, name string, o KeysOptions) ([]KeyInfo, KeysPage) {
	t.Helper()
	var out []KeyInfo
	page, err := s.Keys(context.Background(), name, o, func(k KeyInfo) error {
		out = append(out, k)
		return nil
	})
	must(t, err)
	return out, page
}

func names(ks []KeyInfo) []string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k.Key))
	}
	sort.Strings(out)
	return out
}

func TestKeysShowLatest(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t, 0)
	fillLook(t, c)
	must(t, srv.Client(t, 3).Set(ctx, "db3:only", "v", 0).Err())
	store := filepath.Join(t.TempDir(), "backups")
	s := newService(t, srv.URL(0), store)
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)

	all, page := listKeys(t, s, Latest, KeysOptions{})
	if page.Filename != res.Filename || int64(len(all)) != res.KeysCount || page.Cursor != "0" || page.Filter != nil {
		t.Fatalf("latest listed %d keys of %s (cursor %s), the backup %s has %d", len(all), page.Filename, page.Cursor, res.Filename, res.KeysCount)
	}
	// Each key's type, element count and TTL are the server's.
	var size int64
	for _, k := range all {
		cl := srv.Client(t, k.DB)
		typ, err := cl.Type(ctx, string(k.Key)).Result()
		must(t, err)
		var n int64
		switch typ {
		case "string":
			n, err = cl.StrLen(ctx, string(k.Key)).Result()
		case "hash":
			n, err = cl.HLen(ctx, string(k.Key)).Result()
		case "list":
			n, err = cl.LLen(ctx, string(k.Key)).Result()
		case "set":
			n, err = cl.SCard(ctx, string(k.Key)).Result()
		case "zset":
			n, err = cl.ZCard(ctx, string(k.Key)).Result()
		case "stream":
			n, err = cl.XLen(ctx, string(k.Key)).Result()
		}
		must(t, err)
		pttl, _ := cl.PTTL(ctx, string(k.Key)).Result()
		if k.Type != typ || k.Elements != n || (pttl > 0) != (k.TTL != nil) || k.Size <= 0 {
			t.Fatalf("key %q: listed %+v; the server has %s of %d elements, pttl %v", k.Key, k, typ, n, pttl)
		}
		if u, err := UnquoteKey(k.Escaped); err != nil || !bytes.Equal(u, k.Key) {
			t.Fatalf("escaped %q does not give %q back", k.Escaped, k.Key)
		}
		size += k.Size
	}
	info, err := s.Stat(ctx, res.Filename)
	must(t, err)
	if size <= 0 || size > 4*info.Size+1<<20 {
		t.Fatalf("sizes add up to %d (archive %d bytes compressed)", size, info.Size)
	}

	// Patterns select what KEYS selects on the server; binary and special
	// bytes too, written as \xHH.
	r := rand.New(rand.NewSource(42))
	alpha := []string{"u", "s", "e", "r", ":", "4", "2", "*", "?", "[", "]", "^", "-", "\\", "\xff", "\x00", "o", "d", "h"}
	for i := 0; i < 300; i++ {
		var raw strings.Builder
		for n := r.Intn(8); n >= 0; n-- {
			raw.WriteString(alpha[r.Intn(len(alpha))])
		}
		p := raw.String()
		if i == 0 {
			p = "user:42:*"
		}
		// Parse's form: every byte as \xHH, so that the raw pattern is p.
		var esc strings.Builder
		for j := 0; j < len(p); j++ {
			if p[j] == '\\' || p[j] >= 0x80 || p[j] < 0x20 {
				fmt.Fprintf(&esc, "\\x%02x", p[j])
				if p[j] == '\\' {
					// \x5c is a literal backslash; a Redis escape is the
					// backslash itself: keep it raw.
					esc.Reset()
					break
				}
				continue
			}
			esc.WriteByte(p[j])
		}
		if esc.Len() == 0 && p != "" {
			continue
		}
		got, _ := listKeys(t, s, res.Filename, KeysOptions{Selection: Selection{Match: []string{esc.String()}, DBs: []int{0}}})
		if want := serverKeys(t, c, p); !slices.Equal(names(got), want) {
			t.Fatalf("pattern %q: keys lists %q, KEYS %q", p, names(got), want)
		}
	}
	if got, _ := listKeys(t, s, res.Filename, KeysOptions{Selection: Selection{Match: []string{`bin:\xff*`}}}); len(got) != 1 || string(got[0].Key) != "bin:\xff\x00\x80" || got[0].Escaped != `bin:\xff\x00\x80` {
		t.Fatalf("binary pattern: %+v", got)
	}
	// By type and database.
	hashes, _ := listKeys(t, s, res.Filename, KeysOptions{Selection: Selection{Types: []string{"hash"}}})
	for _, k := range hashes {
		if k.Type != "hash" {
			t.Fatalf("--type hash listed %+v", k)
		}
	}
	if len(hashes) < 5 {
		t.Fatalf("%d hashes", len(hashes))
	}
	if db3, _ := listKeys(t, s, res.Filename, KeysOptions{Selection: Selection{DBs: []int{3}}}); len(db3) != 1 || string(db3[0].Key) != "db3:only" || db3[0].DB != 3 {
		t.Fatalf("--db 3: %+v", db3)
	}
	// Pages of 7 give the whole listing, in order.
	var paged []KeyInfo
	cursor := int64(0)
	for pages := 0; ; pages++ {
		got, pg := listKeys(t, s, res.Filename, KeysOptions{Cursor: cursor, Limit: 7})
		paged = append(paged, got...)
		if pg.Cursor == "0" {
			break
		}
		if len(got) != 7 || pages > 1000 {
			t.Fatalf("page %d: %d keys, cursor %s", pages, len(got), pg.Cursor)
		}
		fmt.Sscan(pg.Cursor, &cursor)
	}
	if len(paged) != len(all) {
		t.Fatalf("pages gave %d keys, the listing %d", len(paged), len(all))
	}
	for i := range all {
		if !bytes.Equal(paged[i].Key, all[i].Key) || paged[i].DB != all[i].DB {
			t.Fatalf("page order differs at %d", i)
		}
	}

	// Show: a hash, a binary string, a stream's delivery state.
	sh, err := s.Show(ctx, Latest, []byte("user:42:h3"), 0, ShowOptions{})
	must(t, err)
	if sh.Type != "hash" || sh.Elements != 2 || sh.Truncated || len(sh.Value.([]any)) != 2 || sh.TTL != nil {
		t.Fatalf("show hash: %+v", sh)
	}
	sh, err = s.Show(ctx, res.Filename, []byte("user:42:s4"), 0, ShowOptions{})
	must(t, err)
	if string(sh.Value.(Bytes)) != "xxxx" || sh.TTL == nil || *sh.TTL < 3500 || sh.ExpireAt < time.Now().UnixMilli() {
		t.Fatalf("show string: %+v", sh)
	}
	sh, err = s.Show(ctx, res.Filename, []byte("events"), 0, ShowOptions{Limit: 1})
	must(t, err)
	if sh.Stream == nil || len(sh.Stream.Groups) != 1 || sh.Stream.Groups[0].PendingCount != 1 || len(sh.Stream.Groups[0].Consumers) != 1 ||
		string(sh.Stream.Groups[0].Consumers[0].Name) != "alice" || !sh.Truncated || len(sh.Value.([]any)) != 1 {
		t.Fatalf("show stream: %+v", sh)
	}
	var whole bytes.Buffer
	sh, err = s.Show(ctx, res.Filename, []byte("events"), 0, ShowOptions{Limit: 1, Out: &whole})
	must(t, err)
	if whole.String() != "[\"1-1\",[\"f\",\"v\"]]\n[\"2-1\",[\"g\",\"w\"]]\n" {
		t.Fatalf("the whole stream: %q", whole.String())
	}
	if _, err := s.Show(ctx, res.Filename, []byte("user:42:h3"), 3, ShowOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a key of another database: %v", err)
	}
	if _, err := s.Show(ctx, res.Filename, []byte("nope"), 0, ShowOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing key: %v", err)
	}

	// Hostile names: refused, and a path only where allowed.
	for _, bad := range []string{"../etc/passwd", "/etc/passwd", "redis_backup_x.json", "latest/../x", "redis_backup_20230101_000000.json\x00"} {
		if _, err := s.Keys(ctx, bad, KeysOptions{}, func(KeyInfo) error { return nil }); !errors.Is(err, ErrInvalid) {
			t.Fatalf("keys %q: %v", bad, err)
		}
	}

	// A hand-copied archive, newer, becomes latest; then an encrypted one.
	src := filepath.Join(store, res.Filename)
	copied := "redis_backup_20991231_000000.json.gz"
	data, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(store, copied), data, 0o600))
	if _, page := listKeys(t, s, Latest, KeysOptions{Limit: 1}); page.Filename != copied {
		t.Fatalf("latest is %s, want the copied %s", page.Filename, copied)
	}
	// A local file by path (the command line's ./file).
	if _, page := listKeys(t, s, src, KeysOptions{ReadOptions: ReadOptions{Local: true}, Limit: 1}); page.Filename != res.Filename {
		t.Fatalf("a path: %s", page.Filename)
	}
	must(t, os.Remove(filepath.Join(store, copied)))
	id, _ := newIdentity(t)
	enc := newServiceCfg(t, encryptedCfg(srv.URL(0), store, id.Recipient().String()))
	time.Sleep(1100 * time.Millisecond) // a name of its own
	eres, err := enc.Backup(ctx, BackupOptions{})
	must(t, err)
	if _, err := s.Keys(ctx, Latest, KeysOptions{}, func(KeyInfo) error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("latest is encrypted, no identity: %v", err)
	}
	ek, page := listKeys(t, s, Latest, KeysOptions{ReadOptions: ReadOptions{Identities: []age.Identity{id}}})
	if page.Filename != eres.Filename || len(ek) != len(all) {
		t.Fatalf("encrypted latest: %s, %d keys", page.Filename, len(ek))
	}
}

// keyState is a key's DUMP and PTTL.
type keyState struct {
	dump string
	pttl time.Duration
}

// same: the same value, and TTLs within 2 s of each other.
func (a keyState) same(b keyState) bool {
	d := a.pttl - b.pttl
	return a.dump == b.dump && d < 2*time.Second && d > -2*time.Second
}

// dumpAll returns DUMP and PTTL of every key of c.
func dumpAll(t *testing.T, c *redis.Client) map[string]keyState {
	t.Helper()
	ctx := context.Background()
	out := map[string]keyState{}
	for _, k := range serverKeys(t, c, "*") {
		d, err := c.Dump(ctx, k).Result()
		must(t, err)
		pttl, err := c.PTTL(ctx, k).Result()
		must(t, err)
		out[k] = keyState{d, pttl}
	}
	return out
}

// TestSelectiveRestore is the bad deploy: user:42:* corrupted, and other
// keys changed since the backup. A restore of user:42:* puts back exactly
// those keys, and every other key stays as it was before the restore.
func TestSelectiveRestore(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t, 0)
	fillLook(t, c)
	must(t, srv.Client(t, 2).Set(ctx, "user:42:db2", "v", 0).Err())
	s := newService(t, fmt.Sprintf("redis://127.0.0.1:%d", srv.Port), filepath.Join(t.TempDir(), "backups"))
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	good := map[string]keyState{}
	for k, v := range dumpAll(t, c) {
		if strings.HasPrefix(k, "user:42:") {
			good[k] = v
		}
	}

	// The bad deploy, and the life of the other keys since the backup.
	must(t, c.HSet(ctx, "user:42:h1", "name", "corrupt").Err())
	must(t, c.Del(ctx, "user:42:s2").Err())
	must(t, c.Set(ctx, "user:42:s3", "wrong type", 0).Err())
	must(t, c.Set(ctx, "user:42:new", "made since", 0).Err())
	must(t, c.RPush(ctx, "user:43:l1", "changed").Err())
	must(t, c.Set(ctx, "fresh", "since", 0).Err())
	must(t, c.Del(ctx, "board").Err())
	before := dumpAll(t, c)
	before2 := dumpAll(t, srv.Client(t, 2))

	var mu sync.Mutex
	var last engine.Progress
	var reports int
	rr, err := s.Restore(ctx, Latest, RestoreOptions{Overwrite: true, Selection: Selection{Match: []string{"user:42:*"}, DBs: []int{0}},
		Progress: func(p engine.Progress) { mu.Lock(); last = p; reports++; mu.Unlock() }})
	must(t, err)
	// The keys left out count as done: the progress ends at every key.
	if reports == 0 || last.KeysDone != res.KeysCount || last.KeysTotal != res.KeysCount {
		t.Fatalf("last progress %+v after %d reports, want %d of %d", last, reports, res.KeysCount, res.KeysCount)
	}
	want := int64(len(good))
	if rr.RestoredCount != want || rr.SkippedCount != 0 || rr.ErrorCount != 0 || rr.FilteredCount != res.KeysCount-want || rr.TotalKeys != res.KeysCount {
		t.Fatalf("restore %+v; want %d restored of %d", rr, want, res.KeysCount)
	}
	after := dumpAll(t, c)
	for k, v := range before {
		if strings.HasPrefix(k, "user:42:") && k != "user:42:new" {
			continue
		}
		if !after[k].same(v) {
			t.Fatalf("key %q outside the selection changed", k)
		}
	}
	for k, v := range good {
		if !after[k].same(v) {
			t.Fatalf("key %q not restored to its backed-up value", k)
		}
	}
	if len(after) != len(before)+1 { // user:42:s2 is back
		t.Fatalf("%d keys after, %d before", len(after), len(before))
	}
	if !maps2Equal(before2, dumpAll(t, srv.Client(t, 2))) {
		t.Fatal("database 2 changed: --db 0 left it out")
	}

	// Without overwrite the changed keys are skipped; a dry run with a type
	// and an exclusion counts without writing.
	must(t, c.HSet(ctx, "user:42:h1", "name", "corrupt again").Err())
	rr, err = s.Restore(ctx, res.Filename, RestoreOptions{DryRun: true, Selection: Selection{Match: []string{"user:*"}, Exclude: []string{"user:43:*"}, Types: []string{"hash"}}})
	must(t, err)
	if rr.RestoredCount+rr.SkippedCount != 5 || rr.SkippedCount != 5 || rr.FilteredCount != res.KeysCount-5 {
		t.Fatalf("dry run %+v", rr)
	}
	if v, _ := c.HGet(ctx, "user:42:h1", "name").Result(); v != "corrupt again" {
		t.Fatal("the dry run wrote")
	}
	if _, err := s.Restore(ctx, res.Filename, RestoreOptions{Selection: Selection{Types: []string{""}}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty type: %v", err)
	}

	// A local file, by path: the same checks; a truncated copy is refused
	// before any write.
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(s.cfg.Storage, res.Filename))
	must(t, err)
	local := filepath.Join(dir, res.Filename)
	must(t, os.WriteFile(local, data, 0o600))
	dst := redistest.Start(t)
	d := newService(t, dst.URL(0), filepath.Join(t.TempDir(), "empty"))
	if _, err := d.Restore(ctx, local, RestoreOptions{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a path without Local: %v", err)
	}
	trunc := filepath.Join(t.TempDir(), res.Filename)
	must(t, os.WriteFile(trunc, data[:len(data)/2], 0o600))
	if _, err := d.Restore(ctx, trunc, RestoreOptions{Local: true}); !errors.Is(err, ErrInvalid) || dbsize(t, dst) != 0 {
		t.Fatalf("a truncated file: %v, %d keys written", err, dbsize(t, dst))
	}
	if _, err := d.Restore(ctx, filepath.Join(dir, "backup.json.gz"), RestoreOptions{Local: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a file without an archive name: %v", err)
	}
	rr, err = d.Restore(ctx, local, RestoreOptions{Local: true, Selection: Selection{Match: []string{"user:42:*"}}})
	must(t, err)
	if rr.RestoredCount != want+1 || rr.Filename != res.Filename { // with user:42:db2, into db 0 (the URL's)
		t.Fatalf("restore of a local file: %+v", rr)
	}
}

func maps2Equal(a, b map[string]keyState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].same(v) {
			return false
		}
	}
	return true
}

// TestBackupIncludeExclude: backup.include and backup.exclude select the
// keys of a SCAN and of a replica snapshot; the archive records them; a
// restore brings back exactly those keys.
func TestBackupIncludeExclude(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(t, 0)
	fillLook(t, c)
	c.Set(ctx, "cache:1", "x", 0)
	want := []string{}
	for _, k := range serverKeys(t, c, "*") {
		if (strings.HasPrefix(k, "user:") || strings.HasPrefix(k, "bin:\xff")) && !strings.HasPrefix(k, "user:43:") {
			want = append(want, k)
		}
	}
	for _, source := range []string{SourceScan, SourceReplica} {
		t.Run(source, func(t *testing.T) {
			cfg := config.Default()
			cfg.Redis.URL = srv.URL(0)
			cfg.Storage = filepath.Join(t.TempDir(), "backups")
			cfg.Backup.Source = source
			cfg.Backup.Include = []string{"user:*", `bin:\xff*`}
			cfg.Backup.Exclude = []string{"user:43:*"}
			s := newServiceCfg(t, cfg)
			res, err := s.Backup(ctx, BackupOptions{})
			must(t, err)
			if res.KeysCount != int64(len(want)) || res.Filter == nil || !slices.Equal(res.Filter.Include, []string{"user:*", `bin:\xff*`}) {
				t.Fatalf("backup %+v; want %d keys", res, len(want))
			}
			got, page := listKeys(t, s, res.Filename, KeysOptions{})
			if !slices.Equal(names(got), want) {
				t.Fatalf("the archive holds %q, want %q", names(got), want)
			}
			if page.Filter == nil || !slices.Equal(page.Filter.Exclude, []string{"user:43:*"}) {
				t.Fatalf("the archive's filter: %+v", page.Filter)
			}
			info, err := s.Stat(ctx, res.Filename)
			must(t, err)
			if !strings.Contains(info.Manifest.Source["filter"], "user:43:*") {
				t.Fatalf("manifest %+v", info.Manifest.Source)
			}
			dst := redistest.Start(t)
			d := newService(t, dst.URL(0), cfg.Storage)
			if _, err := d.Restore(ctx, Latest, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := serverKeys(t, dst.Client(t, 0), "*"); !slices.Equal(got, want) {
				t.Fatalf("restored %q", got)
			}
		})
	}
}
