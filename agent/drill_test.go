package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/internal/fidelity"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/sinks"
)

// TestDrillPasses: on every server of the matrix, a backup of every shape
// the fidelity fill makes (every type and encoding, TTLs, hash field
// TTLs, streams with groups, consumers and pending entries, several
// databases) drills clean into a throw-away server of the same kind; the
// outcome is in the manifest and in the listing; the source is untouched.
func TestDrillPasses(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := redistest.StartServer(t, name)
			c := src.Client(t, 0)
			caps, err := fidelity.Probe(ctx, c)
			must(t, err)
			m, err := fidelity.Fill(ctx, c, caps, rand.New(rand.NewPCG(20261220, 3)), fidelity.Options{})
			must(t, err)
			svc := newService(t, src.URL(0), t.TempDir())
			b, err := svc.Backup(ctx, BackupOptions{})
			must(t, err)
			before, err := fidelity.Snapshot(ctx, c)
			must(t, err)
			bin, err := redistest.BinaryFor(name)
			must(t, err)
			res, err := svc.Drill(ctx, Latest, DrillOptions{ServerBinary: bin})
			if err != nil || !res.Success {
				t.Fatalf("drill: %v\n%+v", err, res)
			}
			if res.Filename != b.Filename || res.Scratch != "started" || !strings.HasPrefix(res.Server, caps.Kind+" ") || !res.Recorded {
				t.Fatalf("drill result: %+v", res)
			}
			if res.Compared+res.ExpiredDuring != int64(m.Len()) || res.Restored != int64(m.Len()) || res.KeysCount != int64(m.Len()) ||
				res.DifferencesCount != 0 || len(res.Mismatches) != 0 {
				t.Fatalf("drill of %d keys: %+v", m.Len(), res)
			}
			if fmt.Sprint(res.KeysPerDB) != fmt.Sprint(b.KeysPerDB) {
				t.Fatalf("scratch server keys per db %v, the backup's %v", res.KeysPerDB, b.KeysPerDB)
			}
			info, err := svc.Stat(ctx, b.Filename)
			must(t, err)
			if d := info.Manifest.Drill; d == nil || d.Result != DrillPassed || d.Keys != int64(m.Len()) || d.Server != res.Server {
				t.Fatalf("manifest's drill: %+v", info.Manifest.Drill)
			}
			l, err := svc.List(ctx)
			must(t, err)
			if bi := l.Backups[0]; bi.DrillResult != DrillPassed || bi.DrilledAt == "" || bi.DrillError != "" {
				t.Fatalf("listing: %+v", bi)
			}
			after, err := fidelity.Snapshot(ctx, c)
			must(t, err)
			if d := fidelity.Diff(before, after, fidelity.DiffOptions{TTLSlack: time.Since(before.TakenAt) + time.Second,
				FieldTTLSlack: time.Since(before.TakenAt) + time.Second}); len(d) > 0 {
				t.Fatalf("the drill changed the source: %s", d[0])
			}
		})
	}
}

// handArchive stores a version 2 archive whose document is head + keys +
// tail (the trailer's counts given by hand), with a correct "sha256", and
// a manifest for it; it returns the name.
func handArchive(t *testing.T, s *Service, at time.Time, keys, trailer string) string {
	t.Helper()
	ctx := context.Background()
	name := sinks.NewName(at, false, false)
	doc := `{"format":"redback","format_version":2,"timestamp":"` + at.UTC().Format("20060102_150405") +
		`","created_at":"` + at.UTC().Format("2006-01-02T15:04:05.000000Z") +
		`","source":{"redis_version":"7.0.15","role":"master","mode":"standalone","databases":[0]},"data":{` + keys + `},` +
		trailer + `,"completed_at":"` + at.UTC().Format("2006-01-02T15:04:05.000000Z") + `",`
	sum := sha256.Sum256([]byte(doc))
	doc += `"sha256":"` + hex.EncodeToString(sum[:]) + `"}` + "\n"
	dir := s.cfg.Storage
	must(t, os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600))
	file := sha256.Sum256([]byte(doc))
	must(t, s.sink.WriteManifest(ctx, sinks.Manifest{Name: name, Size: int64(len(doc)), SHA256: hex.EncodeToString(file[:]),
		FormatVersion: 2, CreatedAt: at, CompletedAt: at}))
	return name
}

// TestDrillCatchesBadArchives: archives that are valid JSON with a correct
// checksum, but whose content does not restore to what they record.
func TestDrillCatchesBadArchives(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	svc := newService(t, src.URL(0), t.TempDir())
	old, err := redistest.BinaryFor("redis-7.0")
	must(t, err)
	future := time.Now().Add(time.Hour).UnixMilli()
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	cases := []struct {
		name, keys, trailer string
		want                []string // in the error
		check               func(DrillResult) bool
	}{
		{"good", `"s":{"type":"string","ttl":null,"value":"x"},"h":{"type":"hash","ttl":60,"pttl":60000,"value":{"f":"v"}}`,
			`"keys_count":2,"keys_per_db":{"0":2},"keys_per_type":{"string":1,"hash":1}`, nil,
			func(r DrillResult) bool { return r.Compared == 2 }},
		{"per-type count", `"s":{"type":"string","ttl":null,"value":"x"},"h":{"type":"hash","ttl":null,"value":{"f":"v"}}`,
			`"keys_count":2,"keys_per_db":{"0":2},"keys_per_type":{"string":2}`,
			[]string{"type string: the archive records 2 keys, the server holds 1", "type hash: the archive records 0 keys, the server holds 1"},
			func(r DrillResult) bool { return r.DifferencesCount == 0 && len(r.Mismatches) == 2 }},
		{"key count", `"s":{"type":"string","ttl":null,"value":"x"}`,
			`"keys_count":2,"keys_per_db":{"0":2}`, []string{"keys_count is 2 but the archive holds 1 keys"},
			func(r DrillResult) bool { return r.Restored == 0 }},
		{"a key twice", `"s":{"type":"string","ttl":null,"value":"x"},"s":{"type":"string","ttl":null,"value":"y"}`,
			`"keys_count":2,"keys_per_db":{"0":2},"keys_per_type":{"string":2}`,
			[]string{"the archive records 2 keys (0 expired during the drill), the server holds 1", "keys differ"},
			// The second "s" (y) is compared with the server's (x, the
			// first written): changed; the first has no counterpart left.
			func(r DrillResult) bool { return r.DifferencesCount == 2 && r.Restored == 1 }},
		{"a type the target refuses", `"s":{"type":"string","ttl":null,"value":"x"},"h":{"type":"hash","ttl":null,"value":[["f","v",` + fmt.Sprint(future) + `]]}`,
			`"keys_count":2,"keys_per_db":{"0":2},"keys_per_type":{"string":1,"hash":1}`,
			[]string{"1 keys were refused by the scratch server", "no hash field expiry", "database 0: the archive records 2 keys, the server holds 1"},
			func(r DrillResult) bool {
				return len(r.RestoreErrors) == 1 && r.DifferencesCount == 1 && r.Differences[0].Change == "removed"
			}},
	}
	for i, c := range cases {
		name := handArchive(t, svc, base.Add(time.Duration(i)*time.Second), c.keys, c.trailer)
		res, err := svc.Drill(ctx, name, DrillOptions{ServerBinary: old})
		if c.want == nil {
			if err != nil || !res.Success || !c.check(res) {
				t.Fatalf("%s: %v %+v", c.name, err, res)
			}
			continue
		}
		if err == nil || res.Success || !c.check(res) {
			t.Fatalf("%s: not caught: %v\n%+v", c.name, err, res)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: the error does not say %q:\n%v", c.name, w, err)
			}
		}
		info, serr := svc.Stat(ctx, name)
		must(t, serr)
		if d := info.Manifest.Drill; d == nil || d.Result != DrillFailed || d.Error != err.Error() || !res.Recorded {
			t.Fatalf("%s: recorded %+v", c.name, info.Manifest.Drill)
		}
	}
	l, err := svc.List(ctx)
	must(t, err)
	for i, bi := range l.Backups {
		if want := map[bool]string{true: DrillPassed, false: DrillFailed}[i == 0]; bi.DrillResult != want {
			t.Fatalf("listing %d: %+v", i, bi)
		}
	}
}

// TestDrillScratchURL: a scratch server that holds keys no drill put
// there is refused and left as it was; an empty one is taken, marked, and
// left flushed with only the marker; the marked one is taken again; the
// server that is backed up is never one.
func TestDrillScratchURL(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for i := range 50 {
		must(t, c.Set(ctx, fmt.Sprint("k", i), i, 0).Err())
	}
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "st", ID: "1-1", Values: []string{"f", "v"}}).Err())
	must(t, c.XGroupCreate(ctx, "st", "g", "0").Err())
	must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "alice", Streams: []string{"st", ">"}}).Err())
	svc := newService(t, src.URL(0), t.TempDir())
	_, err := svc.Backup(ctx, BackupOptions{})
	must(t, err)

	foreign := redistest.Start(t)
	fc := foreign.Client(t, 3)
	must(t, fc.Set(ctx, "user:1", "precious", 0).Err())
	res, err := svc.Drill(ctx, Latest, DrillOptions{RedisURL: foreign.URL(0)})
	if !errors.Is(err, ErrInvalid) || res.Success || !strings.Contains(err.Error(), "holds 1 keys (databases [3]) and no drill marker") {
		t.Fatalf("a server with foreign keys: %v %+v", err, res)
	}
	if v, err := fc.Get(ctx, "user:1").Result(); err != nil || v != "precious" {
		t.Fatalf("the foreign key: %q %v", v, err)
	}
	if n, _ := foreign.Client(t, 0).DBSize(ctx).Result(); n != 0 {
		t.Fatalf("database 0 of the refused server holds %d keys (a marker?)", n)
	}
	info, err := svc.Stat(ctx, res.Filename)
	must(t, err)
	if info.Manifest.Drill != nil {
		t.Fatalf("a drill that could not run was recorded: %+v", info.Manifest.Drill)
	}

	empty := redistest.Start(t)
	for round := range 2 {
		res, err = svc.Drill(ctx, Latest, DrillOptions{RedisURL: empty.URL(0)})
		if err != nil || !res.Success || res.Scratch != "redis_url" || res.Compared != 51 || res.KeysPerDB["0"] != 51 {
			t.Fatalf("round %d: an empty scratch server: %v %+v", round, err, res)
		}
		ec := empty.Client(t, 0)
		keys, err := ec.Keys(ctx, "*").Result()
		must(t, err)
		if len(keys) != 1 || keys[0] != DrillMarkerKey {
			t.Fatalf("round %d: after the drill the scratch server holds %v", round, keys)
		}
		// Leftovers of a killed drill beside the marker: taken all the same.
		must(t, ec.Set(ctx, "k1", "left over", 0).Err())
	}
	if _, err := svc.Drill(ctx, Latest, DrillOptions{RedisURL: src.URL(5)}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "names the server that is backed up") {
		t.Fatalf("the source as scratch server: %v", err)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 51 {
		t.Fatalf("the source holds %d keys", n)
	}
}

// TestDrillPartial: drill.max_keys restores the first keys only, and says
// that the counts were not compared.
func TestDrillPartial(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	c := src.Client(t, 0)
	for i := range 300 {
		must(t, c.Set(ctx, fmt.Sprint("k", i), i, 0).Err())
	}
	svc := newService(t, src.URL(0), t.TempDir())
	_, err := svc.Backup(ctx, BackupOptions{})
	must(t, err)
	bin, err := redistest.Binary()
	must(t, err)
	res, err := svc.Drill(ctx, Latest, DrillOptions{ServerBinary: bin, MaxKeys: 120})
	if err != nil || !res.Success || !res.Partial || res.Compared != 120 || res.Restored != 120 || res.KeysCount != 300 {
		t.Fatalf("partial drill: %v %+v", err, res)
	}
	info, err := svc.Stat(ctx, res.Filename)
	must(t, err)
	if d := info.Manifest.Drill; d == nil || !d.Partial || d.Keys != 120 {
		t.Fatalf("recorded: %+v", d)
	}
}
