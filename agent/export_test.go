package agent

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/internal/fidelity"
	"github.com/redback-dev/redback/internal/redistest"
)

// TestExportLoadsInTheServer: on every server of the matrix, an archive of
// every shape exports to an RDB file that a fresh server of that kind loads
// at start, holding what the source held (streams with their delivery
// state, hash field TTLs, vector sets), in the server's own RDB version.
func TestExportLoadsInTheServer(t *testing.T) {
	for _, name := range redistest.Matrix {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := redistest.StartServer(t, name)
			c := src.Client(t, 0)
			caps, err := fidelity.Probe(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			m, err := fidelity.Fill(ctx, c, caps, rand.New(rand.NewPCG(20261201, 2)), fidelity.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := fidelity.Snapshot(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			svc := newService(t, src.URL(0), t.TempDir())
			b, err := svc.Backup(ctx, BackupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bin, err := redistest.BinaryFor(name)
			if err != nil {
				t.Fatal(err)
			}
			var rdb bytes.Buffer
			res, err := svc.Export(ctx, b.Filename, &rdb, ExportOptions{ServerBinary: bin})
			if err != nil || !res.Success {
				t.Fatalf("export: %v %+v", err, res)
			}
			if res.KeysCount != int64(m.Len()) || res.Size != int64(rdb.Len()) {
				t.Fatalf("export wrote %d keys, %d bytes (buffer %d); the fill wrote %d", res.KeysCount, res.Size, rdb.Len(), m.Len())
			}
			probe := m.Where(func(fidelity.Shape) bool { return true })[0]
			wantVersion, err := redistest.DumpRDBVersion(ctx, src.Client(t, probe.DB), probe.Key)
			if err != nil {
				t.Fatal(err)
			}
			if res.RDBVersion != wantVersion || !strings.HasPrefix(res.Server, caps.Kind+" ") {
				t.Fatalf("export says %s, RDB version %d; the server dumps version %d", res.Server, res.RDBVersion, wantVersion)
			}

			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "exported.rdb"), rdb.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			dst, err := redistest.StartDirServer(dir, name, "--dbfilename", "exported.rdb")
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Stop()
			got, err := fidelity.Snapshot(ctx, dst.Client(t, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got.Keys() != m.Len() {
				t.Fatalf("the loaded export holds %d keys, the fill wrote %d", got.Keys(), m.Len())
			}
			t.Logf("%s: %d keys in %d encodings, RDB version %d, %d bytes", res.Server, got.Keys(), len(m.Encodings()), res.RDBVersion, res.Size)
			elapsed := time.Since(want.TakenAt) + time.Second
			if d := fidelity.Diff(want, got, fidelity.DiffOptions{TTLSlack: elapsed, FieldTTLSlack: elapsed}); len(d) > 0 {
				t.Fatalf("the loaded export differs from the source in %d ways; the first: %s", len(d), d[0])
			}
		})
	}
}

// TestExportRefusals: a server binary that is no server, an archive
// holding what the target cannot hold, and a bad name: an error, and
// nothing written.
func TestExportRefusals(t *testing.T) {
	ctx := context.Background()
	src := redistest.StartServer(t, "redis-8")
	c := src.Client(t, 0)
	c.Set(ctx, "k", "v", 0)
	if err := c.Do(ctx, "VADD", "vs", "VALUES", "2", "0.5", "0.25", "e1").Err(); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, src.URL(0), t.TempDir())
	b, err := svc.Backup(ctx, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := svc.Export(ctx, b.Filename, &out, ExportOptions{ServerBinary: "/bin/true"}); err == nil || out.Len() != 0 {
		t.Fatalf("a binary that is no server: %v, %d bytes", err, out.Len())
	}
	old, err := redistest.BinaryFor("redis-7.0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Export(ctx, b.Filename, &out, ExportOptions{ServerBinary: old})
	if err == nil || res.Success || out.Len() != 0 || !strings.Contains(err.Error(), "no RDB file written") {
		t.Fatalf("a vector set into redis 7.0: %v %+v, %d bytes", err, res, out.Len())
	}
	if _, err := svc.Export(ctx, "../etc/passwd", &out, ExportOptions{ServerBinary: old}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad name: %v", err)
	}
	if _, err := svc.Export(ctx, b.Filename, &out, ExportOptions{ServerBinary: old, TTL: "sideways"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad TTL mode: %v", err)
	}
}
