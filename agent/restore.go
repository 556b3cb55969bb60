package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/sinks"
)

// RestoreOptions tune one restore.
type RestoreOptions struct {
	Overwrite bool
	DryRun    bool
	// TTL is "relative" or "absolute"; empty takes restore.ttl.
	TTL string
	// DBMap maps an archive database to a target database.
	DBMap map[int]int
	// Identities decrypt age archives.
	Identities []age.Identity
	// AllowEviction: see config.Restore.AllowEviction.
	AllowEviction bool
	// NoPrecheck skips reading the whole archive before the first write.
	NoPrecheck bool
	// IgnoreMemory skips the check that the target has room for the data
	// (the source's dataset memory, recorded at backup time).
	IgnoreMemory bool
	Progress     func(engine.Progress)
	// Selection restores only the keys it picks; the others are counted
	// in RestoreResult.FilteredCount and never touched.
	Selection Selection
	// Local lets the name be the path of a local file (IsPath: it holds a
	// slash), read in place with the same checks (the command line's
	// restore ./file.json.gz). The API never sets it.
	Local bool
	// keepDatabases restores every database under its own number,
	// whatever the URL names (a restore --at's base: the stream that
	// follows it SELECTs by number).
	keepDatabases bool
}

// selection compiles o.Selection.
func (o RestoreOptions) selection() (*keySelection, error) { return o.Selection.compile() }

// Restore writes the keys of archive name into the server. Before it writes
// anything it checks the whole archive (its recorded SHA-256, or a full read
// when none is recorded), so that a corrupt or truncated archive, or a wrong
// key, changes nothing. With Overwrite off no existing key is touched.
func (s *Service) Restore(ctx context.Context, name string, o RestoreOptions) (res RestoreResult, err error) {
	res = RestoreResult{Filename: name, DryRun: o.DryRun, Overwrite: o.Overwrite}
	start := s.now()
	defer func() {
		res.DurationSeconds = roundSeconds(s.now().Sub(start))
		settle(&res.Success, &res.Error, err)
		if err != nil {
			s.log.Error("restore failed", "file", name, "err", err)
		}
		if !errors.Is(err, ErrBusy) {
			kind := OpRestore
			if o.DryRun {
				kind = OpRestoreDryRun
			}
			s.observe(Op{Kind: kind, Archive: res.Filename, Keys: res.RestoredCount}, start, err)
		}
	}()
	if !(o.Local && IsPath(name)) && name != Latest {
		if err := sinks.ValidateName(name); err != nil {
			res.Filename = ""
			return res, translate(err)
		}
	}
	ttlName := o.TTL
	if ttlName == "" {
		ttlName = s.cfg.Restore.TTL
	}
	ttl, err := engine.ParseTTLMode(ttlName)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sel, err := o.selection()
	if err != nil {
		return res, err
	}
	unlock, err := s.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	a, release, err := s.resolve(ctx, name, o.Local)
	defer release()
	if err != nil {
		return res, err
	}
	res.Filename = a.Name
	info := a.Info
	if !o.NoPrecheck {
		integrity, err := s.precheck(ctx, a, o.Identities)
		if err != nil {
			return res, err
		}
		if integrity == IntegrityNone {
			res.Warnings = append(res.Warnings, warnNoChecksum)
		}
	}
	if !o.DryRun {
		if err := engine.CheckTarget(ctx, s.redis, o.AllowEviction || s.cfg.Restore.AllowEviction); err != nil {
			return res, err
		}
		if !o.IgnoreMemory && !s.cfg.Restore.IgnoreMemory && info.Manifest != nil {
			need, _ := strconv.ParseInt(info.Manifest.Source["used_memory_dataset"], 10, 64)
			if err := engine.CheckMemory(ctx, s.redis, need); err != nil {
				return res, err
			}
		}
	}

	var filtered *selected
	var wrap func(engine.ChunkSource) engine.ChunkSource
	progress := withTotal(o.Progress, info)
	if sel != nil {
		filtered = &selected{sel: sel}
		wrap = func(src engine.ChunkSource) engine.ChunkSource {
			filtered.src = src
			return filtered
		}
		if progress != nil {
			// The keys the selection leaves out are done too: a restore of
			// one key of a million ends at 100 %, not at one millionth.
			report := progress
			progress = func(p engine.Progress) {
				p.KeysDone += filtered.leftSoFar.Load()
				report(p)
			}
		}
	}
	st, rerr := s.replayFrom(ctx, a, o.Identities, func(hdr codec.Header) (*redis.Options, engine.RestoreOptions, error) {
		dbmap, err := s.databaseMap(hdr, o.DBMap)
		if o.keepDatabases {
			dbmap, err = map[int]int{}, nil // numbers kept
		}
		return s.redis, engine.RestoreOptions{
			Overwrite: o.Overwrite,
			DryRun:    o.DryRun,
			TTL:       ttl,
			DBMap:     dbmap,
			Progress:  progress,
		}, err
	}, wrap)
	res.RestoredCount, res.SkippedCount, res.ErrorCount, res.TotalKeys = st.Restored, st.Skipped, st.Errors, st.Total
	if filtered != nil {
		res.FilteredCount = filtered.left
		res.TotalKeys += filtered.left
	}
	if o.Progress != nil && rerr == nil {
		// The last word: every key of the archive was dealt with (the
		// engine reports after each batch, and a selection's left-out
		// keys after the last restored one come after its last report).
		o.Progress(engine.Progress{KeysDone: res.TotalKeys, KeysTotal: res.TotalKeys})
	}
	res.ExpiredCount = st.Expired
	res.Errors = st.Messages
	res.Warnings = append(res.Warnings, st.Warnings...)
	res.PendingLost = st.PendingLost
	res.FieldsExpired = st.FieldsExpired
	if rerr != nil {
		return res, translate(rerr)
	}
	s.log.Info("restore complete", "file", a.Name, "restored", st.Restored, "skipped", st.Skipped,
		"errors", st.Errors, "filtered", res.FilteredCount, "total", res.TotalKeys, "dry_run", o.DryRun, "overwrite", o.Overwrite)
	if st.Errors > 0 {
		return res, fmt.Errorf("%d of %d keys failed; the first: %s", st.Errors, st.Total, first(st.Messages))
	}
	return res, nil
}

// replay writes the keys of the archive info into the server and with the
// options that opts makes of the archive's header (the restore's tuning of
// agent.yaml is filled in here). A refusal of opts is returned as it is,
// before any write.
func (s *Service) replay(ctx context.Context, a archive, ids []age.Identity, opts func(codec.Header) (*redis.Options, engine.RestoreOptions, error)) (engine.RestoreStats, error) {
	return s.replayFrom(ctx, a, ids, opts, nil)
}

// replayFrom is replay with the chunks passed through wrap (a key
// selection) when it is not nil.
func (s *Service) replayFrom(ctx context.Context, a archive, ids []age.Identity, opts func(codec.Header) (*redis.Options, engine.RestoreOptions, error), wrap func(engine.ChunkSource) engine.ChunkSource) (engine.RestoreStats, error) {
	rc, err := s.open(ctx, a)
	if err != nil {
		return engine.RestoreStats{}, err
	}
	defer rc.Close()
	rd, err := s.openArchive(a.Name, rc, ids)
	if err != nil {
		return engine.RestoreStats{}, err
	}
	defer rd.Close()
	hdr, err := rd.Header()
	if err != nil {
		return engine.RestoreStats{}, translate(err)
	}
	target, eo, err := opts(hdr)
	if err != nil {
		return engine.RestoreStats{}, err
	}
	eo.ArchiveTime = hdr.CreatedAt
	eo.BatchKeys = s.cfg.Restore.BatchKeys
	eo.Workers = s.cfg.Restore.Workers
	eo.MaxErrors = s.cfg.Restore.MaxErrors
	eo.KeysPerSecond = s.cfg.Restore.KeysPerSecond
	var src engine.ChunkSource = rd
	if wrap != nil {
		src = wrap(rd)
	}
	return engine.NewRestorer(target, eo).Restore(ctx, src)
}

// withTotal fills in the key count of the archive's manifest (when it has
// one) as the total of a restore's progress.
func withTotal(fn func(engine.Progress), info sinks.Info) func(engine.Progress) {
	if fn == nil || info.Manifest == nil || info.Manifest.KeysCount <= 0 {
		return fn
	}
	total := info.Manifest.KeysCount
	return func(p engine.Progress) {
		p.KeysTotal = total
		fn(p)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// openArchive opens the archive name read from r: codec peels its layers
// (checked against the name) and parses it. The caller closes it.
func (s *Service) openArchive(name string, r io.Reader, ids []age.Identity) (*codec.ArchiveReader, error) {
	rd, err := codec.Open(r, name, codec.DecodeOptions{Identities: ids})
	if err != nil {
		return nil, translate(err)
	}
	return rd, nil
}

// ErrUnverifiable is the error of Verify for an archive that parsed end
// to end but whose bytes nothing can vouch for: a seed or version 1
// archive (no checksum of its own, FORMAT.md "Integrity") without a
// manifest that records its SHA-256. It is not ErrInvalid: the archive may
// well be sound, and restore still takes it (with a warning).
var ErrUnverifiable = errors.New("archive integrity cannot be verified")

// warnNoChecksum is the RestoreResult warning for a restore whose archive
// nothing could check.
const warnNoChecksum = "the archive carries no checksum (a seed or version 1 archive without its manifest): its integrity could not be checked"

// precheck proves the archive whole before a restore writes: by its
// recorded SHA-256 when there is one (and then only the age header is
// checked against the identities), else by reading it end to end, which
// checks the document's own checksum (format version 2). It returns what
// proved the archive's integrity (VerifyResult.Integrity): IntegrityNone
// for a seed or version 1 archive without a manifest, which is read whole
// and parses, but which nothing can vouch for; the restore goes on with a
// warning (seed archives restore, that is the contract).
func (s *Service) precheck(ctx context.Context, a archive, ids []age.Identity) (string, error) {
	info := a.Info
	if info.Manifest != nil && info.Manifest.SHA256 != "" {
		rc, err := s.open(ctx, a)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		h := newCountingHash(rc)
		if _, err := io.Copy(io.Discard, h); err != nil {
			return "", fmt.Errorf("read archive: %w", translate(err))
		}
		if got := h.sum(); got != info.Manifest.SHA256 {
			return "", fmt.Errorf("%w: %s: SHA-256 %s differs from the recorded %s: the archive is damaged", ErrInvalid, info.Name, got, info.Manifest.SHA256)
		}
		if info.Encrypted {
			// Check the key now, before any write.
			rc2, err := s.open(ctx, a)
			if err != nil {
				return "", err
			}
			defer rc2.Close()
			rd, err := s.openArchive(info.Name, rc2, ids)
			if err != nil {
				return "", err
			}
			rd.Close()
		}
		return IntegrityManifest, nil
	}
	v, err := s.readWhole(ctx, a, ids)
	if err != nil {
		return "", err
	}
	if v.Integrity == IntegrityNone {
		s.log.Warn("restoring an archive that carries no checksum and has no manifest: its integrity cannot be checked",
			"file", info.Name, "format_version", v.FormatVersion)
	}
	return v.Integrity, nil
}

// readWhole reads an archive end to end without touching Redis.
func (s *Service) readWhole(ctx context.Context, a archive, ids []age.Identity) (VerifyResult, error) {
	name, info := a.Name, a.Info
	v := VerifyResult{Filename: name}
	rc, err := s.open(ctx, a)
	if err != nil {
		return v, err
	}
	defer rc.Close()
	h := newCountingHash(rc)
	rd, err := s.openArchive(name, h, ids)
	if err != nil {
		return v, err
	}
	defer rd.Close()
	layers := rd.Layers()
	v.Compressed, v.Encrypted = layers.Gzip, layers.Age
	hdr, err := rd.Header()
	if err != nil {
		return v, translate(err)
	}
	v.FormatVersion = hdr.FormatVersion
	for {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		c, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return v, translate(err)
		}
		rd.Release(c)
	}
	// Close drains what follows the JSON, so that the hash covers the
	// whole object.
	if err := rd.Close(); err != nil {
		return v, translate(err)
	}
	if _, err := io.Copy(io.Discard, h); err != nil {
		return v, fmt.Errorf("read archive: %w", translate(err))
	}
	// The Reader returned io.EOF: a checksum the document carries matched
	// (and a version 2 document without one was refused).
	tr := rd.Trailer()
	v.KeysCount = tr.KeysCount
	v.KeysPerDB = dbCounts(tr.KeysPerDB)
	v.Size = h.n
	v.SHA256 = h.sum()
	manifest := false
	if m := info.Manifest; m != nil && m.SHA256 != "" {
		v.ChecksumStored = true
		if m.SHA256 != v.SHA256 {
			return v, fmt.Errorf("%w: %s: SHA-256 %s differs from the recorded %s", ErrInvalid, name, v.SHA256, m.SHA256)
		}
		if m.KeysCount != v.KeysCount {
			return v, fmt.Errorf("%w: %s: %d keys, the manifest records %d", ErrInvalid, name, v.KeysCount, m.KeysCount)
		}
		manifest = true
	}
	switch {
	case manifest && tr.Verified:
		v.Integrity = IntegrityBoth
	case manifest:
		v.Integrity = IntegrityManifest
	case tr.Verified:
		v.Integrity = IntegrityArchive
	default:
		v.Integrity = IntegrityNone
	}
	return v, nil
}

// Verify reads an archive end to end (decrypt, gunzip, parse, count,
// checksums) without touching Redis, and records the success in its
// manifest (creating one for an archive copied in by hand). Its bytes must
// be vouched for by the SHA-256 its manifest records, or by the checksum
// the document carries (format version 2), or both (VerifyResult.Integrity
// says which); a seed or version 1 archive without a manifest has neither,
// so it is not verified: the result is not a success, nothing is recorded,
// and the error wraps ErrUnverifiable.
func (s *Service) Verify(ctx context.Context, name string, ids []age.Identity) (v VerifyResult, err error) {
	defer func() { settle(&v.Success, &v.Error, err) }()
	defer func(start time.Time) { s.observe(Op{Kind: OpVerify, Archive: name, Keys: v.KeysCount}, start, err) }(s.now())
	if err := sinks.ValidateName(name); err != nil {
		return VerifyResult{}, translate(err)
	}
	release := s.hold(name)
	defer release()
	in, err := s.sink.Stat(ctx, name)
	if err != nil {
		return VerifyResult{Filename: name}, translate(err)
	}
	v, err = s.readWhole(ctx, archive{Info: in}, ids)
	if err != nil {
		return v, err
	}
	if v.Integrity == IntegrityNone {
		kind := "a seed archive"
		if v.FormatVersion > 0 {
			kind = fmt.Sprintf("an archive of format version %d", v.FormatVersion)
		}
		err := fmt.Errorf("%w: %s parsed end to end (%d keys), but it carries no checksum (%s) and has no manifest that records one, so its bytes cannot be verified; it can still be restored",
			ErrUnverifiable, name, v.KeysCount, kind)
		return v, err
	}
	// Read and rewrite the manifest under the manifest lock (a pin or a
	// drill's record must not be undone).
	s.manifestMu.Lock()
	defer s.manifestMu.Unlock()
	info, err := s.sink.Stat(ctx, name)
	if err != nil {
		return v, translate(err)
	}
	now := s.now().UTC()
	m := sinks.Manifest{}
	if info.Manifest != nil {
		m = *info.Manifest
	} else {
		ni, _ := sinks.ParseName(name)
		m = sinks.Manifest{Name: name, Size: v.Size, SHA256: v.SHA256, KeysCount: v.KeysCount,
			FormatVersion: v.FormatVersion, Compressed: v.Compressed, Encrypted: v.Encrypted, CreatedAt: ni.Time,
			Adopted: true}
		v.ChecksumStored = false
	}
	m.VerifiedAt = &now
	if err := s.sink.WriteManifest(ctx, m); err != nil {
		// The check's outcome stands (read-only storage, a full disk): say
		// it could not be recorded, and succeed by the outcome.
		v.Warning = fmt.Sprintf("the check could not be recorded: %v", translate(err))
		s.log.Warn("archive verified, not recorded", "file", name, "err", translate(err))
		return v, nil
	}
	v.Recorded = true
	s.log.Info("archive verified", "file", name, "keys", v.KeysCount, "sha256", v.SHA256, "integrity", v.Integrity)
	return v, nil
}

// databaseMap says where each database of an archive goes. --db maps come
// first. Otherwise: a seed archive holds the one database its tool was
// connected to and goes to the database of the target URL; an archive of
// one database goes to the database the URL names, if it names one; an
// archive of several databases keeps their numbers, and is refused when the
// URL names a database other than 0 (which one should get what is then
// the user's call: --db).
func (s *Service) databaseMap(hdr codec.Header, given map[int]int) (map[int]int, error) {
	dbmap := map[int]int{}
	urlDB, explicit := engine.URLDatabase(s.cfg.Redis.URL)
	switch dbs := hdr.Source.Databases; {
	case hdr.FormatVersion == 0:
		dbmap[0] = s.redis.DB
	case len(given) > 0 || !explicit:
	case len(dbs) == 1:
		dbmap[dbs[0]] = urlDB
	case len(dbs) > 1 && urlDB != 0:
		return nil, fmt.Errorf("%w: the archive holds databases %v and the Redis URL names database %d: say where each goes with --db FROM:TO, or use a URL without a database to keep their numbers", ErrInvalid, dbs, urlDB)
	}
	for from, to := range given {
		dbmap[from] = to
	}
	return dbmap, nil
}
