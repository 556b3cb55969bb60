package agent

import (
	"context"
	"time"

	"github.com/redback-dev/redback/sinks"
)

// OpKind names an operation of a Service, as metrics label it.
type OpKind string

// The operations a Service reports to its observers.
const (
	OpBackup        OpKind = "backup"
	OpImport        OpKind = "import"
	OpUpload        OpKind = "upload"
	OpRestore       OpKind = "restore"
	OpRestoreDryRun OpKind = "restore_dry_run"
	OpRestoreAt     OpKind = "restore_at" // to a point in time (RestoreAt)
	OpVerify        OpKind = "verify"
	OpPrune         OpKind = "prune"
	OpDelete        OpKind = "delete"
)

// Op is one operation a Service carried out, whoever asked for it (the
// scheduler, the API, the command line), as its observers see it once it
// has ended. Operations refused before they began (ErrBusy, an invalid
// name) are reported too, with Err set.
type Op struct {
	Kind       OpKind
	Start, End time.Time
	// Err is nil on success.
	Err error
	// Archive is the archive written, read or deleted ("" for prune).
	Archive string
	// Size and Keys describe the archive written (backup, import,
	// upload) or the keys restored (restore: Keys only).
	Size, Keys int64
	// Suspect is set on a backup that looks like one of an emptied or
	// shrunken server (BackupResult.Suspect).
	Suspect bool
	// Deleted counts the archives a prune deleted.
	Deleted int
}

// Observe adds fn to the functions called after each operation of the
// Service ends, in the goroutine that ran it: fn must be quick and must
// not call the Service back. Observers are added before the Service is
// used (Observe is not synchronised with running operations).
func (s *Service) Observe(fn func(Op)) { s.observers = append(s.observers, fn) }

// observe reports op, timed from start to now, to the observers.
func (s *Service) observe(op Op, start time.Time, err error) {
	if len(s.observers) == 0 {
		return
	}
	op.Start, op.End, op.Err = start, s.now(), err
	for _, fn := range s.observers {
		fn(op)
	}
}

// Inventory is what storage holds for one Service, for gauges.
type Inventory struct {
	// Archives and Bytes count the listed (complete) archives.
	Archives int
	Bytes    int64
	// Newest is the newest listed archive (the zero Info when none), as
	// `latest` resolves it.
	Newest sinks.Info
}

// Inventory lists storage. It reads manifests only, never an archive.
func (s *Service) Inventory(ctx context.Context) (Inventory, error) {
	infos, err := s.sink.List(ctx)
	if err != nil {
		return Inventory{}, translate(err)
	}
	inv := Inventory{Archives: len(infos), Newest: newestOf(infos)}
	for _, in := range infos {
		inv.Bytes += in.Size
	}
	return inv, nil
}

// newestOf is the newest of infos, as Latest names it: the last created
// (of equal times, the last listed); the zero Info when there is none.
func newestOf(infos []sinks.Info) sinks.Info {
	var newest sinks.Info
	for i, in := range infos {
		if i == 0 || !in.Created.Before(newest.Created) {
			newest = in
		}
	}
	return newest
}

// observeBackup reports the backup-like operation (backup, import) whose
// result and error *res and *err will hold when it returns; deferred.
func (s *Service) observeBackup(kind OpKind, res *BackupResult, start time.Time, err *error) {
	s.observe(Op{Kind: kind, Archive: res.Filename, Size: res.Size, Keys: res.KeysCount, Suspect: res.Suspect != ""}, start, *err)
}
