package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
	"github.com/redback-dev/redback/internal/s3test"
)

// redbackEnv runs the binary in dir with a clean redback environment plus
// env, and returns stdout, stderr and the exit code.
func redbackEnv(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	return runBinary(t, dir, append(s3test.Env(), env...), args...)
}

// TestDisasterRecoveryCLI is the new user's story: back up, encrypted, into
// an S3-compatible server (versitygw) with an agent.yaml; lose the host and
// its config; restore on a fresh host from an empty folder with nothing but
// REDIS_URL, --storage, the credentials and the identity file.
func TestDisasterRecoveryCLI(t *testing.T) {
	ctx := context.Background()
	gw := s3test.Start(t, "offsite")
	url := gw.SinkURL("offsite", "redis")
	src, dst := redistest.Start(t), redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 3000, TTLPercent: 20, Binary: true, BigElements: 3000, BigString: 1 << 20, Streams: 2, Seed: 41}); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := age.GenerateX25519Identity()
	keys := t.TempDir() // the operator's offline copy of the identity
	idFile := filepath.Join(keys, "redback-dr.key")
	wrongFile := filepath.Join(keys, "someone-else.key")
	for p, k := range map[string]*age.X25519Identity{idFile: id, wrongFile: stranger} {
		if err := os.WriteFile(p, []byte(k.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The production host.
	prod := t.TempDir()
	cfg := "redis:\n  url: \"" + src.URL(0) + "\"\n" +
		"storage: \"" + url + "\"\n" +
		"backup:\n  verify_after: true\n  encrypt:\n    recipients: [\"" + id.Recipient().String() + "\"]\n"
	if err := os.WriteFile(filepath.Join(prod, "agent.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errOut, code := redbackEnv(t, prod, nil, "backup", "--json")
	if code != 0 {
		t.Fatalf("backup exit %d: %s %s", code, out, errOut)
	}
	var b struct {
		Success, Encrypted bool
		Filename           string
		KeysCount          int64 `json:"keys_count"`
		ChecksumVerified   bool  `json:"checksum_verified"`
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil || !b.Success || !b.Encrypted || !b.ChecksumVerified || !strings.HasSuffix(b.Filename, ".json.gz.age") {
		t.Fatalf("backup: %v %s", err, out)
	}
	if strings.Contains(out+errOut, s3test.SecretKey) {
		t.Fatal("the secret key was printed")
	}
	// The host is lost, its agent.yaml with it.
	if err := os.RemoveAll(prod); err != nil {
		t.Fatal(err)
	}

	// The fresh host: an empty folder, no agent.yaml.
	fresh := t.TempDir()
	env := []string{"REDIS_URL=" + dst.URL(0)}
	out, errOut, code = redbackEnv(t, fresh, env, "--storage", url, "list", "--json")
	var l struct {
		Backups []struct {
			Filename  string
			Encrypted bool
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 1 || l.Backups[0].Filename != b.Filename || !l.Backups[0].Encrypted {
		t.Fatalf("list (%d): %s %s", code, out, errOut)
	}

	seed := dst.Client(t, 0)
	if err := seed.Set(ctx, "keep:me", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Without an identity, and with the wrong one: a clear error, exit 2,
	// nothing written.
	_, errOut, code = redbackEnv(t, fresh, env, "--storage", url, "restore", b.Filename)
	if code != 2 || !strings.Contains(errOut, "encrypted") || !strings.Contains(errOut, "--identity") {
		t.Fatalf("restore without identity: exit %d: %s", code, errOut)
	}
	_, errOut, code = redbackEnv(t, fresh, env, "--storage", url, "restore", b.Filename, "--identity", wrongFile)
	if code != 2 || !strings.Contains(errOut, "identity") {
		t.Fatalf("restore with a wrong identity: exit %d: %s", code, errOut)
	}
	if n, _ := seed.DBSize(ctx).Result(); n != 1 {
		t.Fatalf("a refused restore wrote: DBSIZE %d", n)
	}
	if err := seed.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	out, errOut, code = redbackEnv(t, fresh, env, "--storage", url, "verify", b.Filename, "--identity", idFile)
	if code != 0 || !strings.Contains(out, "matches the recorded checksum") {
		t.Fatalf("verify (%d): %s %s", code, out, errOut)
	}
	out, errOut, code = redbackEnv(t, fresh, env, "--storage", url, "restore", b.Filename, "--identity", idFile, "--json")
	if code != 0 {
		t.Fatalf("restore exit %d: %s %s", code, out, errOut)
	}
	var r struct {
		Success       bool
		RestoredCount int64 `json:"restored_count"`
	}
	if json.Unmarshal([]byte(out), &r) != nil || !r.Success || r.RestoredCount != b.KeysCount {
		t.Fatalf("restore: %s", out)
	}
	diffs, err := redistest.Compare(ctx, src.Client(t, 0), dst.Client(t, 0), time.Since(start)+time.Second)
	if err != nil || len(diffs) > 0 {
		t.Fatalf("restored data differs: %v %v", err, diffs)
	}

	// The identity from the environment, and a decrypted download that
	// plain tools read.
	out, errOut, code = redbackEnv(t, fresh, append(env, "REDBACK_IDENTITY_FILE="+idFile), "--storage", url, "download", b.Filename, "--decrypt", "-o", "-")
	if code != 0 {
		t.Fatalf("download exit %d: %s", code, errOut)
	}
	zr, err := gzip.NewReader(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Data map[string]json.RawMessage }
	plain, err := io.ReadAll(zr)
	if err != nil || json.Unmarshal(plain, &doc) != nil || int64(len(doc.Data)) != b.KeysCount {
		t.Fatalf("decrypted download: %v, %d keys", err, len(doc.Data))
	}
	if ents, _ := os.ReadDir(fresh); len(ents) != 0 {
		t.Fatalf("the fresh host's folder holds %d entries", len(ents))
	}
}

// TestPassphraseCLI: a passphrase-encrypted backup restores with
// --passphrase-file or REDBACK_PASSPHRASE_FILE, and not with a wrong one.
func TestPassphraseCLI(t *testing.T) {
	ctx := context.Background()
	src, dst := redistest.Start(t), redistest.Start(t)
	if err := datagen.Fill(ctx, src.Client(t, 0), datagen.Spec{Keys: 300, Binary: true, Seed: 42}); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	pass := filepath.Join(keys, "pass")
	wrong := filepath.Join(keys, "wrong")
	os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600)
	os.WriteFile(wrong, []byte("incorrect horse battery staple\n"), 0o600)
	dir := t.TempDir()
	cfg := "backup:\n  encrypt:\n    passphrase_file: \"" + pass + "\"\n"
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(cfg), 0o600)
	out, errOut, code := redbackEnv(t, dir, []string{"REDIS_URL=" + src.URL(0)}, "backup", "--json")
	var b struct{ Filename string }
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || !strings.HasSuffix(b.Filename, ".age") {
		t.Fatalf("backup (%d): %s %s", code, out, errOut)
	}
	os.Remove(filepath.Join(dir, "agent.yaml"))
	env := []string{"REDIS_URL=" + dst.URL(0)}
	if _, errOut, code := redbackEnv(t, dir, env, "restore", b.Filename, "--passphrase-file", wrong); code != 2 {
		t.Fatalf("wrong passphrase: exit %d: %s", code, errOut)
	}
	if n, _ := dst.Client(t, 0).DBSize(ctx).Result(); n != 0 {
		t.Fatalf("a refused restore wrote %d keys", n)
	}
	if _, errOut, code := redbackEnv(t, dir, append(env, "REDBACK_PASSPHRASE_FILE="+pass), "restore", b.Filename); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	if _, errOut, code := redbackEnv(t, dir, env, "verify", b.Filename, "--passphrase-file", pass); code != 0 {
		t.Fatalf("verify: exit %d: %s", code, errOut)
	}
	if diffs, err := redistest.Compare(ctx, src.Client(t, 0), dst.Client(t, 0), time.Minute); err != nil || len(diffs) > 0 {
		t.Fatalf("restored data differs: %v %v", err, diffs)
	}
}
