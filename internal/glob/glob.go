// Package glob matches Redis keys against Redis's glob patterns, with the
// semantics of the server's own matcher (stringmatchlen in util.c, which
// KEYS, SCAN MATCH and the like use), so that a pattern selects in an
// archive exactly the keys it selects on a server:
//
//	pattern  matches
//	*        any run of bytes, the empty one included
//	?        any one byte
//	[abc]    one byte of the set; [a-z] a range (either order); [^...] not
//	\c       the byte c itself (also inside [...])
//	c        the byte c itself
//
// Matching is by byte, case-sensitive; the quirks of the server are kept:
// the pattern "*" alone selects every key, the empty one included (KEYS
// and SCAN do not match it at all), while "**" or "a*" never match the
// empty key;
// an unterminated "[..." takes its bytes as the set (and "[^" at the end
// of a pattern matches any one byte), "[a-]" is the range from a to ],
// ranges compare bytes as C's signed char does on x86-64 (so a range that
// spans 0x7f and 0x80 wraps: [\x01-\xff] holds 0xff, 0x00 and 0x01), and a
// pattern that nests more than 1000 stars matches nothing.
//
// Patterns and keys are written on command lines and in URLs in an
// escaped form (Quote, Unquote, Parse): bytes that are not printable text
// are \xHH, and a backslash is \\.
package glob

// maxNesting is the depth of '*' recursion after which the server's
// matcher gives up (no match).
const maxNesting = 1000

// Pattern is a compiled pattern: the raw bytes the server would receive.
type Pattern struct {
	raw []byte
}

// New returns the pattern of the raw bytes p (as given to SCAN MATCH).
// Every byte string is a pattern.
func New(p []byte) Pattern { return Pattern{raw: append([]byte(nil), p...)} }

// Raw returns the pattern's bytes.
func (p Pattern) Raw() []byte { return p.raw }

// Match reports whether s matches the pattern.
func (p Pattern) Match(s []byte) bool { return Match(p.raw, s) }

// Match reports whether s matches the raw pattern p, as the server's
// stringmatchlen does.
func Match(p, s []byte) bool {
	if len(p) == 1 && p[0] == '*' {
		return true // KEYS and SCAN skip matching for "*": it selects the empty key too
	}
	skip := false
	return match(p, s, &skip, 0)
}

// at returns p[i], or 0 past the end (the server's patterns end in a NUL
// that its matcher reads in a few places).
func at(p []byte, i int) byte {
	if i < len(p) {
		return p[i]
	}
	return 0
}

// match follows stringmatchlen_impl step by step; skipLonger is its
// skipLongerMatches (a failed '*' tells the stars before it that longer
// matches are futile).
func match(p, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > maxNesting {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && at(p, 1) == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if match(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			// i indexes p; the server moves a pointer and a length, and
			// may step back one byte past the end (pattern--).
			i := 1
			not := at(p, i) == '^'
			if not {
				i++
			}
			matched := false
			for {
				n := len(p) - i // the server's patternLen
				switch {
				case at(p, i) == '\\' && n >= 2:
					i++
					if p[i] == s[0] {
						matched = true
					}
				case at(p, i) == ']':
					goto closed
				case n <= 0:
					i--
					goto closed
				case n >= 3 && p[i+1] == '-':
					start, end, c := int(int8(p[i])), int(int8(p[i+2])), int(int8(s[0]))
					if start > end {
						start, end = end, start
					}
					i += 2
					if c >= start && c <= end {
						matched = true
					}
				default:
					if p[i] == s[0] {
						matched = true
					}
				}
				i++
			}
		closed:
			if not {
				matched = !matched
			}
			if !matched {
				return false
			}
			s = s[1:]
			p = p[i:] // at the ']' (or the last byte); the step below passes it
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
