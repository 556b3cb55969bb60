// Backups of a Redis Cluster: every shard into one archive that records the
// topology it was read from.

package agent

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redback-dev/redback/agent/engine"
)

// backupCluster is Backup for a cluster node's URL: it plans the dump of
// every shard (refusing a cluster with unserved or moving slots) and
// writes one archive. A snapshot (backup.source replica) is refused: it
// would be one node's; auto falls back to SCAN.
func (s *Service) backupCluster(ctx context.Context, job archiveJob, source string, o engine.DumpOptions) (BackupResult, error) {
	if source == SourceReplica {
		return BackupResult{}, fmt.Errorf("%w: backup.source replica: a snapshot through the replication protocol is one node's; a cluster is backed up by scan", ErrInvalid)
	}
	cd := engine.NewClusterDumper(s.redis, o, engine.ClusterOptions{ReadFrom: s.cfg.Redis.ReadFrom})
	plan, err := cd.Plan(ctx)
	if err != nil {
		return BackupResult{}, err
	}
	if len(s.cfg.Redis.Databases) == 0 {
		job.source.Databases = plan.Databases()
	}
	job.source.Cluster = plan.Source()
	job.manifest["used_memory_dataset"] = strconv.FormatInt(plan.DatasetMemory(), 10)
	job.manifest["shards"] = strconv.Itoa(len(plan.Shards))
	job.fill = dumpFill(func(ctx context.Context, w engine.KeyWriter) (engine.DumpStats, error) {
		return cd.Dump(ctx, plan, w)
	})
	return s.writeArchive(ctx, job)
}
