package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

// aclUser creates user name with password pw and rules on the server.
func aclUser(t *testing.T, s *redistest.Server, name, pw, rules string) {
	t.Helper()
	args := []any{"ACL", "SETUSER", name, "reset", "on", ">" + pw, "~*", "resetchannels"}
	for _, r := range strings.Fields(rules) {
		args = append(args, r)
	}
	must(t, s.Client(t, 0).Do(context.Background(), args...).Err())
}

// aclData fills c with keys that take every path of a backup and a
// restore: small keys of every type, collections and a string read in
// windows (over 1 MiB), streams with groups, a second database, and on
// servers that keep them hash field expiry times.
func aclData(t *testing.T, src *redistest.Server, fieldTTLs bool) {
	t.Helper()
	ctx := context.Background()
	c := src.Client(t, 0)
	must(t, datagen.Fill(ctx, c, datagen.Spec{Keys: 1000, TTLPercent: 20, Binary: true, BigString: 2 << 20, Streams: 2, Seed: 31}))
	must(t, datagen.Fill(ctx, src.Client(t, 3), datagen.Spec{Keys: 100, Seed: 32}))
	pad := strings.Repeat("v", 400)
	pipe := c.Pipeline()
	for i := 0; i < 3000; i++ {
		e := fmt.Sprintf("%05d%s", i, pad)
		pipe.HSet(ctx, "acl:hash", e, e)
		pipe.RPush(ctx, "acl:list", e)
		pipe.SAdd(ctx, "acl:set", e)
		pipe.ZAdd(ctx, "acl:zset", redis.Z{Score: float64(i), Member: e})
	}
	pipe.PExpire(ctx, "acl:list", time.Hour)
	_, err := pipe.Exec(ctx)
	must(t, err)
	if fieldTTLs {
		must(t, c.HSet(ctx, "acl:fields", "a", "1", "b", "2").Err())
		must(t, c.Do(ctx, "HPEXPIRE", "acl:fields", 3600000, "FIELDS", 1, "a").Err())
	}
}

// TestMinimalACL backs up and restores, over TLS with client certificates
// and a private CA, as users that have exactly the documented rules (the
// backup's password from redis.password_file); a user that lacks one rule
// gets an error naming the command it lacks.
func TestMinimalACL(t *testing.T) {
	for _, name := range []string{"redis-7.0", "valkey-9"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			files := redistest.MakeTLS(t)
			src, dst := redistest.StartTLS(t, name, files), redistest.StartTLS(t, name, files)
			backupRules, restoreRules := engine.BackupACL, engine.RestoreACL
			fieldTTLs := name == "valkey-9"
			if fieldTTLs {
				backupRules += " " + engine.FieldTTLBackupACL
				restoreRules += " " + engine.FieldTTLRestoreACL
			}
			aclData(t, src, fieldTTLs)
			pwFile := filepath.Join(t.TempDir(), "pw")
			must(t, os.WriteFile(pwFile, []byte("b-secret\n"), 0o600))
			store := filepath.Join(t.TempDir(), "b")
			tlsCfg := config.TLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
			backup := func() (BackupResult, error) {
				return newClusterService(t, strings.Replace(src.TLSURL(0), "rediss://", "rediss://backup@", 1), store, func(c *config.Config) {
					c.Redis.PasswordFile = pwFile
					c.Redis.TLS = tlsCfg
				}).Backup(ctx, BackupOptions{})
			}
			restore := func(name string) (RestoreResult, error) {
				return newClusterService(t, strings.Replace(dst.TLSURL(0), "rediss://", "rediss://restore:r-secret@", 1), store, func(c *config.Config) {
					c.Redis.TLS = tlsCfg
				}).Restore(ctx, name, RestoreOptions{})
			}
			aclUser(t, src, "backup", "b-secret", backupRules)
			aclUser(t, dst, "restore", "r-secret", restoreRules)
			start := time.Now()
			res, err := backup()
			must(t, err)
			rr, err := restore(res.Filename)
			must(t, err)
			if rr.RestoredCount != res.KeysCount || rr.ErrorCount != 0 {
				t.Fatalf("restore %+v", rr)
			}
			compare(t, src.Client(t, 0), dst.Client(t, 0), start)
			compare(t, src.Client(t, 3), dst.Client(t, 3), start)

			// Each rule is needed: without it the backup or the restore
			// fails, naming the command.
			for _, rule := range strings.Fields(backupRules)[1:] {
				aclUser(t, src, "backup", "b-secret", without(backupRules, rule))
				must(t, src.Client(t, 0).ScriptFlush(ctx).Err())
				_, err := backup()
				want := "no permissions to run the '" + commandOf(rule)
				if rule == "+dump" || rule == "+memory|usage" {
					// Refused, they make the backup read by commands,
					// whose own rules the user then lacks.
					want = "no permissions to run the '"
				}
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("backup without %s: %v", rule, err)
				}
			}
			for _, rule := range strings.Fields(restoreRules)[1:] {
				if rule == "+zrem" {
					continue // only for a zset score of -0 on Redis 7.0 targets
				}
				aclUser(t, dst, "restore", "r-secret", without(restoreRules, rule))
				must(t, dst.Client(t, 0).FlushAll(ctx).Err())
				must(t, dst.Client(t, 0).ScriptFlush(ctx).Err())
				rr, err := restore(res.Filename)
				msg := fmt.Sprint(err) + strings.Join(rr.Errors, "\n")
				if err == nil || !strings.Contains(msg, "no permissions to run the '"+commandOf(rule)) {
					t.Errorf("restore without %s: %v", rule, err)
				}
			}
		})
	}
}

func without(rules, rule string) string {
	var out []string
	for _, r := range strings.Fields(rules) {
		if r != rule {
			out = append(out, r)
		}
	}
	return strings.Join(out, " ")
}

// commandOf is the command a rule allows, as NOPERM names it.
func commandOf(rule string) string { return strings.TrimPrefix(rule, "+") }

// TestTLSRefusals: a server whose certificate no configured CA signed, or
// that wants a client certificate that is not given, is an error, and
// redis.tls without rediss:// is refused at start.
func TestTLSRefusals(t *testing.T) {
	ctx := context.Background()
	files, other := redistest.MakeTLS(t), redistest.MakeTLS(t)
	srv := redistest.StartTLS(t, "", files)
	store := filepath.Join(t.TempDir(), "b")
	for _, c := range []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"another CA", config.TLS{CAFile: other.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "certificate"},
		{"no client certificate", config.TLS{CAFile: files.CA}, ""},
		{"wrong server name", config.TLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey, ServerName: "redis.example"}, "redis.example"},
	} {
		s := newClusterService(t, srv.TLSURL(0), store, func(cfg *config.Config) { cfg.Redis.TLS = c.tls })
		_, err := s.Backup(ctx, BackupOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// The client certificate of another CA is refused by the server.
	s := newClusterService(t, srv.TLSURL(0), store, func(cfg *config.Config) {
		cfg.Redis.TLS = config.TLS{CAFile: files.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey}
	})
	if _, err := s.Backup(ctx, BackupOptions{}); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	cfg := config.Default()
	cfg.Redis.URL, cfg.Storage = srv.URL(0), store
	cfg.Redis.TLS = config.TLS{CAFile: files.CA}
	if _, err := New(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "rediss://") {
		t.Errorf("redis.tls with redis://: %v", err)
	}
}
