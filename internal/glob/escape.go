package glob

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Quote returns the escaped form of a key (or any byte string) for a
// terminal: printable UTF-8 text as it is, a backslash as \\, and every
// other byte (control bytes, invalid UTF-8, non-printable runes) as \xHH
// with two lowercase hex digits. Unquote reverses it.
func Quote(b []byte) string {
	plain := true
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(b) // printable ASCII: the common case, as it is
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		var n int
		if b[0] == '\\' {
			out, n = append(out, '\\', '\\'), 1
		} else {
			out, n = appendRune(out, b)
		}
		b = b[n:]
	}
	return string(out)
}

// appendRune appends the first rune of b as text when it is printable,
// else its bytes as \xHH; it returns the bytes of b it took.
func appendRune(out, b []byte) ([]byte, int) {
	r, n := utf8.DecodeRune(b)
	if r == utf8.RuneError && n <= 1 || !unicode.IsPrint(r) && r != ' ' {
		for _, c := range b[:n] {
			out = append(out, '\\', 'x', hexDigit[c>>4], hexDigit[c&15])
		}
		return out, n
	}
	return append(out, b[:n]...), n
}

const hexDigit = "0123456789abcdef"

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// hexAt decodes the two hex digits at s[i:i+2].
func hexAt(s string, i int) (byte, bool) {
	if i+2 > len(s) {
		return 0, false
	}
	h, ok1 := unhex(s[i])
	l, ok2 := unhex(s[i+1])
	return h<<4 | l, ok1 && ok2
}

// Unquote returns the bytes of a key written in Quote's form: \xHH is the
// byte HH, \\ a backslash, and a backslash before any other character
// stands for that character (so that a key copied from a pattern, \*,
// works too). A backslash at the end, or \x without two hex digits, is an
// error.
func Unquote(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("a backslash at the end (write \\\\ for a backslash)")
		}
		i++
		if s[i] == 'x' {
			b, ok := hexAt(s, i+1)
			if !ok {
				return nil, fmt.Errorf("\\x at byte %d: want two hex digits (\\xHH)", i-1)
			}
			out = append(out, b)
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out, nil
}

// Parse returns the pattern written as s: the raw pattern of Redis's
// syntax, except that \xHH stands for the byte HH, so that any key shown
// by Quote can be matched from a command line or a URL. A byte given so is
// literal: one of the glob specials * ? [ ] \ ^ - becomes that special
// escaped (\x2a is a literal star), any other byte is itself (so that
// [\x01-\x1f] is a range). Every other backslash keeps its Redis meaning
// (\* is a literal star, \\ a backslash, \x without two hex digits a
// literal x). Parse never fails: every byte string is a Redis pattern.
func Parse(s string) Pattern {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		if s[i+1] == 'x' {
			if b, ok := hexAt(s, i+2); ok {
				if isSpecial(b) {
					out = append(out, '\\')
				}
				out = append(out, b)
				i += 3
				continue
			}
		}
		out = append(out, c, s[i+1])
		i++
	}
	return Pattern{raw: out}
}

// isSpecial reports whether b means something to the matcher (^ and -
// inside [...] only).
func isSpecial(b byte) bool {
	switch b {
	case '*', '?', '[', ']', '\\', '^', '-':
		return true
	}
	return false
}

// String returns the pattern in Parse's form: text as it is, other bytes
// as \xHH. Parse(p.String()) matches exactly the keys p matches (its bytes
// may differ: an escaped byte that is no special loses its backslash).
func (p Pattern) String() string {
	b := p.raw
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		if b[0] == '\\' && len(b) >= 2 {
			c := b[1]
			switch {
			case c == 'x' || c < 0x20 || c >= 0x7f:
				// \x would read as a byte escape; the others are not text.
				// An escaped byte that is no special means the byte itself.
				if isSpecial(c) {
					out = append(out, '\\', c)
				} else {
					out = append(out, '\\', 'x', hexDigit[c>>4], hexDigit[c&15])
				}
			default:
				out = append(out, '\\', c)
			}
			b = b[2:]
			continue
		}
		var n int
		if b[0] == '\\' {
			out, n = append(out, '\\'), 1 // a backslash at the end: a literal one
		} else {
			out, n = appendRune(out, b)
		}
		b = b[n:]
	}
	return string(out)
}

// Set is a selection of keys by patterns: a key is selected when it
// matches one of Include (or Include is empty) and none of Exclude.
type Set struct {
	Include, Exclude []Pattern
}

// ParseSet parses include and exclude patterns (Parse's form).
func ParseSet(include, exclude []string) Set {
	var s Set
	for _, p := range include {
		s.Include = append(s.Include, Parse(p))
	}
	for _, p := range exclude {
		s.Exclude = append(s.Exclude, Parse(p))
	}
	return s
}

// Empty reports whether the set selects every key.
func (s Set) Empty() bool { return len(s.Include) == 0 && len(s.Exclude) == 0 }

// Selects reports whether key is selected.
func (s Set) Selects(key []byte) bool {
	if len(s.Include) > 0 {
		in := false
		for _, p := range s.Include {
			if p.Match(key) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	for _, p := range s.Exclude {
		if p.Match(key) {
			return false
		}
	}
	return true
}
