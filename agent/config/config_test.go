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
		"unknown-key.bad.yml":               `unknown field "pasword"`,
		"duplicate-key.bad.yml":             `duplicate`,
		"wrong-type.bad.yml":                `compress`,
		"bad-ttl.bad.yml":                   `restore.ttl: "forever"`,
		"unset-var.bad.yml":                 `REDBACK_TEST_SURELY_UNSET_VAR is not set`,
		"passphrase-and-recipients.bad.yml": `cannot be combined`,
	}
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) < 7 {
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
