package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"filippo.io/age"

	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/sinks"
)

// UploadResult answers POST /api/backup/upload.
type UploadResult struct {
	Success       bool   `json:"success"`
	Filename      string `json:"filename"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256,omitempty"`
	KeysCount     int64  `json:"keys_count"`
	FormatVersion int    `json:"format_version"`
	Compressed    bool   `json:"compressed"`
	Encrypted     bool   `json:"encrypted"`
	// Integrity: IntegrityArchive when the document's own checksum
	// matched, IntegrityNone for a seed or version 1 archive (it parsed;
	// its SHA-256 is recorded from now on).
	Integrity string   `json:"integrity,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Upload stores the archive that src holds under name, as an archive
// copied in (retention never prunes it). It streams src into storage and,
// in the same pass, reads it as an archive (layers that match the name,
// the JSON to its end, the checksums): only an archive read whole is
// committed and listed, with a manifest of its SHA-256; a truncated,
// damaged or hostile upload leaves nothing. An encrypted archive needs an
// identity that opens it (it cannot be checked otherwise). A name that is
// taken is ErrExists.
func (s *Service) Upload(ctx context.Context, name string, src io.Reader, ids []age.Identity) (res UploadResult, err error) {
	defer func() {
		settle(&res.Success, &res.Error, err)
		if err != nil {
			s.log.Warn("upload refused", "file", res.Filename, "err", err)
		}
	}()
	if err := sinks.ValidateName(name); err != nil {
		return res, translate(err)
	}
	defer func(start time.Time) {
		s.observe(Op{Kind: OpUpload, Archive: name, Size: res.Size, Keys: res.KeysCount}, start, err)
	}(s.now())
	res.Filename = name
	l := codec.LayersFromName(name)
	res.Compressed, res.Encrypted = l.Gzip, l.Age
	if l.Age && len(ids) == 0 {
		return res, fmt.Errorf("%w: %s is encrypted, and no identity is configured (restore.identities) to check it before it is listed", ErrInvalid, name)
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
	rd, err := codec.Open(io.TeeReader(src, sw), name, codec.DecodeOptions{Identities: ids})
	if err != nil {
		return res, fmt.Errorf("upload: %w", translate(err))
	}
	defer rd.Close()
	hdr, err := rd.Header()
	if err != nil {
		return res, fmt.Errorf("upload: %w", translate(err))
	}
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		c, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("upload: %w", translate(err))
		}
		rd.Release(c)
	}
	// Close drains the rest of src through the tee (nothing may follow
	// the layers).
	if err := rd.Close(); err != nil {
		return res, fmt.Errorf("upload: %w", translate(err))
	}
	tr := rd.Trailer()
	ni, _ := sinks.ParseName(name)
	m, err := sw.Commit(sinks.Manifest{
		KeysCount: tr.KeysCount, FormatVersion: hdr.FormatVersion, CreatedAt: ni.Time,
		CompletedAt: tr.CompletedAt, Adopted: true, Source: map[string]string{"uploaded": "api"},
	})
	if err != nil {
		return res, fmt.Errorf("store the upload: %w", translate(err))
	}
	committed = true
	res.Size, res.SHA256, res.KeysCount, res.FormatVersion = m.Size, m.SHA256, tr.KeysCount, hdr.FormatVersion
	res.Integrity = IntegrityArchive
	if !tr.Verified {
		res.Integrity = IntegrityNone
		res.Warnings = append(res.Warnings, "the archive carries no checksum of its own (a seed or version 1 archive): it parsed whole; its SHA-256 is recorded from now on")
	}
	s.log.Info("archive uploaded", "file", name, "size", m.Size, "keys", tr.KeysCount, "sha256", m.SHA256)
	return res, nil
}
