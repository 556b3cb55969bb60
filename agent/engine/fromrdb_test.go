package engine

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/engine/replica"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/fidelity"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestFromRDBMatrix: on every server of the matrix, with every shape, the
// RDB of a replica snapshot and the server's own dump.rdb (SAVE) both turn
// into an archive that restores to the source's state (fidelity.Diff and
// DEBUG DIGEST-VALUE, key by key), streams with their delivery state, hash
// field TTLs and module values included.
func TestFromRDBMatrix(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := fillSource(t, ctx, name)
			for _, how := range []string{"replica", "save"} {
				t.Run(how, func(t *testing.T) {
					var rdb io.Reader
					switch how {
					case "replica":
						if err := src.srv.Client(t, 0).ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
							t.Fatal(err)
						}
						snap, err := replica.Fetch(ctx, replica.Options{Network: "unix", Addr: src.srv.Socket, RDBOnly: true, Version: src.caps.Version, StartTimeout: 30 * time.Second, ReadTimeout: 10 * time.Second})
						if err != nil {
							log, _ := os.ReadFile(filepath.Join(src.srv.Dir, "redis.log"))
							t.Fatalf("%v\nserver log:\n%s", err, log)
						}
						defer snap.Close()
						rdb = snap
					case "save":
						c := src.srv.Client(t, 0)
						if err := c.Save(ctx).Err(); err != nil {
							t.Fatal(err)
						}
						dir, err := c.ConfigGet(ctx, "dir").Result()
						if err != nil {
							t.Fatal(err)
						}
						f, err := os.Open(filepath.Join(dir["dir"], "dump.rdb"))
						if err != nil {
							t.Fatal(err)
						}
						defer f.Close()
						rdb = f
					}
					var archive bytes.Buffer
					w := codec.NewWriter(&archive, codec.Header{Source: codec.Source{Databases: src.m.DBs()}})
					var info RDBInfo
					st, err := FromRDB(ctx, rdb, func(i RDBInfo) (KeyWriter, error) { info = i; return w, nil }, RDBOptions{SpillDir: t.TempDir()})
					if err != nil {
						t.Fatalf("FromRDB: %v", err)
					}
					if _, err := w.Close(); err != nil {
						t.Fatal(err)
					}
					if info.Version == 0 || info.Aux["ctime"] == "" || info.Created.IsZero() || time.Since(info.Created) > time.Minute {
						t.Errorf("the RDB's header as open saw it: %+v", info)
					}
					if st.Keys != int64(src.m.Len()) || st.Expired != 0 || st.FieldTTLKeys != int64(len(src.m.FieldTTLKeys())) || !st.Checksum {
						t.Errorf("stats %+v; the fill wrote %d keys, %d with field TTLs", st, src.m.Len(), len(src.m.FieldTTLKeys()))
					}
					for typ, n := range src.m.RawKeys() {
						if st.RawKeys[typ] != n {
							t.Errorf("raw keys %v, want %v", st.RawKeys, src.m.RawKeys())
						}
					}
					dst := redistest.StartServer(t, name)
					rs, err := NewRestorer(opts(t, dst, 0), RestoreOptions{BatchKeys: 64}).Restore(ctx, codec.NewReader(bytes.NewReader(archive.Bytes())))
					if err != nil || rs.Errors != 0 || rs.Restored != int64(src.m.Len()) {
						t.Fatalf("restore: %v (stats %+v)", err, rs)
					}
					got, err := fidelity.Snapshot(ctx, dst.Client(t, 0))
					if err != nil {
						t.Fatal(err)
					}
					if d := fidelity.Diff(src.want, got, diffOptions(TTLRelative, src.want.TakenAt)); len(d) > 0 {
						t.Errorf("%s from %s: the restored state differs (%d differences):\n%s", name, how, len(d), strings.Join(d, "\n"))
					}
					for _, db := range src.m.DBs() {
						diffs, err := redistest.Compare(ctx, src.srv.Client(t, db), dst.Client(t, db), time.Since(src.want.TakenAt)+5*time.Second)
						if err != nil {
							t.Fatal(err)
						}
						if len(diffs) > 0 {
							t.Errorf("%s from %s, database %d: digests differ:\n%s", name, how, db, strings.Join(diffs, "\n"))
						}
					}
				})
			}
		})
	}
}
