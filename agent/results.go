package agent

import (
	"errors"
	"math"
	"time"
)

// The result types below are the JSON bodies of the API and of the command
// line's --json output: the seed's fields first, with its names, types and
// units (size in bytes, size_mb rounded to 2 places, created_at ISO 8601),
// then redback's own.

// BackupResult answers POST /api/backup/create and `redback backup`.
type BackupResult struct {
	Success    bool    `json:"success"`
	Filename   string  `json:"filename,omitempty"`
	Filepath   string  `json:"filepath,omitempty"`
	Size       int64   `json:"size"`
	SizeMB     float64 `json:"size_mb"`
	Timestamp  string  `json:"timestamp,omitempty"`
	KeysCount  int64   `json:"keys_count"`
	Compressed bool    `json:"compressed"`

	Encrypted       bool             `json:"encrypted"`
	SHA256          string           `json:"sha256,omitempty"`
	CreatedAt       string           `json:"created_at,omitempty"`
	DurationSeconds float64          `json:"duration_seconds"`
	KeysPerDB       map[string]int64 `json:"keys_per_db,omitempty"`
	Vanished        int64            `json:"vanished_keys"`
	// RawKeys counts, by type, the keys of types redback does not model
	// (module types such as vector sets), kept as the server's DUMP
	// payload; they restore only into a server that loads that payload.
	RawKeys map[string]int64 `json:"raw_keys,omitempty"`
	// FieldTTLKeys counts hashes whose fields carry expiry times.
	FieldTTLKeys int64 `json:"field_ttl_keys,omitempty"`
	// Server is the dumped server's kind and own version ("valkey 9.0.0").
	Server string `json:"server,omitempty"`
	// Source is how the keys were read: "scan" (each key at its own
	// moment), "replica" (a point-in-time snapshot through the replication
	// protocol, at ReplID and ReplOffset) or "rdb" (an imported RDB file).
	Source     string `json:"source,omitempty"`
	ReplID     string `json:"replid,omitempty"`
	ReplOffset int64  `json:"repl_offset,omitempty"`
	// Filter is backup.include/exclude when they were set: the archive
	// holds only the keys they selected, and records them.
	Filter *ArchiveFilter `json:"filter,omitempty"`
	// Suspect says why the new archive looks like a backup of an emptied or
	// shrunken server (retention keeps it and counts it towards no rule);
	// Warnings lists that and other things worth a look (an empty server).
	Suspect  string   `json:"suspect,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Verified bool     `json:"verified"`
	// ChecksumVerified: the stored object was read back and matched the
	// SHA-256 written (backup.verify_after); Verified: it was also read end
	// to end (for an encrypted archive, only with a configured identity).
	ChecksumVerified bool   `json:"checksum_verified,omitempty"`
	Error            string `json:"error,omitempty"`
}

// BackupInfo is one archive in a list.
type BackupInfo struct {
	Filename   string  `json:"filename"`
	Filepath   string  `json:"filepath"`
	Size       int64   `json:"size"`
	SizeMB     float64 `json:"size_mb"`
	CreatedAt  string  `json:"created_at"`
	Timestamp  string  `json:"timestamp"`
	Compressed bool    `json:"compressed"`

	Encrypted  bool   `json:"encrypted"`
	KeysCount  *int64 `json:"keys_count,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Verified   bool   `json:"verified"`
	VerifiedAt string `json:"verified_at,omitempty"`
	// Suspect says why the archive looks like a backup of an emptied or
	// shrunken server (see retention.Suspects); such archives are kept and
	// count towards no retention rule.
	Suspect string `json:"suspect,omitempty"`
	// DurationSeconds is how long the backup took (from its start to its
	// completion, as its manifest records them; absent for archives
	// copied in).
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	// Pinned archives are never pruned (`redback pin`); Note is the
	// pin's note.
	Pinned   bool   `json:"pinned,omitempty"`
	PinnedAt string `json:"pinned_at,omitempty"`
	Note     string `json:"note,omitempty"`
	// DrilledAt, DrillResult ("passed" or "failed") and DrillError are the
	// archive's newest restore drill (absent when never drilled).
	DrilledAt   string `json:"drilled_at,omitempty"`
	DrillResult string `json:"drill_result,omitempty"`
	DrillError  string `json:"drill_error,omitempty"`
}

// ListResult answers GET /api/backup/list and `redback list`.
type ListResult struct {
	Backups []BackupInfo `json:"backups"`
	// Window is the restorable window of the continuous archive (with
	// archiving enabled, or segments stored).
	Window *Window `json:"restorable_window,omitempty"`
}

// BackupRef names one archive in stats.
type BackupRef struct {
	Filename  string `json:"filename"`
	CreatedAt string `json:"created_at"`
}

// StatsResult answers GET /api/backup/stats and `redback stats`.
type StatsResult struct {
	TotalBackups int        `json:"total_backups"`
	TotalSize    int64      `json:"total_size"`
	TotalSizeMB  float64    `json:"total_size_mb"`
	LatestBackup *BackupRef `json:"latest_backup"`
	OldestBackup *BackupRef `json:"oldest_backup"`

	Storage       string `json:"storage"`
	VerifiedCount int    `json:"verified_backups"`
}

// RestoreResult answers POST /api/backup/restore and `redback restore`.
type RestoreResult struct {
	Success       bool   `json:"success"`
	Filename      string `json:"filename"`
	RestoredCount int64  `json:"restored_count"`
	SkippedCount  int64  `json:"skipped_count"`
	ErrorCount    int64  `json:"error_count"`
	TotalKeys     int64  `json:"total_keys"`

	ExpiredCount int64 `json:"expired_count"`
	// FilteredCount counts the keys of the archive that the restore's
	// selection (match, exclude, types, db) left out, untouched:
	// restored + skipped + errors + filtered = total_keys.
	FilteredCount   int64    `json:"filtered_count"`
	DryRun          bool     `json:"dry_run"`
	Overwrite       bool     `json:"overwrite"`
	DurationSeconds float64  `json:"duration_seconds"`
	Errors          []string `json:"errors,omitempty"`
	// Warnings name keys restored with less than the archive holds;
	// PendingLost counts stream pending entries whose entry was gone,
	// FieldsExpired hash fields whose expiry had passed.
	Warnings      []string `json:"warnings,omitempty"`
	PendingLost   int64    `json:"pending_entries_lost,omitempty"`
	FieldsExpired int64    `json:"fields_expired,omitempty"`
	// PointInTime, for a restore --at, says which base, how many
	// commands, and the time and offset reached.
	PointInTime *PointInTime `json:"point_in_time,omitempty"`
	Error       string       `json:"error,omitempty"`
}

// DeleteResult answers DELETE /api/backup/delete/{filename} and `redback delete`.
type DeleteResult struct {
	Success  bool   `json:"success"`
	Filename string `json:"filename"`
	Error    string `json:"error,omitempty"`
}

// VerifyResult answers `redback verify`.
type VerifyResult struct {
	Success        bool             `json:"success"`
	Filename       string           `json:"filename"`
	Size           int64            `json:"size"`
	SHA256         string           `json:"sha256"`
	ChecksumStored bool             `json:"checksum_recorded"`
	KeysCount      int64            `json:"keys_count"`
	KeysPerDB      map[string]int64 `json:"keys_per_db,omitempty"`
	FormatVersion  int              `json:"format_version"`
	Compressed     bool             `json:"compressed"`
	Encrypted      bool             `json:"encrypted"`
	// Integrity says what proved the archive's bytes sound, once it was
	// read end to end: IntegrityManifest (the SHA-256 its manifest
	// records), IntegrityArchive (the checksum the document carries, format
	// version 2), IntegrityBoth, or IntegrityNone (a seed or version 1
	// archive without a manifest: not verifiable, so not a success).
	Integrity string `json:"integrity,omitempty"`
	// Recorded says the outcome was written to the archive's manifest;
	// Warning says why not (read-only storage).
	Recorded bool   `json:"recorded"`
	Warning  string `json:"warning,omitempty"`
	Error    string `json:"error,omitempty"`
}

// The values of VerifyResult.Integrity.
const (
	IntegrityManifest = "manifest"
	IntegrityArchive  = "archive"
	IntegrityBoth     = "manifest+archive"
	IntegrityNone     = "none"
)

// PruneResult answers `redback prune`.
type PruneResult struct {
	Success bool     `json:"success"`
	DryRun  bool     `json:"dry_run"`
	Keep    int      `json:"keep"`
	Kept    []string `json:"kept"`
	Deleted []string `json:"deleted"`
	// Suspect names the archives kept because they look like backups of an
	// emptied or shrunken server, with why.
	Suspect map[string]string `json:"suspect,omitempty"`
	// DeletedSegments counts the continuous archive's segments deleted
	// with their base (or that extended no kept base).
	DeletedSegments int    `json:"deleted_segments,omitempty"`
	Error           string `json:"error,omitempty"`
}

// Errors callers test for (the API maps them to status codes, the command
// line to exit codes).
var (
	// ErrInvalid is bad input: a name that is no archive name, a corrupt,
	// truncated or undecryptable archive, a bad option.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound is an archive that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBusy is a backup or restore refused because another one runs.
	ErrBusy = errors.New("busy")
	// ErrExists is an archive that another writer stored under the same
	// name first.
	ErrExists = errors.New("already exists")
)

func sizeMB(n int64) float64 { return math.Round(float64(n)/(1<<20)*100) / 100 }

// isoUTC formats t as the API's created_at: UTC, seconds, with Z.
func isoUTC(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// RedisStatsResult answers GET /api/stats: what the Redis server holds.
type RedisStatsResult struct {
	RedisVersion string           `json:"redis_version"`
	Role         string           `json:"role"`
	Mode         string           `json:"mode"`
	UsedMemory   int64            `json:"used_memory"`
	UsedMemoryMB float64          `json:"used_memory_mb"`
	TotalKeys    int64            `json:"total_keys"`
	KeysPerDB    map[string]int64 `json:"keys_per_db"`
}

// settle fills a result's Success and Error from the error its method
// returns, so that the two always agree with it: every method that returns
// a result with these fields defers one call to settle, and sets neither
// itself.
func settle(success *bool, msg *string, err error) {
	*success = err == nil
	*msg = ""
	if err != nil {
		*msg = err.Error()
	}
}
