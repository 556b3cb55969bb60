package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/sinks"
)

// CheckResult is one check of Check: its name, whether it passed, and
// what it found (or why it failed).
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Check runs the checks an operator wants before trusting the night's
// backup (`redback check`): the Redis server answers and grants the
// commands a backup sends; the storage lists and takes a write (a
// temporary object, removed and never listed); the newest archive is
// younger than maxAge (0: any age) and not suspect against the one before
// it; the encryption recipients, when configured, encrypt. It never fails
// as a whole: each result says what it found.
func (s *Service) Check(ctx context.Context, maxAge time.Duration) []CheckResult {
	var out []CheckResult
	add := func(name string, err error, ok string) {
		if err != nil {
			out = append(out, CheckResult{Name: name, Detail: err.Error()})
			return
		}
		out = append(out, CheckResult{Name: name, OK: true, Detail: ok})
	}

	f, err := engine.Inspect(ctx, s.redis)
	var keys int64
	for _, n := range f.KeysPerDB {
		keys += n
	}
	add("redis", err, fmt.Sprintf("%s %s at %s (%s), %d keys", f.Server.Kind, f.Server.Version, s.Address(), f.Role, keys))
	if err == nil {
		add("redis rights", engine.CheckBackupRights(ctx, s.redis), "SCAN, TYPE, PTTL, MEMORY USAGE, DUMP and SCRIPT LOAD allowed")
	}

	infos, err := s.sink.List(ctx)
	if err != nil {
		add("storage", fmt.Errorf("list %s: %w", s.Storage(), translate(err)), "")
		return append(out, s.checkEncryption())
	}
	add("storage", s.checkWrite(ctx), fmt.Sprintf("%s: %d archives, writable", s.Storage(), len(infos)))

	out = append(out, s.checkNewest(infos, maxAge))
	return append(out, s.checkEncryption())
}

// checkWrite creates an archive object under a fresh name, writes to it
// and aborts it: nothing is listed, nothing is left.
func (s *Service) checkWrite(ctx context.Context) error {
	name, _, err := s.freshName(ctx, false, false)
	if err != nil {
		return err
	}
	w, err := s.sink.Create(ctx, name)
	if err != nil {
		return fmt.Errorf("create a temporary object in %s: %w", s.Storage(), translate(err))
	}
	_, werr := w.Write([]byte("redback check\n"))
	if aerr := w.Abort(); werr == nil && aerr != nil {
		werr = fmt.Errorf("remove the temporary object: %w", aerr)
	}
	if werr != nil {
		return fmt.Errorf("write to %s: %w", s.Storage(), translate(werr))
	}
	return nil
}

func (s *Service) checkNewest(infos []sinks.Info, maxAge time.Duration) CheckResult {
	r := CheckResult{Name: "newest archive"}
	if len(infos) == 0 {
		r.Detail = "no archive yet"
		return r
	}
	newest := infos[0]
	for _, in := range infos[1:] {
		if in.Created.After(newest.Created) {
			newest = in
		}
	}
	age := s.now().Sub(newest.Created)
	r.Detail = fmt.Sprintf("%s, %s old, %d bytes", newest.Name, age.Round(time.Second), newest.Size)
	if newest.Manifest != nil {
		r.Detail += fmt.Sprintf(", %d keys", newest.Manifest.KeysCount)
	}
	if why := retention.Suspects(retention.FromInfos(infos), s.suspectDrop())[newest.Name]; why != "" {
		r.Detail += ": suspect: " + why
		return r
	}
	if maxAge > 0 && age > maxAge {
		r.Detail += fmt.Sprintf(": older than api.ready_max_age (%s)", maxAge)
		return r
	}
	r.OK = true
	return r
}

// checkEncryption encrypts a few bytes to the configured recipients.
func (s *Service) checkEncryption() CheckResult {
	r := CheckResult{Name: "encryption", OK: true, Detail: "off (backup.encrypt has no recipients)"}
	if len(s.recipients) == 0 {
		return r
	}
	w, err := age.Encrypt(io.Discard, s.recipients...)
	if err == nil {
		_, err = w.Write([]byte("redback check"))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return CheckResult{Name: "encryption", Detail: fmt.Sprintf("encrypt to %d recipients: %v", len(s.recipients), err)}
	}
	r.Detail = fmt.Sprintf("%d recipients", len(s.recipients))
	return r
}
