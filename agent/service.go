// Package agent ties redback together: it backs a Redis server up into a
// sink, lists, verifies, restores, deletes and prunes archives. The command
// line and the HTTP API call the same methods and print the same results.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/archiving"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/engine/replica"
	"github.com/redback-dev/redback/agent/lease"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/internal/glob"
	"github.com/redback-dev/redback/sinks"
)

// Service performs backups and restores of one Redis server into one sink.
// Its methods are safe for concurrent use; one backup or restore runs at a
// time (another gets ErrBusy).
type Service struct {
	cfg        config.Config
	redis      *redis.Options
	sink       *sinks.Sink
	log        *slog.Logger
	recipients []age.Recipient
	now        func() time.Time

	run     sync.Mutex // held by the running backup or restore
	drillMu sync.Mutex // held by the running drill
	// manifestMu serializes the read-modify-write of manifests (pins,
	// notes, drill records).
	manifestMu sync.Mutex
	readersMu  sync.Mutex
	readers    map[string]int // archive name -> open readers (prune spares them)

	archMu   sync.Mutex
	archiver *archiving.Archiver // set by RunArchiving

	leaseMu     sync.Mutex
	lease       *lease.Lease  // made by Lease
	leaseClient *redis.Client // the lease's, closed by Close

	observers []func(Op) // see Observe
}

// New opens the sink (creating a missing folder) and checks the
// configuration. The caller must Close the Service.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Service, error) {
	return openService(ctx, cfg, log, sinks.Open)
}

// NewExisting is New for commands that take no backup (list, verify,
// restore, delete, ...): it creates no storage, and a storage folder that
// does not exist is ErrNotFound, naming storage as configured.
func NewExisting(ctx context.Context, cfg config.Config, log *slog.Logger) (*Service, error) {
	svc, err := openService(ctx, cfg, log, sinks.OpenExisting)
	if errors.Is(err, sinks.ErrNoStorage) {
		return nil, fmt.Errorf("%w: storage folder %q does not exist (nothing was created; check --storage, REDBACK_STORAGE or storage:)", ErrNotFound, cfg.Storage)
	}
	return svc, err
}

func openService(ctx context.Context, cfg config.Config, log *slog.Logger, open func(context.Context, string) (*sinks.Sink, error)) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine.SetClientLogger(log)
	opt, err := connection(cfg.Redis).Options()
	if err != nil {
		return nil, fmt.Errorf("%w: redis.url: %v", ErrInvalid, err)
	}
	if cfg.Redis.TLS.InsecureSkipVerify {
		log.Warn("redis.tls.insecure_skip_verify is set: the Redis server's certificate is NOT checked, and anyone on the network path can pose as it (for tests only)", "redis", engine.RedactURL(cfg.Redis.URL))
	}
	rcps, err := loadRecipients(cfg.Backup.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: backup.encrypt: %v", ErrInvalid, err)
	}
	sink, err := open(ctx, cfg.Storage)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &Service{cfg: cfg, redis: opt, sink: sink, log: log, recipients: rcps, now: time.Now}, nil
}

// connection is redis: as the engine reaches it.
func connection(r config.Redis) engine.Connection {
	return engine.Connection{URL: r.URL, PasswordFile: r.PasswordFile, TLS: engine.TLSFiles{
		CAFile: r.TLS.CAFile, CertFile: r.TLS.CertFile, KeyFile: r.TLS.KeyFile,
		ServerName: r.TLS.ServerName, InsecureSkipVerify: r.TLS.InsecureSkipVerify,
	}}
}

// Close releases the sink and the lease's client.
func (s *Service) Close() error {
	s.leaseMu.Lock()
	if s.leaseClient != nil {
		_ = s.leaseClient.Close()
		s.leaseClient, s.lease = nil, nil
	}
	s.leaseMu.Unlock()
	return s.sink.Close()
}

// Config returns the configuration the Service runs with.
func (s *Service) Config() config.Config { return s.cfg }

func (s *Service) lock() (func(), error) {
	if !s.run.TryLock() {
		return nil, fmt.Errorf("%w: a backup or restore is already running", ErrBusy)
	}
	return s.run.Unlock, nil
}

// filepath is the seed's "filepath": the folder (or URL) and the name.
func (s *Service) filepath(name string) string {
	loc := s.cfg.Storage
	if strings.Contains(loc, "://") {
		return strings.TrimSuffix(loc, "/") + "/" + name
	}
	return path.Join(loc, name)
}

// translate maps errors of the packages below to the agent's kinds.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sinks.ErrInvalidName), errors.Is(err, codec.ErrCorrupt),
		errors.Is(err, codec.ErrWrongKey), errors.Is(err, codec.ErrEncrypted),
		errors.Is(err, codec.ErrNewerFormat):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, sinks.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, sinks.ErrExists):
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

// BackupOptions tune one backup.
type BackupOptions struct {
	// Compress overrides backup.compress when set.
	Compress *bool
	// Progress is called as the dump goes.
	Progress func(engine.Progress)
	// Source overrides backup.source when set: SourceScan, SourceReplica
	// or SourceAuto.
	Source string
}

// Backup dumps the server into a new archive: by SCAN, or as a
// point-in-time snapshot through the replication protocol (o.Source,
// backup.source). The archive is listed only once complete; on any error
// nothing is left behind.
func (s *Service) Backup(ctx context.Context, o BackupOptions) (res BackupResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	unlock, err := s.lock()
	if err != nil {
		return BackupResult{}, err
	}
	defer unlock()
	defer s.observeBackup(OpBackup, &res, s.now(), &err)
	source := s.cfg.Backup.Source
	if o.Source != "" {
		source = o.Source
	}
	if source == "" {
		source = SourceScan
	}
	if source != SourceScan && source != SourceReplica && source != SourceAuto {
		return res, fmt.Errorf("%w: source %q: want scan, replica or auto", ErrInvalid, source)
	}
	facts, err := engine.Inspect(ctx, s.redis)
	if err != nil {
		return res, err
	}
	job, sel := s.newJob(facts)
	if o.Compress != nil {
		job.compress = *o.Compress
	}
	if facts.Mode == engine.ModeCluster {
		return s.backupCluster(ctx, job, source, s.dumpOptions(o, sel))
	}
	var snap *replica.Snapshot
	if source != SourceScan {
		snap, err = replica.Fetch(ctx, s.replicaOptions(facts))
		switch {
		case err == nil:
			defer snap.Close()
		case source == SourceAuto && errors.Is(err, replica.ErrRefused):
			s.log.Warn("the server refuses a replica snapshot: backing up by SCAN", "err", err)
		default:
			return res, fmt.Errorf("snapshot: %w", err)
		}
	}
	if snap != nil {
		s.snapshotJob(&job, snap, sel, o.Progress)
	} else {
		dumper := engine.NewDumper(s.redis, s.dumpOptions(o, sel))
		job.fill = dumpFill(func(ctx context.Context, w engine.KeyWriter) (engine.DumpStats, error) {
			return dumper.Dump(ctx, facts, w)
		})
	}
	return s.writeArchive(ctx, job)
}

// newJob describes a backup of the server facts describes, with the
// configured selection (returned: nil for every key).
func (s *Service) newJob(facts engine.ServerFacts) (archiveJob, *glob.Set) {
	dbs := s.cfg.Redis.Databases
	if len(dbs) == 0 {
		dbs = facts.Databases()
	}
	job := archiveJob{
		compress: s.cfg.Backup.Compress,
		source: codec.Source{
			RedisVersion: facts.RedisVersion, Role: facts.Role, Mode: facts.Mode, Databases: dbs,
			Server: facts.Server.Kind, ServerVersion: facts.Server.Version, RDBVersion: facts.Server.RDBVersion(),
		},
		manifest: map[string]string{
			"redis_version": facts.RedisVersion, "role": facts.Role, "mode": facts.Mode,
			"server": facts.Server.Kind, "server_version": facts.Server.Version,
			"used_memory_dataset": strconv.FormatInt(facts.DatasetMemory, 10),
		},
		method: SourceScan,
	}
	sel := s.backupSelection()
	if sel != nil {
		job.filter = &codec.Filter{}
		for _, p := range sel.Include {
			job.filter.Include = append(job.filter.Include, p.Raw())
		}
		for _, p := range sel.Exclude {
			job.filter.Exclude = append(job.filter.Exclude, p.Raw())
		}
		b, _ := json.Marshal(filterOf(codec.Header{Filter: job.filter}))
		job.manifest["filter"] = string(b)
	}
	return job, sel
}

// snapshotJob makes job read its keys from the RDB of snap, and record
// where the snapshot stands in the replication stream (a base that
// segments of a continuous archive can extend).
func (s *Service) snapshotJob(job *archiveJob, snap *replica.Snapshot, sel *glob.Set, progress func(engine.Progress)) {
	job.method = SourceReplica
	job.source.Snapshot = &codec.Snapshot{Method: SourceReplica, ReplID: snap.ReplID, Offset: snap.Offset}
	job.manifest["snapshot"] = SourceReplica
	job.manifest[archiving.ManifestReplID] = snap.ReplID
	job.manifest[archiving.ManifestOffset] = strconv.FormatInt(snap.Offset, 10)
	job.fill = func(ctx context.Context, begin beginFunc) (engine.DumpStats, error) {
		w, err := begin(nil, nil)
		if err != nil {
			return engine.DumpStats{}, err
		}
		rs, err := engine.FromRDB(ctx, snap, func(engine.RDBInfo) (engine.KeyWriter, error) { return w, nil },
			engine.RDBOptions{SkipKeys: s.skipKeys(), Select: selectFuncOf(sel), Databases: s.cfg.Redis.Databases, Progress: progress})
		if err != nil {
			return engine.DumpStats{}, fmt.Errorf("snapshot: %w", err)
		}
		return engine.DumpStats{Vanished: rs.Expired, RawKeys: rs.RawKeys, FieldTTLKeys: rs.FieldTTLKeys}, nil
	}
}

// dumpFill is an archiveJob.fill that writes what dump reads.
func dumpFill(dump func(ctx context.Context, w engine.KeyWriter) (engine.DumpStats, error)) func(context.Context, beginFunc) (engine.DumpStats, error) {
	return func(ctx context.Context, begin beginFunc) (engine.DumpStats, error) {
		w, err := begin(nil, nil)
		if err != nil {
			return engine.DumpStats{}, err
		}
		st, err := dump(ctx, w)
		if err != nil {
			return st, fmt.Errorf("dump: %w", err)
		}
		return st, nil
	}
}

// dumpOptions are a SCAN backup's, from the configuration.
func (s *Service) dumpOptions(o BackupOptions, sel *glob.Set) engine.DumpOptions {
	return engine.DumpOptions{
		Databases:      s.cfg.Redis.Databases,
		ScanCount:      s.cfg.Backup.ScanCount,
		Workers:        s.cfg.Backup.Workers,
		KeysPerSecond:  s.cfg.Backup.KeysPerSecond,
		BytesPerSecond: s.cfg.Backup.BytesPerSecond,
		Progress:       o.Progress,
		SkipKeys:       s.skipKeys(),
		Select:         selectFuncOf(sel),
	}
}

// The values of backup.source and BackupOptions.Source.
const (
	SourceScan    = "scan"
	SourceReplica = "replica"
	SourceAuto    = "auto"
)

// replicaOptions reach the Service's server as a replica.
func (s *Service) replicaOptions(facts engine.ServerFacts) replica.Options {
	o := replica.Options{
		Network: s.redis.Network, Addr: s.redis.Addr,
		Username: s.redis.Username, Password: s.redis.Password,
		TLS: s.redis.TLSConfig, Dial: s.redis.Dialer,
		RDBOnly: true, Version: facts.Server.Version,
	}
	if s.redis.ReadTimeout > 0 {
		o.ReadTimeout = s.redis.ReadTimeout
	}
	return o
}

// archiveJob is what writeArchive needs to store one new archive.
type archiveJob struct {
	compress bool
	// source and manifest describe where the keys come from; method is
	// the result's Source.
	source   codec.Source
	manifest map[string]string
	method   string
	// filter, when set, is the archive's backup filter (a partial backup).
	filter *codec.Filter
	// fill writes the keys to the writer begin opens (once), with the
	// header's source (nil: job.source) and the manifest's source fields
	// (added to job.manifest).
	fill func(ctx context.Context, begin beginFunc) (engine.DumpStats, error)
}

// beginFunc opens the new archive's writer (see archiveJob.fill).
type beginFunc func(source *codec.Source, manifest map[string]string) (engine.KeyWriter, error)

// writeArchive stores a new archive whose keys job.fill writes: a fresh
// name, the sink's writer, codec's layers, the commit with its manifest,
// the suspect check and verify_after. On any error nothing is left.
func (s *Service) writeArchive(ctx context.Context, job archiveJob) (res BackupResult, err error) {
	start := s.now()
	encrypted := len(s.recipients) > 0
	defer func() {
		if err != nil {
			res = BackupResult{}
			s.log.Error("backup failed", "err", err)
		}
	}()
	name, created, err := s.freshName(ctx, job.compress, encrypted)
	if err != nil {
		return res, err
	}
	sw, err := s.sink.Create(ctx, name)
	if err != nil {
		return res, translate(err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sw.Abort()
		}
	}()
	// The archive's layers, in their order, are codec's business: JSON
	// encoding runs here, gzip, age and the writes to storage on another
	// core.
	var aw *codec.ArchiveWriter
	defer func() {
		if aw != nil {
			aw.Abort() // after Close: nothing
		}
	}()
	begin := func(source *codec.Source, manifest map[string]string) (engine.KeyWriter, error) {
		if source != nil {
			job.source = *source
		}
		for k, v := range manifest {
			job.manifest[k] = v
		}
		var err error
		aw, err = codec.Create(sw, codec.Header{
			Timestamp: created.Format("20060102_150405"),
			CreatedAt: created,
			Source:    job.source,
			Filter:    job.filter,
		}, codec.EncodeOptions{Gzip: job.compress, GzipLevel: s.cfg.Backup.GzipLevel, Recipients: s.recipients})
		return aw, err
	}
	st, err := job.fill(ctx, begin)
	if err != nil {
		return res, err
	}
	if aw == nil {
		return res, errors.New("internal error: the archive was never begun")
	}
	trailer, err := aw.Close()
	if err != nil {
		return res, fmt.Errorf("write archive: %w", translate(err))
	}
	m, err := sw.Commit(sinks.Manifest{
		KeysCount:     trailer.KeysCount,
		FormatVersion: codec.FormatVersion,
		Compressed:    job.compress,
		Encrypted:     encrypted,
		Recipients:    recipientNames(s.recipients),
		CreatedAt:     created,
		CompletedAt:   trailer.CompletedAt,
		Source:        job.manifest,
	})
	if err != nil {
		return res, fmt.Errorf("store archive: %w", translate(err))
	}
	committed = true
	res = BackupResult{
		Filename:        name,
		Filepath:        s.filepath(name),
		Size:            m.Size,
		SizeMB:          sizeMB(m.Size),
		Timestamp:       created.Format("20060102_150405"),
		KeysCount:       trailer.KeysCount,
		Compressed:      job.compress,
		Encrypted:       encrypted,
		SHA256:          m.SHA256,
		CreatedAt:       created.Format("2006-01-02T15:04:05.000000Z"),
		DurationSeconds: roundSeconds(s.now().Sub(start)),
		KeysPerDB:       dbCounts(trailer.KeysPerDB),
		Vanished:        st.Vanished,
		FieldTTLKeys:    st.FieldTTLKeys,
		Server:          engine.Server{Kind: job.source.Server, Version: job.source.ServerVersion}.String(),
		Source:          job.method,
		Filter:          filterOf(codec.Header{Filter: job.filter}),
	}
	if sn := job.source.Snapshot; sn != nil {
		res.ReplID, res.ReplOffset = sn.ReplID, sn.Offset
	}
	if len(st.RawKeys) > 0 {
		res.RawKeys = st.RawKeys
	}
	if trailer.KeysCount == 0 {
		res.Warnings = append(res.Warnings, "the server holds no keys (a FLUSHALL? a Redis URL pointing at the wrong server?): retention keeps the older archives")
	}
	if infos, lerr := s.sink.List(ctx); lerr == nil {
		if why := retention.Suspects(retention.FromInfos(infos), s.suspectDrop())[name]; why != "" {
			res.Suspect = why
			res.Warnings = append(res.Warnings, "archive "+why+": retention keeps it and counts it towards no rule")
			s.log.Warn("suspect backup", "file", name, "why", why)
		}
	}
	done := "backup complete"
	if job.method == "rdb" {
		done = "import complete"
	}
	s.log.Info(done, "file", name, "keys", res.KeysCount, "size", res.Size,
		"seconds", res.DurationSeconds, "vanished", st.Vanished, "duplicates", st.Duplicates,
		"raw_keys", st.RawKeys, "field_ttl_keys", st.FieldTTLKeys, "server", res.Server, "source", job.method)
	if s.cfg.Backup.VerifyAfter {
		full, verr := s.verifyAfter(ctx, name, m, encrypted)
		if verr != nil {
			return res, fmt.Errorf("verify after backup: %w", verr)
		}
		res.ChecksumVerified = true
		res.Verified = full
	}
	return res, nil
}

// verifyAfter re-reads a new archive from storage. It verifies it end to
// end (decrypt, gunzip, parse, count, SHA-256 against the manifest) and
// records that in the manifest; an encrypted archive without a configured
// identity (restore.identities, restore.passphrase_file) gets its size and
// SHA-256 checked only. full says which was done. A configured identity
// that does not open the new archive is an error.
func (s *Service) verifyAfter(ctx context.Context, name string, m sinks.Manifest, encrypted bool) (full bool, err error) {
	var ids []age.Identity
	if encrypted {
		ids, err = ConfigKeys(s.cfg.Restore).Load()
		if err != nil {
			return false, err
		}
	}
	if encrypted && len(ids) == 0 {
		if err := s.checkStored(ctx, name, m); err != nil {
			return false, err
		}
		s.log.Info("archive checksum verified (no identity configured for a full verification)", "file", name, "sha256", m.SHA256)
		return false, nil
	}
	v, err := s.Verify(ctx, name, ids)
	if err != nil {
		return false, err
	}
	return v.Success, nil
}

// checkStored re-reads a stored archive and compares its size and SHA-256
// with the manifest written with it.
func (s *Service) checkStored(ctx context.Context, name string, m sinks.Manifest) error {
	release := s.hold(name)
	defer release()
	rc, _, err := s.sink.Open(ctx, name)
	if err != nil {
		return translate(err)
	}
	defer rc.Close()
	h := newCountingHash(rc)
	if _, err := io.Copy(io.Discard, h); err != nil {
		return fmt.Errorf("read archive: %w", translate(err))
	}
	if got := h.sum(); h.n != m.Size || got != m.SHA256 {
		return fmt.Errorf("%w: %s: stored object has %d bytes, SHA-256 %s; written: %d bytes, %s", ErrInvalid, name, h.n, got, m.Size, m.SHA256)
	}
	return nil
}

// backupSelection is backup.include and backup.exclude compiled, nil when
// a backup takes every key.
func (s *Service) backupSelection() *glob.Set {
	set := glob.ParseSet(s.cfg.Backup.Include, s.cfg.Backup.Exclude)
	if set.Empty() {
		return nil
	}
	return &set
}

// skipKeys lists the keys a backup leaves out: the HA lease's.
func (s *Service) skipKeys() [][]byte {
	if s.cfg.Lease.Enabled && s.cfg.Lease.Key != "" {
		return [][]byte{[]byte(s.cfg.Lease.Key)}
	}
	return nil
}

// freshName returns an archive name for now that no archive has: two
// backups in one second wait for the next second rather than share a name.
func (s *Service) freshName(ctx context.Context, compress, encrypted bool) (string, time.Time, error) {
	for i := 0; i < 5; i++ {
		t := s.now().UTC()
		taken := false
		for _, c := range []bool{false, true} {
			for _, e := range []bool{false, true} {
				_, err := s.sink.Stat(ctx, sinks.NewName(t, c, e))
				if err == nil {
					taken = true
				} else if !errors.Is(err, sinks.ErrNotFound) {
					return "", time.Time{}, translate(err)
				}
			}
		}
		if !taken {
			return sinks.NewName(t, compress, encrypted), t, nil
		}
		wait := t.Truncate(time.Second).Add(time.Second).Sub(s.now().UTC())
		select {
		case <-time.After(wait + time.Millisecond):
		case <-ctx.Done():
			return "", time.Time{}, ctx.Err()
		}
	}
	return "", time.Time{}, errors.New("no free archive name: the clock does not advance")
}

func roundSeconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

func dbCounts(m map[int]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for db, n := range m {
		out[strconv.Itoa(db)] = n
	}
	return out
}

// List returns the archives, oldest first.
func (s *Service) List(ctx context.Context) (ListResult, error) {
	infos, err := s.sink.List(ctx)
	if err != nil {
		return ListResult{}, translate(err)
	}
	out := ListResult{Backups: make([]BackupInfo, 0, len(infos))}
	suspects := retention.Suspects(retention.FromInfos(infos), s.suspectDrop())
	for _, in := range infos {
		b := s.info(in)
		b.Suspect = suspects[in.Name]
		out.Backups = append(out.Backups, b)
	}
	w, err := archiving.LoadWith(ctx, s.sink, infos)
	if err != nil {
		return ListResult{}, translate(err)
	}
	if win := windowOf(w); s.cfg.Archiving.Enabled || len(win.Chains) > 0 {
		out.Window = &win
	}
	return out, nil
}

func (s *Service) info(in sinks.Info) BackupInfo {
	b := BackupInfo{
		Filename:   in.Name,
		Filepath:   s.filepath(in.Name),
		Size:       in.Size,
		SizeMB:     sizeMB(in.Size),
		CreatedAt:  isoUTC(in.Created),
		Timestamp:  in.Created.UTC().Format("20060102_150405"),
		Compressed: in.Compressed,
		Encrypted:  in.Encrypted,
	}
	if ni, err := sinks.ParseName(in.Name); err == nil {
		b.Timestamp = ni.Time.Format("20060102_150405")
	}
	if m := in.Manifest; m != nil {
		n := m.KeysCount
		b.KeysCount = &n
		b.SHA256 = m.SHA256
		if m.VerifiedAt != nil {
			b.Verified = true
			b.VerifiedAt = isoUTC(*m.VerifiedAt)
		}
		if !m.Adopted && m.CompletedAt.After(m.CreatedAt) {
			b.DurationSeconds = math.Round(m.CompletedAt.Sub(m.CreatedAt).Seconds()*100) / 100
		}
		b.Pinned, b.Note = m.Pinned, m.Note
		if m.PinnedAt != nil {
			b.PinnedAt = isoUTC(*m.PinnedAt)
		}
		if d := m.Drill; d != nil {
			b.DrilledAt, b.DrillResult, b.DrillError = isoUTC(d.DrilledAt), d.Result, d.Error
		}
	}
	return b
}

// Stats summarises the archives.
func (s *Service) Stats(ctx context.Context) (StatsResult, error) {
	infos, err := s.sink.List(ctx)
	if err != nil {
		return StatsResult{}, translate(err)
	}
	st := StatsResult{TotalBackups: len(infos), Storage: s.sink.String()}
	for _, in := range infos {
		st.TotalSize += in.Size
		if in.Manifest != nil && in.Manifest.VerifiedAt != nil {
			st.VerifiedCount++
		}
	}
	st.TotalSizeMB = sizeMB(st.TotalSize)
	if len(infos) > 0 {
		o, l := infos[0], infos[len(infos)-1]
		st.OldestBackup = &BackupRef{Filename: o.Name, CreatedAt: isoUTC(o.Created)}
		st.LatestBackup = &BackupRef{Filename: l.Name, CreatedAt: isoUTC(l.Created)}
	}
	return st, nil
}

// Open opens an archive for reading (a download). Prune spares an archive
// while it is open. The caller closes the reader.
func (s *Service) Open(ctx context.Context, name string) (io.ReadCloser, ArchiveInfo, error) {
	if err := sinks.ValidateName(name); err != nil {
		return nil, sinks.Info{}, translate(err)
	}
	release := s.hold(name)
	rc, info, err := s.sink.Open(ctx, name)
	if err != nil {
		release()
		return nil, sinks.Info{}, translate(err)
	}
	return &heldReader{ReadCloser: rc, release: release}, info, nil
}

// OpenRange opens part of an archive (HTTP Range requests).
func (s *Service) OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := sinks.ValidateName(name); err != nil {
		return nil, translate(err)
	}
	release := s.hold(name)
	rc, err := s.sink.OpenRange(ctx, name, offset, length)
	if err != nil {
		release()
		return nil, translate(err)
	}
	return &heldReader{ReadCloser: rc, release: release}, nil
}

// Stat describes one archive.
func (s *Service) Stat(ctx context.Context, name string) (ArchiveInfo, error) {
	if err := sinks.ValidateName(name); err != nil {
		return sinks.Info{}, translate(err)
	}
	in, err := s.sink.Stat(ctx, name)
	return in, translate(err)
}

type heldReader struct {
	io.ReadCloser
	release func()
}

func (h *heldReader) Close() error {
	err := h.ReadCloser.Close()
	h.release()
	return err
}

// hold marks name as being read until the returned func is called.
func (s *Service) hold(name string) func() {
	s.readersMu.Lock()
	defer s.readersMu.Unlock()
	if s.readers == nil {
		s.readers = map[string]int{}
	}
	s.readers[name]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.readersMu.Lock()
			defer s.readersMu.Unlock()
			if s.readers[name]--; s.readers[name] <= 0 {
				delete(s.readers, name)
			}
		})
	}
}

func (s *Service) inUse(name string) bool {
	s.readersMu.Lock()
	defer s.readersMu.Unlock()
	return s.readers[name] > 0
}

// Delete removes an archive and its manifest. An archive that a restore,
// verify or download is reading is refused with ErrBusy.
func (s *Service) Delete(ctx context.Context, name string) (res DeleteResult, err error) {
	start := s.now()
	res, err = s.delete(ctx, name)
	if !errors.Is(err, ErrBusy) {
		s.observe(Op{Kind: OpDelete, Archive: name}, start, err)
	}
	return res, err
}

// delete is Delete, unobserved (prune reports its deletions as one prune).
func (s *Service) delete(ctx context.Context, name string) (res DeleteResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	if err := sinks.ValidateName(name); err != nil {
		return DeleteResult{}, translate(err)
	}
	res.Filename = name
	if s.inUse(name) {
		return res, fmt.Errorf("%w: %s is being read (a restore, verify or download); try again when it ends", ErrBusy, name)
	}
	if in, err := s.sink.Stat(ctx, name); err == nil && in.Manifest != nil && in.Manifest.Pinned {
		return res, fmt.Errorf("%w: %s is pinned: unpin it first (redback unpin %s)", ErrBusy, name, name)
	}
	if err := s.sink.Delete(ctx, name); err != nil {
		return res, translate(err)
	}
	s.log.Info("archive deleted", "file", name)
	return res, nil
}

// countingHash counts and hashes (SHA-256) what is read through it.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func newCountingHash(r io.Reader) *countingHash { return &countingHash{r: r, h: sha256.New()} }

func (c *countingHash) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// suspectDrop is the retention guard's threshold (retention.suspect_drop).
func (s *Service) suspectDrop() float64 { return s.cfg.Retention.SuspectDrop }
