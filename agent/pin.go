package agent

import (
	"context"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/redback-dev/redback/sinks"
)

// MaxNoteBytes bounds a pin's note.
const MaxNoteBytes = 1024

// PinResult answers `redback pin|unpin --json` and POST
// /api/backup/pin|unpin/{filename}.
type PinResult struct {
	Success  bool   `json:"success"`
	Filename string `json:"filename"`
	Pinned   bool   `json:"pinned"`
	PinnedAt string `json:"pinned_at,omitempty"`
	Note     string `json:"note,omitempty"`
	Error    string `json:"error,omitempty"`
}

// errNoManifest is updateManifest's error for an archive without one.
var errNoManifest = errors.New("the archive has no manifest")

// updateManifest changes the manifest of the stored archive name with fn
// (under the Service's manifest lock, so that a pin and a drill's record
// do not undo each other). An archive without a manifest is errNoManifest.
func (s *Service) updateManifest(ctx context.Context, name string, fn func(*sinks.Manifest)) error {
	s.manifestMu.Lock()
	defer s.manifestMu.Unlock()
	in, err := s.sink.Stat(ctx, name)
	if err != nil {
		return translate(err)
	}
	if in.Manifest == nil {
		return errNoManifest
	}
	m := *in.Manifest
	fn(&m)
	if err := s.sink.WriteManifest(ctx, m); err != nil {
		return translate(err)
	}
	return nil
}

// Pin marks an archive as never to be pruned (by any retention rule; it
// counts towards none) and keeps note with it (replacing an earlier note;
// "" keeps the earlier one). Pinning a pinned archive only changes its
// note. An archive without a manifest (copied in by hand) is never pruned
// anyway and cannot be pinned: ErrInvalid says so.
func (s *Service) Pin(ctx context.Context, name, note string) (res PinResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	res.Filename = name
	if err := sinks.ValidateName(name); err != nil {
		res.Filename = ""
		return res, translate(err)
	}
	if err := checkNote(note); err != nil {
		return res, err
	}
	err = s.updateManifest(ctx, name, func(m *sinks.Manifest) {
		if !m.Pinned {
			now := s.now().UTC()
			m.Pinned, m.PinnedAt = true, &now
		}
		if note != "" {
			m.Note = note
		}
		res.Pinned, res.PinnedAt, res.Note = true, isoUTC(*m.PinnedAt), m.Note
	})
	if errors.Is(err, errNoManifest) {
		return res, fmt.Errorf("%w: %s has no manifest (copied in by hand: retention never prunes it); `redback verify %s` records one, then it can be pinned", ErrInvalid, name, name)
	}
	if err != nil {
		return res, err
	}
	s.log.Info("archive pinned", "file", name)
	return res, nil
}

// Unpin removes an archive's pin and its note: retention treats it as any
// other again. Unpinning an archive that is not pinned succeeds.
func (s *Service) Unpin(ctx context.Context, name string) (res PinResult, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	res.Filename = name
	if err := sinks.ValidateName(name); err != nil {
		res.Filename = ""
		return res, translate(err)
	}
	err = s.updateManifest(ctx, name, func(m *sinks.Manifest) {
		m.Pinned, m.PinnedAt, m.Note = false, nil, ""
	})
	if errors.Is(err, errNoManifest) {
		return res, nil // never pinned
	}
	if err != nil {
		return res, err
	}
	s.log.Info("archive unpinned", "file", name)
	return res, nil
}

// checkNote refuses a note that is too long, not UTF-8, or holds control
// characters (it is shown in terminals and the console).
func checkNote(note string) error {
	switch {
	case len(note) > MaxNoteBytes:
		return fmt.Errorf("%w: the note has %d bytes (at most %d)", ErrInvalid, len(note), MaxNoteBytes)
	case !utf8.ValidString(note):
		return fmt.Errorf("%w: the note is not valid UTF-8", ErrInvalid)
	}
	for _, r := range note {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: the note holds a control character (%U)", ErrInvalid, r)
		}
	}
	return nil
}
