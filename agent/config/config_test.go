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
	}
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) < 18 {
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
