package agent

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/internal/datagen"
	"github.com/redback-dev/redback/internal/redistest"
)

func TestClusterBackupRefused(t *testing.T) {
	ctx := context.Background()
	cl := redistest.StartCluster(t, "", 3, 0)
	must(t, datagen.Fill(ctx, cl.Client(t), datagen.Spec{Keys: 300, Seed: 3}))
	s := newService(t, cl.URL(), filepath.Join(t.TempDir(), "b"))
	res, err := s.Backup(ctx, BackupOptions{})
	if !errors.Is(err, engine.ErrCluster) || res.Success {
		t.Fatalf("backup of a cluster node: %+v, %v", res, err)
	}
}
