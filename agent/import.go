package agent

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/codec"
)

// ImportOptions tune an import.
type ImportOptions struct {
	// Compress overrides backup.compress when set.
	Compress *bool
	Progress func(engine.Progress)
}

// Import turns an RDB file (dump.rdb, `redis-cli --rdb` output, a managed
// service's export) read from src into a new archive, listed and
// restorable like any other: named after the time of the import, its
// header recording the RDB's own creation time (source.snapshot, method
// "rdb") and the server version the RDB names. Keys whose expiry had
// passed when the RDB was written are left out, as a server loading it
// would. The RDB streams through (nothing is held whole; a stream's
// entries and strings over 1 MiB pass through a temporary file); a corrupt
// or truncated RDB, or one with a bad checksum, stores nothing and fails
// with ErrInvalid.
func (s *Service) Import(ctx context.Context, src io.Reader, o ImportOptions) (res BackupResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	unlock, err := s.lock()
	if err != nil {
		return BackupResult{}, err
	}
	defer unlock()
	defer s.observeBackup(OpImport, &res, s.now(), &err)
	job := archiveJob{compress: s.cfg.Backup.Compress, method: "rdb", manifest: map[string]string{"snapshot": "rdb"}}
	if o.Compress != nil {
		job.compress = *o.Compress
	}
	job.fill = func(ctx context.Context, begin beginFunc) (engine.DumpStats, error) {
		rs, err := engine.FromRDB(ctx, src, func(info engine.RDBInfo) (engine.KeyWriter, error) {
			source := codec.Source{RDBVersion: info.Version, Server: info.Dialect, RedisVersion: info.Aux["redis-ver"],
				Snapshot: &codec.Snapshot{Method: "rdb", RDBCreatedAt: info.Created}}
			source.ServerVersion = source.RedisVersion
			if v := info.Aux["valkey-ver"]; v != "" {
				source.Server, source.ServerVersion = "valkey", v
			}
			manifest := map[string]string{"server": source.Server, "server_version": source.ServerVersion, "redis_version": source.RedisVersion}
			if n, err := strconv.ParseInt(info.Aux["used-mem"], 10, 64); err == nil && n > 0 {
				// What the source used in all; a restore's memory check
				// wants the dataset's, which an RDB does not record.
				manifest["used_memory"] = strconv.FormatInt(n, 10)
			}
			return begin(&source, manifest)
		}, engine.RDBOptions{Progress: o.Progress})
		if err != nil {
			if ctx.Err() != nil {
				return engine.DumpStats{}, err
			}
			return engine.DumpStats{}, fmt.Errorf("%w: import: %w", ErrInvalid, err)
		}
		return engine.DumpStats{Vanished: rs.Expired, RawKeys: rs.RawKeys, FieldTTLKeys: rs.FieldTTLKeys}, nil
	}
	return s.writeArchive(ctx, job)
}
