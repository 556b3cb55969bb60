package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/internal/s3test"
)

// TestDisasterRecoveryFromS3 backs up, encrypted, into a real S3-compatible
// server (versitygw), then restores on a "fresh host": a Service built
// from nothing but the default configuration, the bucket URL, the
// credentials in the environment and the identity file.
func TestDisasterRecoveryFromS3(t *testing.T) {
	ctx := context.Background()
	s3test.SetEnv(t)
	gw := s3test.Start(t, "offsite")
	url := gw.SinkURL("offsite", "prod/redis")
	src, dst := redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 5000, TTLPercent: 20, Binary: true, BigElements: 5000, BigString: 3 << 20, Streams: 2, Seed: 31}))
	must(t, datagen.Fill(ctx, src.Client(t, 3), datagen.Spec{Keys: 200, Binary: true, Seed: 32}))
	id, idFile := newIdentity(t)
	_, strangerFile := newIdentity(t)

	// The production host: encrypted, verified after upload (checksum only:
	// it holds no identity).
	cfg := encryptedCfg(src.URL(0), url, id.Recipient().String())
	cfg.Backup.VerifyAfter = true
	prod := newServiceCfg(t, cfg)
	start := time.Now()
	res, err := prod.Backup(ctx, BackupOptions{})
	must(t, err)
	if !res.Success || !res.Encrypted || !res.ChecksumVerified || !strings.HasSuffix(res.Filename, ".json.gz.age") {
		t.Fatalf("backup %+v", res)
	}
	if !strings.HasPrefix(res.Filepath, "s3://offsite/prod/redis") || strings.Contains(res.Filepath, s3test.SecretKey) {
		t.Fatalf("filepath %q", res.Filepath)
	}
	must(t, prod.Close())

	// The fresh host: no agent.yaml, only what the operator brings.
	fresh := config.Default()
	fresh.Redis.URL = dst.URL(0)
	fresh.Storage = url
	d := newServiceCfg(t, fresh)
	list, err := d.List(ctx)
	must(t, err)
	if len(list.Backups) != 1 || list.Backups[0].Filename != res.Filename || !list.Backups[0].Encrypted || list.Backups[0].SHA256 != res.SHA256 {
		t.Fatalf("list %+v", list)
	}
	before := seedTarget(t, dst)
	wrong, err := LoadIdentities([]string{strangerFile})
	must(t, err)
	if _, err := d.Restore(ctx, res.Filename, RestoreOptions{Identities: wrong}); !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrWrongKey) {
		t.Fatalf("restore with a wrong key: %v", err)
	}
	if n := dbsize(t, dst); n != before {
		t.Fatalf("wrong key: DBSIZE %d -> %d", before, n)
	}
	must(t, dst.Client(t, 0).FlushDB(ctx).Err())

	ids, err := LoadIdentities([]string{idFile})
	must(t, err)
	v, err := d.Verify(ctx, res.Filename, ids)
	must(t, err)
	if !v.Success || !v.ChecksumStored || v.KeysCount != res.KeysCount {
		t.Fatalf("verify %+v", v)
	}
	rr, err := d.Restore(ctx, res.Filename, RestoreOptions{Identities: ids})
	must(t, err)
	if !rr.Success || rr.RestoredCount != res.KeysCount || rr.ErrorCount != 0 {
		t.Fatalf("restore %+v", rr)
	}
	compare(t, src.Client(t, 0), dst.Client(t, 0), start)
	compare(t, src.Client(t, 3), dst.Client(t, 3), start)
	if st, err := d.Stats(ctx); err != nil || st.TotalBackups != 1 || st.VerifiedCount != 1 {
		t.Fatalf("stats %+v, %v", st, err)
	}
}
