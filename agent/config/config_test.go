package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestGoodAndBadFiles(t *testing.T) {
	bad := map[string]string{
		"unknown-key.bad.yml":                `unknown field "pasword"`,
		"duplicate-key.bad.yml":              `duplicate`,
		"wrong-type.bad.yml":                 `compress`,
		"bad-ttl.bad.yml":                    `restore.ttl: "forever"`,
		"bad-source.bad.yml":                 `backup.source: "rdb-file": want scan, replica or auto`,
		"bad-read-from.bad.yml":              `redis.read_from: "secondary": want primary or replica`,
		"archiving-segment.bad.yml":          `archiving.segment_seconds: -1 is not in 0..3600`,
		"archiving-include.bad.yml":          `backup.include and backup.exclude cannot be combined with archiving.enabled`,
		"bad-include.bad.yml":                `backup.include[1]: an empty pattern`,
		"unset-var.bad.yml":                  `REDBACK_TEST_SURELY_UNSET_VAR is not set`,
		"passphrase-and-recipients.bad.yml":  `cannot be combined`,
		"targets-duplicate-name.bad.yml":     `line 4: targets[1] (a): name "a" is taken by targets[0]`,
		"targets-bad-name.bad.yml":           `line 2: targets[0] (Sessions): name "Sessions": want 1 to 64 of a-z`,
		"targets-same-storage.bad.yml":       `line 6: targets[1] (b): same storage location as targets[0] (a)`,
		"targets-top-redis-url.bad.yml":      `line 2: redis.url: the top level's Redis is not used`,
		"targets-prefix-dotdot.bad.yml":      `storage_prefix: "a/../../etc": ".." segments are not allowed`,
		"targets-prefix-absolute.bad.yml":    `storage_prefix: "/etc/redback": want a relative path`,
		"targets-storage-and-prefix.bad.yml": `give storage or storage_prefix, not both`,
		"targets-unknown-key.bad.yml":        `[5:7] unknown field "keep_lst"`,
		"targets-no-url.bad.yml":             `targets[0] (a): redis.url: empty`,
		"targets-bad-override.bad.yml":       `targets[1] (b): backup.gzip_level: 12 is not in -2..9`,
		"drill-both.bad.yml":                 `drill: give redis_url or server_binary, not both`,
		"drill-same-server.bad.yml":          `drill.redis_url: it is redis.url`,
		"drill-negative.bad.yml":             `drill.max_keys: negative`,
		// Without the environment of TestSecretsFromTheEnvironmentStayOutOfErrors.
		"env-secret-type.bad.yml":        `line 4: environment variable REDBACK_TEST_PASSWORD is not set`,
		"env-secret-validate.bad.yml":    `line 3: environment variable REDBACK_TEST_PASSWORD is not set`,
		"env-secret-duration.bad.yml":    `line 3: environment variable REDBACK_TEST_TOTP is not set`,
		"env-secret-target.bad.yml":      `line 5: environment variable REDBACK_TEST_PASSWORD is not set`,
		"env-secret-unknown-key.bad.yml": `line 4: environment variable REDBACK_TEST_PASSWORD is not set`,
	}
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) < 23 {
		t.Fatalf("only %d test files", len(files))
	}
	for _, f := range files {
		base := filepath.Base(f)
		_, err := Load(f, env(nil))
		if strings.HasSuffix(base, ".good.yml") {
			if err != nil {
				t.Errorf("%s: %v", base, err)
			}
			continue
		}
		want, ok := bad[base]
		if !ok {
			t.Errorf("%s: no expected error listed", base)
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", base, err, want)
		}
	}
}

func TestTheShippedAgentYAMLLoads(t *testing.T) {
	c, err := Load("../../agent.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Redis.URL != d.Redis.URL || c.Storage != "backups" || !c.Backup.Compress || c.Retention.KeepLast != 7 || c.Schedule.IntervalHours != 24 {
		t.Fatalf("agent.yaml differs from the defaults: %+v", c)
	}
}

func TestEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.yml")
	if err := os.WriteFile(path, []byte("redis:\n  url: \"${MY_URL:-redis://x:1/0}\"\nstorage: \"${STORE}\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, env(map[string]string{"STORE": "/srv/b"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://x:1/0" || c.Storage != "/srv/b" {
		t.Fatalf("%+v", c)
	}
	// REDIS_URL and REDBACK_STORAGE override the file.
	c, err = Load(path, env(map[string]string{"STORE": "/srv/b", "REDIS_URL": "redis://y:2/3", "REDBACK_STORAGE": "s3://b/p"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://y:2/3" || c.Storage != "s3://b/p" {
		t.Fatalf("%+v", c)
	}
	// No file at all: defaults plus environment.
	c, err = Load("", env(map[string]string{"REDIS_URL": "redis://z:3/0"}))
	if err != nil || c.Redis.URL != "redis://z:3/0" || c.Storage != "backups" {
		t.Fatalf("%+v %v", c, err)
	}
	if s, err := Expand("a$$b ${X:-d}", env(nil)); err != nil || s != "a$b d" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestTargetsResolve(t *testing.T) {
	c, err := Load("testdata/targets.good.yml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || ts[0].Name != "sessions" || ts[1].Name != "cache_1" || ts[2].Name != "queue" {
		t.Fatalf("targets %+v", ts)
	}
	s, cache, q := ts[0].Config, ts[1].Config, ts[2].Config
	// storage_prefix is under the top-level storage; no prefix means the name.
	if s.Storage != "/srv/redback/sessions" || cache.Storage != "/srv/redback/cache_1" || q.Storage != "s3://backups/queue?region=eu-west-1" {
		t.Errorf("storage: %q %q %q", s.Storage, cache.Storage, q.Storage)
	}
	if s.Redis.URL != "redis://sessions:6379/0" || cache.Redis.URL != "redis://cache:6379/1" || len(cache.Redis.Databases) != 1 {
		t.Errorf("redis: %+v %+v", s.Redis, cache.Redis)
	}
	// Field-level merge: keep_last overridden, keep_daily inherited.
	if s.Retention.KeepLast != 14 || s.Retention.KeepDaily != 3 || cache.Retention.KeepLast != 7 {
		t.Errorf("retention: %+v %+v", s.Retention, cache.Retention)
	}
	if cache.Schedule.DailyAt != "04:30" || cache.Schedule.IntervalHours != 24 || !cache.Schedule.Enabled || s.Schedule.DailyAt != "03:00" {
		t.Errorf("schedule: %+v %+v", cache.Schedule, s.Schedule)
	}
	if len(s.TargetSpecs) != 0 || !s.Backup.Compress || s.API.Listen != "127.0.0.1:8080" {
		t.Errorf("resolved config: %+v", s)
	}
	// The top level's sections are not changed by the overrides.
	if c.Retention.KeepLast != 7 || c.Schedule.DailyAt != "03:00" {
		t.Errorf("top level changed: %+v %+v", c.Retention, c.Schedule)
	}
}

func TestTargetsMergeListsAndNesting(t *testing.T) {
	yml := "schedule:\n  cron: [\"0 1 * * *\"]\nbackup:\n  workers: 5\n  encrypt:\n    recipients: [age1top]\n" +
		"targets:\n  - name: a\n    redis: {url: \"redis://a:1/0\"}\n    schedule: {cron: [\"0 2 * * *\"]}\n    backup: {encrypt: {recipients_file: /r}}\n" +
		"  - name: b\n    redis: {url: \"redis://b:1/0\"}\n    storage: \"${B_STORE}\"\n"
	c, err := Parse([]byte(yml), env(map[string]string{"B_STORE": "/srv/b"}))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil {
		t.Fatal(err)
	}
	a, b := ts[0].Config, ts[1].Config
	if len(a.Schedule.Cron) != 1 || a.Schedule.Cron[0] != "0 2 * * *" {
		t.Errorf("a list is replaced, not appended to: %q", a.Schedule.Cron)
	}
	if a.Backup.Workers != 5 || a.Backup.Encrypt.RecipientsFile != "/r" || len(a.Backup.Encrypt.Recipients) != 1 {
		t.Errorf("nested sections merge field by field: %+v", a.Backup)
	}
	if b.Storage != "/srv/b" || b.Schedule.Cron[0] != "0 1 * * *" {
		t.Errorf("b: %q %q", b.Storage, b.Schedule.Cron)
	}
	if c.Schedule.Cron[0] != "0 1 * * *" {
		t.Errorf("the top level's list was changed: %q", c.Schedule.Cron)
	}
}

func TestNoTargetsIsOneImplicitTarget(t *testing.T) {
	c, err := Parse([]byte("redis: {url: \"redis://x:1/2\"}\nstorage: /srv/x\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil || len(ts) != 1 || ts[0].Name != "" || ts[0].Config.Redis.URL != "redis://x:1/2" || ts[0].Config.Storage != "/srv/x" {
		t.Fatalf("%+v %v", ts, err)
	}
}

func TestTargetsAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.yml")
	yml := "storage: /srv/top\ntargets:\n  - name: a\n    redis: {url: \"redis://a:1/0\"}\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	// REDIS_URL would be ignored: refused.
	if _, err := Load(path, env(map[string]string{"REDIS_URL": "redis://y:2/3"})); err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("REDIS_URL with targets: %v", err)
	}
	// REDBACK_STORAGE moves the base of storage_prefix.
	c, err := Load(path, env(map[string]string{"REDBACK_STORAGE": "s3://b/p?region=x"}))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets()
	if err != nil || ts[0].Config.Storage != "s3://b/p/a?region=x" {
		t.Fatalf("%+v %v", ts, err)
	}
}

func TestStoragePrefixes(t *testing.T) {
	for _, c := range []struct{ base, prefix, want string }{
		{"backups", "a/b", "backups/a/b"},
		{"/srv/x/", "a/", "/srv/x/a"},
		{"s3://bucket?region=r", "a", "s3://bucket/a?region=r"},
		{"gs://bucket/p/", "a", "gs://bucket/p/a"},
		{"file:///srv/x", "a", "file:///srv/x/a"},
	} {
		got, err := joinStorage(c.base, c.prefix)
		if err != nil || got != c.want {
			t.Errorf("joinStorage(%q, %q) = %q, %v; want %q", c.base, c.prefix, got, err, c.want)
		}
	}
	if _, err := joinStorage("mem://x", "a"); err == nil {
		t.Error("a prefix under mem:// was accepted")
	}
	for _, bad := range []string{"", "..", "a/..", "./a", "a//b", "/a", "a\\b", "a?b", "a b"} {
		if err := checkPrefix(bad); err == nil {
			t.Errorf("checkPrefix(%q) accepted it", bad)
		}
	}
	same := [][2]string{
		{"/srv/x", "file:///srv/x/"},
		{"s3://B/p/?region=a", "s3://b/p?region=b"},
	}
	for _, p := range same {
		if storageKey(p[0]) != storageKey(p[1]) {
			t.Errorf("%q and %q should be one location: %q %q", p[0], p[1], storageKey(p[0]), storageKey(p[1]))
		}
	}
	if storageKey("s3://b/p?endpoint=http://one") == storageKey("s3://b/p?endpoint=http://two") {
		t.Error("two endpoints are one location")
	}
}

// Secret-looking values for the environment: a Redis password with the
// characters that broke text expansion (quotes, a colon and blank, a
// hash), and a TOTP secret.
const (
	testPassword = `pa"ss: w#rd'"x`
	testTOTP     = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

func secretEnv() Getenv {
	return env(map[string]string{"REDBACK_TEST_PASSWORD": testPassword, "REDBACK_TEST_TOTP": testTOTP})
}

// TestSecretsFromTheEnvironmentStayOutOfErrors: whatever goes wrong in a
// file (a type, a check, a duration, a target, an unknown key), the error
// names the line and shows the file's ${VAR}, never the value the
// environment gave (nor its quoted form).
func TestSecretsFromTheEnvironmentStayOutOfErrors(t *testing.T) {
	for file, want := range map[string]string{
		"env-secret-type.bad.yml":        `[8:13] cannot unmarshal string into Go struct field`,
		"env-secret-validate.bad.yml":    `restore.ttl:`,
		"env-secret-duration.bad.yml":    `invalid duration "<from the environment>"`,
		"env-secret-target.bad.yml":      `[6:23] cannot unmarshal string`,
		"env-secret-unknown-key.bad.yml": `[5:3] unknown field "pasword"`,
	} {
		_, err := Load(filepath.Join("testdata", file), secretEnv())
		if err == nil {
			t.Errorf("%s: loaded", file)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, want) {
			t.Errorf("%s: error %q, want one containing %q", file, msg, want)
		}
		for _, secret := range []string{testPassword, testTOTP, "w#rd", `pa\"ss`, "PK3PXP"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: the error shows a value from the environment (%q):\n%s", file, secret, msg)
			}
		}
		if strings.Contains(file, "type") && !strings.Contains(msg, "${REDBACK_TEST_PASSWORD}") {
			t.Errorf("%s: the excerpt should show the file's own text:\n%s", file, msg)
		}
	}
}

// TestValuesWithQuotesExpand: a value with quotes, colons and hashes is
// taken as it is, in double-quoted, single-quoted and plain scalars and in
// flow mappings; a plain ${VAR} that reads as a number or a boolean is one.
func TestValuesWithQuotesExpand(t *testing.T) {
	yml := "redis:\n  url: \"redis://:${REDBACK_TEST_PASSWORD}@h:1/0\"\n" +
		"api:\n  totp_secret: '${REDBACK_TEST_PASSWORD}'\n  listen: ${LISTEN:-127.0.0.1:9}\n" +
		"  admins: [{name: ops, totp_secret: \"${REDBACK_TEST_TOTP}\"}]\n" +
		"notify:\n  email:\n    password: ${REDBACK_TEST_PASSWORD}\n    port: ${PORT}\n" +
		"backup:\n  compress: ${COMPRESS}\n  workers: ${WORKERS:-4}\n  keys_per_second: ${KPS:-1.5}\n" +
		"restore:\n  identities:\n    - ${HOME_DIR}/id.txt\n    - \"$$literal\"\n" +
		"# a comment with ${UNSET_IN_A_COMMENT} is not expanded\n"
	c, err := Parse([]byte(yml), env(map[string]string{
		"REDBACK_TEST_PASSWORD": testPassword, "REDBACK_TEST_TOTP": testTOTP,
		"PORT": "2525", "COMPRESS": "false", "HOME_DIR": "/home/x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://:"+testPassword+"@h:1/0" || c.API.TOTPSecret != testPassword || c.Notify.Email.Password != testPassword {
		t.Errorf("values with quotes: %q %q %q", c.Redis.URL, c.API.TOTPSecret, c.Notify.Email.Password)
	}
	if c.API.Listen != "127.0.0.1:9" || len(c.API.Admins) != 1 || c.API.Admins[0].TOTPSecret != testTOTP {
		t.Errorf("api: %+v", c.API)
	}
	if c.Notify.Email.Port != 2525 || c.Backup.Compress || c.Backup.Workers != 4 || c.Backup.KeysPerSecond != 1.5 {
		t.Errorf("typed values: port %d compress %v workers %d kps %v", c.Notify.Email.Port, c.Backup.Compress, c.Backup.Workers, c.Backup.KeysPerSecond)
	}
	if len(c.Restore.Identities) != 2 || c.Restore.Identities[0] != "/home/x/id.txt" || c.Restore.Identities[1] != "$literal" {
		t.Errorf("identities: %q", c.Restore.Identities)
	}
	// A variable in a key is not expanded (and the key is unknown).
	if _, err := Parse([]byte("redis:\n  ${KEY}: x\n"), env(map[string]string{"KEY": "url"})); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("a variable in a key: %v", err)
	}
}
