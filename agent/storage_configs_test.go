package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/internal/s3test"
	"github.com/redback-dev/redback/sinks"
)

// TestStorageExampleConfigs loads every configs/storage/*.yaml strictly and
// opens its storage URL (which contacts nobody), so that the examples in
// the docs stay valid.
func TestStorageExampleConfigs(t *testing.T) {
	s3test.SetEnv(t)
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9") // GCS without credentials; nothing is contacted
	files, err := filepath.Glob("../configs/storage/*.yaml")
	must(t, err)
	if len(files) < 5 {
		t.Fatalf("found %d example configs: %v", len(files), files)
	}
	env := func(k string) (string, bool) {
		if k == "REDIS_URL" {
			return "", false
		}
		return os.LookupEnv(k)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f, env)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if !strings.Contains(cfg.Storage, "://") || cfg.Backup.Encrypt.RecipientsFile == "" || !cfg.Backup.VerifyAfter {
				t.Fatalf("storage %q, encrypt %+v, verify_after %v", cfg.Storage, cfg.Backup.Encrypt, cfg.Backup.VerifyAfter)
			}
			s, err := sinks.Open(context.Background(), cfg.Storage)
			if err != nil {
				t.Fatalf("open %s: %v", cfg.Storage, err)
			}
			must(t, s.Close())
		})
	}
}
