package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/sinks"
)

// newIdentity makes an X25519 identity and writes it to an identity file.
func newIdentity(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	must(t, err)
	p := filepath.Join(t.TempDir(), "key.txt")
	must(t, os.WriteFile(p, []byte("# created: test\n# public key: "+id.Recipient().String()+"\n"+id.String()+"\n"), 0o600))
	return id, p
}

func newServiceCfg(t *testing.T, cfg config.Config) *Service {
	t.Helper()
	s, err := New(context.Background(), cfg, nil)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func encryptedCfg(redisURL, storage string, recipients ...string) config.Config {
	cfg := config.Default()
	cfg.Redis.URL = redisURL
	cfg.Storage = storage
	cfg.Backup.Encrypt.Recipients = recipients
	return cfg
}

func dbsize(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	n, err := srv.Client(t, 0).DBSize(context.Background()).Result()
	must(t, err)
	return n
}

// seedTarget puts a few keys into a restore target, so that "nothing was
// written" is a count that must not move.
func seedTarget(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	c := srv.Client(t, 0)
	for _, k := range []string{"keep:a", "keep:b", "keep:c"} {
		must(t, c.Set(context.Background(), k, "x", 0).Err())
	}
	return dbsize(t, srv)
}

func TestEncryptedBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, dst, other := redistest.Start(t), redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 2000, BigString: 1 << 20, Streams: 2, Seed: 21}))
	oldID, oldFile := newIdentity(t)
	newID, newFile := newIdentity(t)
	_, strangerFile := newIdentity(t)
	store := filepath.Join(t.TempDir(), "backups")

	// Encrypted to the old and the new key (key rotation), as the config
	// would say it: one inline, one in a recipients file.
	rf := filepath.Join(t.TempDir(), "recipients.txt")
	must(t, os.WriteFile(rf, []byte("# the new key\n"+newID.Recipient().String()+"\n"), 0o644))
	cfg := encryptedCfg(src.URL(0), store, oldID.Recipient().String())
	cfg.Backup.Encrypt.RecipientsFile = rf
	s := newServiceCfg(t, cfg)
	start := time.Now()
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	if !res.Success || !res.Encrypted || !strings.HasSuffix(res.Filename, ".json.gz.age") {
		t.Fatalf("backup %+v", res)
	}
	// The stored object is age, not gzip or JSON.
	raw, err := os.ReadFile(filepath.Join(store, res.Filename))
	must(t, err)
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
		t.Fatalf("archive does not start with the age header: %q", raw[:min(len(raw), 40)])
	}
	if bytes.Contains(raw, []byte("redis_version")) {
		t.Fatalf("plaintext visible in the encrypted archive")
	}

	list, err := s.List(ctx)
	must(t, err)
	if len(list.Backups) != 1 || list.Backups[0].Filename != res.Filename || !list.Backups[0].Encrypted || list.Backups[0].Verified {
		t.Fatalf("list %+v", list)
	}
	info, err := s.Stat(ctx, res.Filename)
	must(t, err)
	wantFP := []string{oldID.Recipient().String(), newID.Recipient().String()}
	if info.Manifest == nil || !slices.Equal(info.Manifest.Recipients, wantFP) || !info.Manifest.Encrypted {
		t.Fatalf("manifest %+v; want recipients %v", info.Manifest, wantFP)
	}

	// Verify with either identity.
	for _, f := range []string{oldFile, newFile} {
		ids, err := LoadIdentities([]string{f})
		must(t, err)
		v, err := s.Verify(ctx, res.Filename, ids)
		must(t, err)
		if !v.Success || !v.Encrypted || !v.Compressed || v.KeysCount != res.KeysCount || v.SHA256 != res.SHA256 {
			t.Fatalf("verify %+v", v)
		}
	}
	list, _ = s.List(ctx)
	if !list.Backups[0].Verified {
		t.Fatal("verification not recorded")
	}

	// Restore with the wrong identity: refused before any write, with or
	// without the precheck.
	before := seedTarget(t, other)
	wrong, err := LoadIdentities([]string{strangerFile})
	must(t, err)
	o := newServiceCfg(t, encryptedCfg(other.URL(0), store))
	for _, noPre := range []bool{false, true} {
		_, err = o.Restore(ctx, res.Filename, RestoreOptions{Identities: wrong, Overwrite: true, NoPrecheck: noPre})
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrWrongKey) {
			t.Fatalf("restore with a wrong key (no precheck %v): %v", noPre, err)
		}
		if n := dbsize(t, other); n != before {
			t.Fatalf("wrong key: DBSIZE %d -> %d", before, n)
		}
	}
	// Without an identity: a clear error, nothing written.
	_, err = o.Restore(ctx, res.Filename, RestoreOptions{Overwrite: true})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrEncrypted) || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("restore without identity: %v", err)
	}
	if n := dbsize(t, other); n != before {
		t.Fatalf("no key: DBSIZE %d -> %d", before, n)
	}
	_, err = o.Verify(ctx, res.Filename, wrong)
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrWrongKey) {
		t.Fatalf("verify with a wrong key: %v", err)
	}

	// Restore with the new identity (and a stranger's, which is skipped):
	// byte-exact.
	ids, err := Keys{IdentityFiles: []string{strangerFile, newFile}}.Load()
	must(t, err)
	d := newServiceCfg(t, encryptedCfg(dst.URL(0), store))
	rr, err := d.Restore(ctx, res.Filename, RestoreOptions{Identities: ids})
	must(t, err)
	if !rr.Success || rr.RestoredCount != res.KeysCount || rr.ErrorCount != 0 {
		t.Fatalf("restore %+v", rr)
	}
	compare(t, src.Client(t, 0), dst.Client(t, 0), start)
}

func TestUnusableRecipientsStopTheBackup(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, src.Client(t, 0).Set(ctx, "k", "v", 0).Err())
	good, _ := newIdentity(t)
	pq, err := age.GenerateHybridIdentity()
	must(t, err)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	must(t, os.WriteFile(empty, []byte("# nobody\n"), 0o644))
	short := filepath.Join(dir, "short.txt")
	must(t, os.WriteFile(short, []byte("abc\n"), 0o600))
	bad := filepath.Join(dir, "bad.txt")
	must(t, os.WriteFile(bad, []byte(good.Recipient().String()+"\nage1notakey\n"), 0o644))

	for _, tc := range []struct {
		name string
		e    config.Encrypt
		want string
	}{
		{"garbage", config.Encrypt{Recipients: []string{"age1notakey"}}, "not an age public key"},
		{"empty string (unset variable)", config.Encrypt{Recipients: []string{""}}, "not an age public key"},
		{"one bad among good", config.Encrypt{Recipients: []string{good.Recipient().String(), "age1qqq"}}, "not an age public key"},
		{"ssh key", config.Encrypt{Recipients: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"}}, "not an age public key"},
		{"identity instead of recipient", config.Encrypt{Recipients: []string{good.String()}}, "not an age public key"},
		{"missing recipients file", config.Encrypt{RecipientsFile: filepath.Join(dir, "nope.txt")}, "recipients_file"},
		{"recipients file without recipients", config.Encrypt{RecipientsFile: empty}, "no recipients"},
		{"recipients file with a bad line", config.Encrypt{RecipientsFile: bad}, "line 2"},
		{"post-quantum mixed with classic", config.Encrypt{Recipients: []string{good.Recipient().String(), pq.Recipient().String()}}, "cannot be used together"},
		{"short passphrase", config.Encrypt{PassphraseFile: short}, "shorter than"},
		{"missing passphrase file", config.Encrypt{PassphraseFile: filepath.Join(dir, "nope")}, "passphrase_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "backups")
			cfg := encryptedCfg(src.URL(0), store)
			cfg.Backup.Encrypt = tc.e
			s, err := New(ctx, cfg, nil)
			if err == nil {
				s.Close()
				t.Fatal("New accepted unusable recipients")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "backup.encrypt") {
				t.Fatalf("error %q; want ErrInvalid mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), good.String()) {
				t.Fatalf("error leaks a secret key: %v", err)
			}
			if ents, _ := os.ReadDir(store); len(ents) != 0 {
				t.Fatalf("storage holds %d entries after a refused start", len(ents))
			}
		})
	}
}

func writePassphrase(t *testing.T, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passphrase")
	must(t, os.WriteFile(p, []byte(pass+"\n"), 0o600))
	return p
}

func TestPassphraseRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 500, TTLPercent: 20, Binary: true, Streams: 1, Seed: 22}))
	store := filepath.Join(t.TempDir(), "backups")
	passFile := writePassphrase(t, "correct horse battery staple")

	cfg := encryptedCfg(src.URL(0), store)
	cfg.Backup.Encrypt.PassphraseFile = passFile
	s := newServiceCfg(t, cfg)
	start := time.Now()
	res, err := s.Backup(ctx, BackupOptions{})
	must(t, err)
	if !res.Encrypted || !strings.HasSuffix(res.Filename, ".age") {
		t.Fatalf("backup %+v", res)
	}
	info, err := s.Stat(ctx, res.Filename)
	must(t, err)
	if info.Manifest == nil || !slices.Equal(info.Manifest.Recipients, []string{"scrypt"}) {
		t.Fatalf("manifest %+v", info.Manifest)
	}

	before := seedTarget(t, dst)
	d := newServiceCfg(t, encryptedCfg(dst.URL(0), store))
	wrong, err := LoadPassphrase(writePassphrase(t, "incorrect horse battery staple"))
	must(t, err)
	if _, err := d.Restore(ctx, res.Filename, RestoreOptions{Identities: []age.Identity{wrong}}); !errors.Is(err, ErrInvalid) || !errors.Is(err, codec.ErrWrongKey) {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	if n := dbsize(t, dst); n != before {
		t.Fatalf("wrong passphrase: DBSIZE %d -> %d", before, n)
	}
	must(t, dst.Client(t, 0).FlushDB(ctx).Err())

	// The passphrase from restore.passphrase_file, as the CLI and
	// verify_after load it.
	ids, err := ConfigKeys(config.Restore{PassphraseFile: passFile}).Load()
	must(t, err)
	rr, err := d.Restore(ctx, res.Filename, RestoreOptions{Identities: ids})
	must(t, err)
	if rr.RestoredCount != res.KeysCount {
		t.Fatalf("restore %+v", rr)
	}
	compare(t, src.Client(t, 0), dst.Client(t, 0), start)
}

// hostileScryptArchive returns an age file, encrypted to pass, whose header
// claims the scrypt work factor logN (a hostile header: 2^40 would need
// terabytes of memory).
func hostileScryptArchive(t *testing.T, pass string, logN string) []byte {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	must(t, err)
	r.SetWorkFactor(2)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	must(t, err)
	zw := gzip.NewWriter(w)
	_, err = zw.Write([]byte(`{"timestamp":"20231205_143022","data":{}}`))
	must(t, err)
	must(t, zw.Close())
	must(t, w.Close())
	re := regexp.MustCompile(`(?m)^(-> scrypt \S+) 2$`)
	if !re.Match(buf.Bytes()) {
		t.Fatalf("no scrypt stanza in %q", buf.Bytes()[:80])
	}
	return re.ReplaceAll(buf.Bytes(), []byte("${1} "+logN))
}

func TestHostileScryptWorkFactorRefused(t *testing.T) {
	ctx := context.Background()
	dst := redistest.Start(t)
	before := seedTarget(t, dst)
	const pass = "correct horse battery staple"
	id, err := PassphraseIdentity(pass)
	must(t, err)
	for i, logN := range []string{"40", "30", "21"} {
		store := filepath.Join(t.TempDir(), "backups")
		must(t, os.MkdirAll(store, 0o700))
		name := sinks.NewName(time.Date(2023, 12, 5, 14, 30, 22+i, 0, time.UTC), true, true)
		must(t, os.WriteFile(filepath.Join(store, name), hostileScryptArchive(t, pass, logN), 0o600))
		d := newServiceCfg(t, encryptedCfg(dst.URL(0), store))

		t0 := time.Now()
		_, err := d.Restore(ctx, name, RestoreOptions{Identities: []age.Identity{id}, Overwrite: true})
		if took := time.Since(t0); took > 3*time.Second {
			t.Errorf("work factor %s: refusal took %v", logN, took)
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "work factor") {
			t.Fatalf("work factor %s: restore error %v", logN, err)
		}
		if n := dbsize(t, dst); n != before {
			t.Fatalf("work factor %s: DBSIZE %d -> %d", logN, before, n)
		}
		t0 = time.Now()
		if _, err := d.Verify(ctx, name, []age.Identity{id}); !errors.Is(err, ErrInvalid) || time.Since(t0) > 3*time.Second {
			t.Fatalf("work factor %s: verify error %v after %v", logN, err, time.Since(t0))
		}
	}
	// The same crafting with the work factor left alone opens: the refusal
	// is about the work factor.
	rd, _, err := codec.NewDecoder(bytes.NewReader(hostileScryptArchive(t, pass, "2")), codec.DecodeOptions{Identities: []age.Identity{id}})
	must(t, err)
	_, err = io.ReadAll(rd)
	must(t, err)
}

func TestVerifyAfterEncrypted(t *testing.T) {
	ctx := context.Background()
	src := redistest.Start(t)
	must(t, datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 300, Seed: 23}))
	id, idFile := newIdentity(t)
	_, strangerFile := newIdentity(t)

	t.Run("checksum only without identity", func(t *testing.T) {
		cfg := encryptedCfg(src.URL(0), filepath.Join(t.TempDir(), "b"), id.Recipient().String())
		cfg.Backup.VerifyAfter = true
		s := newServiceCfg(t, cfg)
		res, err := s.Backup(ctx, BackupOptions{})
		must(t, err)
		if !res.Success || !res.ChecksumVerified || res.Verified {
			t.Fatalf("backup %+v: want checksum verified only", res)
		}
		list, _ := s.List(ctx)
		if list.Backups[0].Verified {
			t.Fatal("a checksum-only check recorded as a full verification")
		}
	})
	t.Run("full with restore.identities", func(t *testing.T) {
		cfg := encryptedCfg(src.URL(0), filepath.Join(t.TempDir(), "b"), id.Recipient().String())
		cfg.Backup.VerifyAfter = true
		cfg.Restore.Identities = []string{idFile}
		s := newServiceCfg(t, cfg)
		res, err := s.Backup(ctx, BackupOptions{})
		must(t, err)
		if !res.Success || !res.ChecksumVerified || !res.Verified {
			t.Fatalf("backup %+v: want fully verified", res)
		}
		list, _ := s.List(ctx)
		if !list.Backups[0].Verified {
			t.Fatal("verification not recorded")
		}
	})
	t.Run("configured identity that does not open the archive", func(t *testing.T) {
		cfg := encryptedCfg(src.URL(0), filepath.Join(t.TempDir(), "b"), id.Recipient().String())
		cfg.Backup.VerifyAfter = true
		cfg.Restore.Identities = []string{strangerFile}
		s := newServiceCfg(t, cfg)
		_, err := s.Backup(ctx, BackupOptions{})
		if !errors.Is(err, codec.ErrWrongKey) || !strings.Contains(err.Error(), "verify after backup") {
			t.Fatalf("backup: %v", err)
		}
	})
}
