package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/redistest"
)

// A plain .json archive copied without its manifest proves itself by the
// checksum it carries (format version 2): a flipped byte in a value is
// refused by restore before any write and by verify, and nothing is
// recorded; the sound copy verifies by that checksum alone.
func TestCopyWithoutManifestIsChecked(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	sc := src.Client(t, 0)
	for _, k := range []string{"a", "b", "c"} {
		must(t, sc.Set(ctx, "key:"+k, "value-of-"+k+"-that-must-not-change", 0).Err())
	}
	must(t, sc.HSet(ctx, "h", "field", "hash value").Err())
	store := filepath.Join(t.TempDir(), "backups")
	s := newService(t, src.URL(0), store)
	plain := false
	res, err := s.Backup(ctx, BackupOptions{Compress: &plain})
	must(t, err)
	if !strings.HasSuffix(res.Filename, ".json") {
		t.Fatalf("backup %s", res.Filename)
	}
	data, err := os.ReadFile(filepath.Join(store, res.Filename))
	must(t, err)

	// The archive with its manifest: both checksums.
	v, err := s.Verify(ctx, res.Filename, nil)
	if err != nil || !v.Success || v.Integrity != IntegrityBoth {
		t.Fatalf("verify of the original: %+v %v", v, err)
	}

	// Copies by hand, without manifests: one sound, one with a value's
	// byte flipped (still valid JSON: only the checksum can tell).
	i := bytes.Index(data, []byte("value-of-b-that"))
	if i < 0 {
		t.Fatal("value not found in the archive")
	}
	bad := bytes.Clone(data)
	bad[i+3] ^= 0x01 // "value" -> "valte"
	good, damaged := "redis_backup_20200101_000000.json", "redis_backup_20200101_000001.json"
	must(t, os.WriteFile(filepath.Join(store, good), data, 0o600))
	must(t, os.WriteFile(filepath.Join(store, damaged), bad, 0o600))

	d := newService(t, dst.URL(0), store)
	rr, err := d.Restore(ctx, damaged, RestoreOptions{})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrChecksum) || rr.Success || rr.RestoredCount != 0 {
		t.Fatalf("restore of the damaged copy: %+v %v", rr, err)
	}
	if n := dst.Client(t, 0).DBSize(ctx).Val(); n != 0 {
		t.Fatalf("the damaged copy wrote %d keys", n)
	}
	v, err = s.Verify(ctx, damaged, nil)
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrChecksum) || v.Success || v.Recorded || !strings.Contains(v.Error, "checksum mismatch") {
		t.Fatalf("verify of the damaged copy: %+v %v", v, err)
	}
	if info, err := s.sink.Stat(ctx, damaged); err != nil || info.Manifest != nil {
		t.Fatalf("verify of the damaged copy recorded something: %+v %v", info.Manifest, err)
	}

	v, err = s.Verify(ctx, good, nil)
	if err != nil || !v.Success || v.Integrity != IntegrityArchive || !v.Recorded || v.ChecksumStored {
		t.Fatalf("verify of the sound copy: %+v %v", v, err)
	}
	rr, err = d.Restore(ctx, good, RestoreOptions{})
	if err != nil || !rr.Success || rr.RestoredCount != 4 || len(rr.Warnings) != 0 {
		t.Fatalf("restore of the sound copy: %+v %v", rr, err)
	}
	if got := dst.Client(t, 0).Get(ctx, "key:b").Val(); got != "value-of-b-that-must-not-change" {
		t.Fatalf("restored %q", got)
	}
}

// Seed and version 1 archives carry no checksum: copied in without a
// manifest they still restore (the seed's migration workflow), with a
// warning, and verify says they cannot be verified: not a success, nothing
// recorded.
func TestArchivesWithoutChecksum(t *testing.T) {
	ctx := context.Background()
	dst := redistest.Start(t)
	store := t.TempDir()
	for _, c := range []struct{ from, to string }{
		{"../codec/testdata/seed_ascii.json", "redis_backup_20231205_143022.json"},
		{"../codec/testdata/seed_indent.json.gz", "redis_backup_20231205_143023.json.gz"},
		{"../codec/testdata/v1.json", "redis_backup_20231205_143024.json"},
	} {
		b, err := os.ReadFile(c.from)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(store, c.to), b, 0o600))
	}
	d := newService(t, dst.URL(0), store)
	for _, name := range []string{"redis_backup_20231205_143022.json", "redis_backup_20231205_143023.json.gz", "redis_backup_20231205_143024.json"} {
		v, err := d.Verify(ctx, name, nil)
		if !errors.Is(err, ErrUnverifiable) || errors.Is(err, ErrInvalid) || v.Success || v.Recorded || v.Integrity != IntegrityNone ||
			v.KeysCount == 0 || !strings.Contains(v.Error, "carries no checksum") || !strings.Contains(v.Error, "cannot be verified") {
			t.Fatalf("verify %s: %+v %v", name, v, err)
		}
		info, err := d.sink.Stat(ctx, name)
		if err != nil || info.Manifest != nil {
			t.Fatalf("verify %s recorded something: %+v %v", name, info.Manifest, err)
		}
		if l, _ := d.List(ctx); slices.ContainsFunc(l.Backups, func(b BackupInfo) bool { return b.Filename == name && (b.Verified || b.VerifiedAt != "") }) {
			t.Fatalf("%s listed as verified", name)
		}
		rr, err := d.Restore(ctx, name, RestoreOptions{Overwrite: true})
		if err != nil || !rr.Success || rr.RestoredCount == 0 || !slices.Contains(rr.Warnings, warnNoChecksum) {
			t.Fatalf("restore %s: %+v %v", name, rr, err)
		}
	}
	if got := dst.Client(t, 0).Get(ctx, "greeting:ru").Val(); got != "Привет, мир 🙂" {
		t.Fatalf("seed string %q", got)
	}
}
