package codec

import (
	"errors"
	"fmt"
)

// Errors returned by Reader and NewDecoder. Test them with errors.Is.
var (
	// ErrEncrypted: the archive is age-encrypted and no identity was given.
	ErrEncrypted = errors.New("archive is encrypted and no identity was given")
	// ErrWrongKey: none of the given identities opens the archive. It is
	// detected from the age header, before any payload is read, and wraps
	// age's *NoIdentityMatchError.
	ErrWrongKey = errors.New("no given identity matches the archive")
	// ErrCorrupt wraps every error caused by the archive's content:
	// malformed, truncated or invalid JSON, a bad gzip or age stream, a
	// count that does not match. The message says where (byte offset) and
	// what.
	ErrCorrupt = errors.New("corrupt archive")
	// ErrNewerFormat: the archive's format_version is newer than
	// FormatVersion. It does not wrap ErrCorrupt.
	ErrNewerFormat = errors.New("archive format is newer than this redback reads")
	// ErrChecksum: the document's own checksum (its "sha256" member,
	// FORMAT.md "Integrity") differs from the SHA-256 of its content. Next
	// returns it, at the end of the document, instead of io.EOF; the error
	// wraps ErrCorrupt as well.
	ErrChecksum = errors.New("archive checksum mismatch: the archive is damaged")
)

// corruptf returns an error wrapping ErrCorrupt that names the JSON byte
// offset.
func corruptf(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, off, fmt.Sprintf(format, args...))
}
