package sinks

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// nameRE is the only shape an archive name may have. \d matches ASCII digits
// only, so look-alike digits from other scripts never match.
var nameRE = regexp.MustCompile(`^redis_backup_([0-9]{8})_([0-9]{6})\.json(\.gz)?(\.age)?$`)

// nameTimeLayout is the layout of the time inside an archive name (UTC).
const nameTimeLayout = "20060102_150405"

// maxQuoted bounds how much of a refused name is echoed in an error message.
const maxQuoted = 64

// NameInfo is what an archive name says about the archive.
type NameInfo struct {
	// Time is the backup's start time, in UTC, to the second.
	Time time.Time
	// Compressed is true for names with the ".gz" layer.
	Compressed bool
	// Encrypted is true for names with the ".age" layer.
	Encrypted bool
}

// ValidateName returns nil when name is a valid archive name:
// redis_backup_YYYYMMDD_HHMMSS.json, optionally followed by ".gz" and then
// ".age", with a real calendar date and time of day. Anything else (paths,
// other extensions, non-ASCII digits, surrounding spaces) gets an error that
// wraps ErrInvalidName and quotes at most the first 64 bytes of the name.
func ValidateName(name string) error {
	_, err := ParseName(name)
	return err
}

// ParseName validates name as ValidateName does and returns what it encodes.
func ParseName(name string) (NameInfo, error) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return NameInfo{}, invalidName(name, "")
	}
	stamp := m[1] + "_" + m[2]
	t, err := time.ParseInLocation(nameTimeLayout, stamp, time.UTC)
	if err != nil || t.Format(nameTimeLayout) != stamp {
		return NameInfo{}, invalidName(name, "no such date or time")
	}
	return NameInfo{Time: t, Compressed: m[3] != "", Encrypted: m[4] != ""}, nil
}

// NewName returns the archive name for a backup started at t (converted to
// UTC and truncated to the second) with the given layers.
func NewName(t time.Time, compressed, encrypted bool) string {
	var b strings.Builder
	b.WriteString("redis_backup_")
	b.WriteString(t.UTC().Format(nameTimeLayout))
	b.WriteString(".json")
	if compressed {
		b.WriteString(".gz")
	}
	if encrypted {
		b.WriteString(".age")
	}
	return b.String()
}

// invalidName builds the ErrInvalidName error for name, quoting a bounded,
// escaped prefix of it.
func invalidName(name, why string) error {
	q := quoteName(name)
	if why != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidName, q, why)
	}
	return fmt.Errorf("%w %s", ErrInvalidName, q)
}

// quoteName quotes at most maxQuoted bytes of name (cut on a rune boundary)
// with %q, so control bytes, NULs and invalid UTF-8 appear escaped.
func quoteName(name string) string {
	if len(name) <= maxQuoted {
		return fmt.Sprintf("%q", name)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", name[:cut])
}
