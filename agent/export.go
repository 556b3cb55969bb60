package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/scratch"
	"github.com/redback-dev/redback/codec"
)

// ExportOptions tune an export.
type ExportOptions struct {
	// ServerBinary is the redis-server or valkey-server that will load the
	// file; its own RDB writer writes it. Empty: the one of the archive's
	// kind (valkey-server for a Valkey archive, else redis-server) from
	// PATH.
	ServerBinary string
	// TTL is "relative" or "absolute", as for a restore (empty takes
	// restore.ttl): relative gives each key the TTL it had at backup time,
	// counted from the export.
	TTL        string
	Identities []age.Identity
	Progress   func(engine.Progress)
}

// ExportResult answers `redback export`.
type ExportResult struct {
	Success  bool   `json:"success"`
	Filename string `json:"filename"`
	// Output is where the RDB file went; Size its bytes.
	Output string `json:"output,omitempty"`
	Size   int64  `json:"size"`
	// Server names the server that wrote the file ("redis 7.0.15"); an RDB
	// file loads into that server and newer ones of its kind.
	Server     string `json:"server,omitempty"`
	RDBVersion int    `json:"rdb_version,omitempty"`
	KeysCount  int64  `json:"keys_count"`
	// ExpiredCount counts keys whose TTL ran out before the export (not
	// written); Warnings what was kept with less than the archive holds.
	ExpiredCount int64    `json:"expired_count"`
	Warnings     []string `json:"warnings,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// Export writes an RDB file of archive name to w, that the server of
// o.ServerBinary loads at start: the fastest restore onto a fresh host. The
// archive is proven whole first (as for a restore), then restored into a
// throw-away instance of that server (a private folder, a unix socket, no
// persistence), whose SAVE writes the file; the instance and everything it
// wrote are removed after. The instance holds the dataset in its memory
// while it runs (as the server that loads the file will). Nothing is
// written to w unless every key was restored.
func (s *Service) Export(ctx context.Context, name string, w io.Writer, o ExportOptions) (res ExportResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	if err := ValidateName(name); err != nil {
		return res, err
	}
	res.Filename = name
	ttlName := o.TTL
	if ttlName == "" {
		ttlName = s.cfg.Restore.TTL
	}
	ttl, err := engine.ParseTTLMode(ttlName)
	if err != nil {
		return res, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	release := s.hold(name)
	defer release()
	info, err := s.sink.Stat(ctx, name)
	if err != nil {
		return res, translate(err)
	}
	integrity, err := s.precheck(ctx, archive{Info: info}, o.Identities)
	if err != nil {
		return res, err
	}
	if integrity == IntegrityNone {
		res.Warnings = append(res.Warnings, warnNoChecksum)
	}

	var srv *scratch.Server
	defer func() {
		if srv != nil {
			srv.Stop()
		}
	}()
	st, err := s.replay(ctx, archive{Info: info}, o.Identities, func(hdr codec.Header) (*redis.Options, engine.RestoreOptions, error) {
		bin, err := exportBinary(o.ServerBinary, hdr.Source.Server)
		if err != nil {
			return nil, engine.RestoreOptions{}, err
		}
		dbs := 16
		for _, db := range hdr.Source.Databases {
			dbs = max(dbs, db+1)
		}
		if srv, err = scratch.Start(ctx, bin, dbs); err != nil {
			return nil, engine.RestoreOptions{}, fmt.Errorf("the server that writes the RDB: %w", err)
		}
		res.Server = srv.Kind + " " + srv.Version
		s.log.Info("exporting through a throw-away server", "file", name, "server", res.Server)
		dbmap := map[int]int{}
		if hdr.FormatVersion == 0 {
			dbmap[0] = 0 // a seed archive's one database
		}
		return &redis.Options{Network: "unix", Addr: srv.Socket}, engine.RestoreOptions{TTL: ttl, DBMap: dbmap, Progress: withTotal(o.Progress, info)}, nil
	})
	res.KeysCount, res.ExpiredCount = st.Restored, st.Expired
	res.Warnings = append(res.Warnings, st.Warnings...)
	if err != nil {
		return res, translate(err)
	}
	if st.Errors > 0 {
		return res, fmt.Errorf("%d of %d keys could not be written into %s; the first: %s: no RDB file written", st.Errors, st.Total, res.Server, first(st.Messages))
	}
	// SAVE takes as long as writing the whole dataset: no read timeout
	// (ctx still cancels it).
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Socket, ReadTimeout: -1, ContextTimeoutEnabled: true})
	defer c.Close()
	if err := c.Save(ctx).Err(); err != nil {
		return res, fmt.Errorf("SAVE: %w", err)
	}
	f, err := os.Open(srv.RDBFile())
	if err != nil {
		return res, fmt.Errorf("the RDB file: %w", err)
	}
	defer f.Close()
	var head [9]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return res, fmt.Errorf("the RDB file: %w", err)
	}
	res.RDBVersion = rdbVersionOf(head[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	n, err := io.Copy(w, f)
	res.Size = n
	if err != nil {
		return res, fmt.Errorf("write the RDB file: %w", err)
	}
	s.log.Info("export complete", "file", name, "keys", res.KeysCount, "size", n, "server", res.Server, "rdb_version", res.RDBVersion)
	return res, nil
}

// exportBinary picks the server that writes an export.
func exportBinary(given, kind string) (string, error) {
	if given != "" {
		return given, nil
	}
	name := "redis-server"
	if kind == "valkey" {
		name = "valkey-server"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: no %s in PATH to write the RDB file: name the server that will load it with --server-binary", ErrInvalid, name)
	}
	return p, nil
}

// rdbVersionOf reads the version of an RDB header ("REDIS0011",
// "VALKEY080"); 0 when it is none.
func rdbVersionOf(head []byte) int {
	var digits []byte
	switch {
	case len(head) >= 9 && string(head[:5]) == "REDIS":
		digits = head[5:9]
	case len(head) >= 9 && string(head[:6]) == "VALKEY":
		digits = head[6:9]
	default:
		return 0
	}
	v := 0
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0
		}
		v = v*10 + int(d-'0')
	}
	return v
}
