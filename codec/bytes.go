package codec

import (
	"encoding/base64"
	"unicode/utf8"
)

// b64Prefix is the JSON text that starts a byte string in base64 form
// (FORMAT.md, "Byte strings", rule 2).
const b64Prefix = `"\u0000b64:`

// escapes maps each byte to the escape sequence that replaces it inside a
// JSON string; a zero entry means the byte is copied as is.
var escapes = func() (t [256]string) {
	const hex = "0123456789abcdef"
	for c := 0; c < 0x20; c++ {
		t[c] = `\u00` + string(hex[c>>4]) + string(hex[c&15])
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = `\b`, `\f`, `\n`, `\r`, `\t`
	t['"'], t['\\'] = `\"`, `\\`
	return t
}()

// needsEscape[c] is true when byte c is replaced by escapes[c].
var needsEscape = func() (t [256]bool) {
	for c := range 256 {
		t[c] = escapes[c] != ""
	}
	return t
}()

// IsText reports whether b is written as plain JSON text (rule 1 of
// FORMAT.md): valid UTF-8 that does not begin with the byte 00. Every other
// byte string is written in the "\u0000b64:" form.
func IsText(b []byte) bool {
	return (len(b) == 0 || b[0] != 0) && utf8.Valid(b)
}

// EncodeBytes appends to dst the quoted JSON string that FORMAT.md maps the
// byte string b to, and returns the extended slice.
func EncodeBytes(dst []byte, b []byte) []byte {
	if IsText(b) {
		dst = append(dst, '"')
		dst = appendEscaped(dst, b)
		return append(dst, '"')
	}
	dst = append(dst, b64Prefix...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendEscaped appends the valid UTF-8 text b, escaped for the inside of a
// JSON string. Only '"', '\' and bytes below 0x20 are escaped; since those
// are ASCII, b may be split anywhere (even inside a multi-byte sequence).
func appendEscaped(dst, b []byte) []byte {
	start := 0
	for i := 0; i < len(b); i++ {
		if c := b[i]; needsEscape[c] {
			dst = append(dst, b[start:i]...)
			dst = append(dst, escapes[c]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

// TextChecker decides IsText for a byte string seen in consecutive parts
// (for example a big string read from Redis in windows), without holding
// the parts. The zero value is ready; Write never fails.
type TextChecker struct {
	n       int64   // bytes seen
	bad     bool    // not text
	pend    [4]byte // incomplete UTF-8 sequence at the end of the last part
	npend   int
	started bool
}

// Write adds the next part.
func (t *TextChecker) Write(p []byte) (int, error) {
	n := len(p)
	t.check(p)
	return n, nil
}

func (t *TextChecker) check(p []byte) {
	if len(p) == 0 || t.bad {
		t.n += int64(len(p))
		return
	}
	if t.n == 0 && p[0] == 0 {
		t.bad = true
	}
	t.n += int64(len(p))
	// Complete a sequence left over from the previous part.
	for t.npend > 0 && len(p) > 0 {
		t.pend[t.npend] = p[0]
		t.npend++
		p = p[1:]
		if utf8.FullRune(t.pend[:t.npend]) {
			if !utf8.Valid(t.pend[:t.npend]) {
				t.bad = true
				return
			}
			t.npend = 0
		}
	}
	if len(p) == 0 {
		return
	}
	// Hold back an incomplete sequence at the end of p.
	cut := incompleteTail(p)
	if !utf8.Valid(p[:len(p)-cut]) {
		t.bad = true
		return
	}
	t.npend = copy(t.pend[:], p[len(p)-cut:])
}

// IsText reports whether the parts written so far, taken as one byte
// string, satisfy IsText.
func (t *TextChecker) IsText() bool { return !t.bad && t.npend == 0 }

// Reset forgets the parts written so far.
func (t *TextChecker) Reset() { *t = TextChecker{} }

// incompleteTail returns how many bytes at the end of p form the start of
// a UTF-8 sequence that p does not complete (0 to 3). Bytes that can never
// start a valid sequence are not held back: utf8.Valid rejects them.
func incompleteTail(p []byte) int {
	// Look at the last up to 3 bytes for a leading byte.
	for i := 1; i <= 3 && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a leading byte
			need := 0
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			default:
				need = 2
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

// isJSONNumber reports whether s is a number in JSON syntax (RFC 8259).
func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(s)
}
