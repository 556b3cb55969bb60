package codec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// The tokenizer half of Reader: buffer management, strings, numbers,
// literals and skipping. Everything here works on r.buf[r.pos:r.end] and
// reads more input only through more/avail.

const (
	readBufSize  = 256 << 10
	maxStringLen = 512 << 20 // Redis's own limit for a value
	maxDepth     = 64
	maxNumberLen = 4096
)

// strStop[c] is true for the bytes that end a run of plain string bytes.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// b64Alphabet[c] is true for the characters of standard base64 and '='.
var b64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()

var b64Strict = base64.StdEncoding.Strict()

func (r *Reader) offset() int64 { return r.base + int64(r.pos) }

func (r *Reader) corrupt(format string, args ...any) error {
	return corruptf(r.offset(), format, args...)
}

// readErr classifies an error of the underlying reader.
func (r *Reader) readErr(err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%w (at JSON byte %d)", err, r.offset())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return r.corrupt("unexpected end of archive")
	}
	return fmt.Errorf("codec: read archive at JSON byte %d: %w", r.offset(), err)
}

// more reads more input, keeping r.buf[r.pos:r.end]. It fails when not a
// single byte could be added.
func (r *Reader) more() error {
	if r.pos > 0 {
		r.hashConsumed()
		n := copy(r.buf, r.buf[r.pos:r.end])
		r.base += int64(r.pos)
		r.end, r.pos, r.hpos = n, 0, 0
	}
	if r.rerr != nil {
		return r.rerr
	}
	if r.eof {
		return r.corrupt("unexpected end of archive")
	}
	if r.end == len(r.buf) {
		return r.corrupt("token too long") // cannot happen: lookahead is small
	}
	for tries := 0; ; tries++ {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		switch {
		case err == io.EOF:
			r.eof = true
		case err != nil:
			r.rerr = r.readErr(err)
			if n > 0 {
				return nil
			}
			return r.rerr
		}
		if n > 0 {
			return nil
		}
		if r.eof {
			return r.corrupt("unexpected end of archive")
		}
		if tries >= 100 {
			r.rerr = r.readErr(io.ErrNoProgress)
			return r.rerr
		}
	}
}

// avail tries to have n bytes buffered; it returns an error only for a
// read error, so callers check r.end-r.pos themselves.
func (r *Reader) avail(n int) error {
	for r.end-r.pos < n && !r.eof {
		if err := r.more(); err != nil {
			if r.rerr != nil {
				return r.rerr
			}
			return nil
		}
	}
	return nil
}

// peekTok skips white space and returns the next byte without consuming
// it.
func (r *Reader) peekTok() (byte, error) {
	for {
		for r.pos < r.end {
			switch c := r.buf[r.pos]; c {
			case ' ', '\t', '\n', '\r':
				r.pos++
			default:
				return c, nil
			}
		}
		if err := r.more(); err != nil {
			return 0, err
		}
	}
}

func describe(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// expect consumes the byte c, after white space.
func (r *Reader) expect(c byte, what string) error {
	t, err := r.peekTok()
	if err != nil {
		return err
	}
	if t != c {
		return r.corrupt("expected %s, found %s", what, describe(t))
	}
	r.pos++
	return nil
}

// next steps through the elements of an object or array whose opening
// byte was consumed (*first set then): it consumes the separating comma
// or the closing byte and reports whether an element follows.
func (r *Reader) next(first *bool, closing byte) (bool, error) {
	c, err := r.peekTok()
	if err != nil {
		return false, err
	}
	if c == closing {
		r.pos++
		return false, nil
	}
	if !*first {
		if c != ',' {
			return false, r.corrupt("expected ',' or %s, found %s", describe(closing), describe(c))
		}
		r.pos++
		c, err = r.peekTok()
		if err != nil {
			return false, err
		}
		if c == closing {
			return false, r.corrupt("unexpected %s after ','", describe(c))
		}
	}
	*first = false
	return true, nil
}

// beginString starts a JSON string (after white space): it consumes the
// opening quote and resets the length count. limit bounds the decoded
// length.
func (r *Reader) beginString(what string) error {
	t, err := r.peekTok()
	if err != nil {
		return err
	}
	if t != '"' {
		return r.corrupt("expected a string for %s, found %s", what, describe(t))
	}
	r.pos++
	r.slen, r.slimit = 0, maxStringLen
	return nil
}

// strBody decodes the current JSON string's characters as UTF-8 bytes,
// appending them to dst (nothing is appended when discard is set), until
// the closing quote (consumed; done is true) or until the next character
// does not fit in max-len(dst) bytes. A surrogateescape (seed archives
// only) may make the bytes invalid UTF-8; otherwise they are valid.
func (r *Reader) strBody(dst []byte, max int, discard bool) ([]byte, bool, error) {
	for {
		if r.pos >= r.end {
			if err := r.more(); err != nil {
				return dst, false, err
			}
		}
		buf := r.buf[:r.end]
		i := r.pos
		var hi byte
		for i < len(buf) && !strStop[buf[i]] {
			hi |= buf[i]
			i++
		}
		atEnd := i == len(buf)
		run := buf[r.pos:i]
		if hi >= 0x80 {
			if atEnd {
				run = run[:len(run)-incompleteTail(run)]
			}
			if !utf8.Valid(run) {
				return dst, false, r.corrupt("invalid UTF-8 in a string")
			}
		}
		full := false
		if !discard && len(run) > max-len(dst) {
			n := max - len(dst)
			for n > 0 && run[n]&0xC0 == 0x80 { // keep whole characters
				n--
			}
			run, full = run[:n], true
		}
		r.slen += int64(len(run))
		if r.slen > r.slimit {
			return dst, false, r.corrupt("string longer than 512 MiB")
		}
		if !discard {
			dst = append(dst, run...)
		}
		r.pos += len(run)
		if full {
			return dst, false, nil
		}
		if atEnd {
			// Consumed up to the end of the buffer, or to an incomplete
			// UTF-8 sequence there.
			if r.pos < r.end {
				if err := r.more(); err != nil {
					return dst, false, err
				}
			}
			continue
		}
		switch c := r.buf[r.pos]; {
		case c == '"':
			r.pos++
			return dst, true, nil
		case c < 0x20:
			return dst, false, r.corrupt("control character 0x%02x in a string", c)
		}
		var e [4]byte
		n, used, err := r.escape(&e)
		if err != nil {
			return dst, false, err
		}
		if !discard && n > max-len(dst) {
			return dst, false, nil
		}
		r.pos += used
		r.slen += int64(n)
		if r.slen > r.slimit {
			return dst, false, r.corrupt("string longer than 512 MiB")
		}
		if !discard {
			dst = append(dst, e[:n]...)
		}
	}
}

func hex4(b []byte) (rune, bool) {
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// escape decodes the escape sequence at r.pos (a backslash) into e without
// consuming it: n bytes of output, used bytes of input.
func (r *Reader) escape(e *[4]byte) (n, used int, err error) {
	if err := r.avail(12); err != nil {
		return 0, 0, err
	}
	if r.end-r.pos < 2 {
		return 0, 0, r.corrupt("unexpected end of archive")
	}
	switch c := r.buf[r.pos+1]; c {
	case '"', '\\', '/':
		e[0] = c
	case 'b':
		e[0] = '\b'
	case 'f':
		e[0] = '\f'
	case 'n':
		e[0] = '\n'
	case 'r':
		e[0] = '\r'
	case 't':
		e[0] = '\t'
	case 'u':
		return r.uescape(e)
	default:
		return 0, 0, r.corrupt("invalid escape %s in a string", describe(c))
	}
	return 1, 2, nil
}

func (r *Reader) uescape(e *[4]byte) (n, used int, err error) {
	if r.end-r.pos < 6 {
		return 0, 0, r.corrupt("unexpected end of archive")
	}
	cp, ok := hex4(r.buf[r.pos+2:])
	if !ok {
		return 0, 0, r.corrupt("invalid \\u escape")
	}
	used = 6
	switch {
	case cp >= 0xD800 && cp < 0xDC00:
		lo := rune(-1)
		if r.end-r.pos >= 12 && r.buf[r.pos+6] == '\\' && r.buf[r.pos+7] == 'u' {
			if v, ok := hex4(r.buf[r.pos+8:]); ok {
				lo = v
			}
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return 0, 0, r.corrupt("lone surrogate \\u%04x in a string", cp)
		}
		cp = 0x10000 + (cp-0xD800)<<10 + (lo - 0xDC00)
		used = 12
	case cp >= 0xDC00 && cp <= 0xDFFF:
		if r.seed && cp >= 0xDC80 && cp <= 0xDCFF {
			// Python's surrogateescape for an undecodable byte.
			e[0] = byte(cp - 0xDC00)
			return 1, 6, nil
		}
		return 0, 0, r.corrupt("lone surrogate \\u%04x in a string", cp)
	}
	return utf8.EncodeRune(e[:], cp), used, nil
}

// skipString consumes the rest of the current string.
func (r *Reader) skipString() error {
	_, _, err := r.strBody(nil, 0, true)
	return err
}

// smallString reads a whole string of at most max bytes into r.name.
func (r *Reader) smallString(what string, max int) ([]byte, error) {
	if err := r.beginString(what); err != nil {
		return nil, err
	}
	s, done, err := r.strBody(r.name[:0], max, false)
	if err != nil {
		return nil, err
	}
	if !done {
		return nil, r.corrupt("%s too long", what)
	}
	r.name = s
	return s, nil
}

// memberName reads an object member's name (after r.next) and the colon.
// A name longer than 64 bytes is returned cut, which no schema name
// matches.
func (r *Reader) memberName() ([]byte, error) {
	if err := r.beginString("a member name"); err != nil {
		return nil, err
	}
	s, done, err := r.strBody(r.name[:0], 64, false)
	if err != nil {
		return nil, err
	}
	if !done {
		if err := r.skipString(); err != nil {
			return nil, err
		}
	}
	r.name = s
	if err := r.expect(':', "':' after a member name"); err != nil {
		return nil, err
	}
	return s, nil
}

// beginBytes starts a byte string (FORMAT.md "Byte strings"): it consumes
// the opening quote and, outside seed archives, the "\u0000b64:" prefix of
// the base64 form. done reports a string that already ended.
func (r *Reader) beginBytes(what string) (done bool, err error) {
	if err := r.beginString(what); err != nil {
		return false, err
	}
	r.b64, r.b64pad, r.nq = false, false, 0
	if r.seed {
		return false, nil
	}
	if err := r.avail(6); err != nil {
		return false, err
	}
	b := r.buf[r.pos:r.end]
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' || b[2] != '0' || b[3] != '0' || b[4] != '0' || b[5] != '0' {
		return false, nil
	}
	r.pos += 6
	var pfx [4]byte
	p, done, err := r.strBody(pfx[:0], 4, false)
	if err != nil {
		return false, err
	}
	if string(p) != "b64:" {
		return false, r.corrupt("a string begins with U+0000 but not with \\u0000b64:")
	}
	r.b64 = true
	r.slen, r.slimit = 0, maxStringLen/3*4+4
	return done, nil
}

// bytesBody decodes the current byte string (after beginBytes), appending
// at most max-len(dst) bytes to dst; done reports its end.
func (r *Reader) bytesBody(dst []byte, max int) ([]byte, bool, error) {
	if !r.b64 {
		return r.strBody(dst, max, false)
	}
	for {
		room := max - len(dst)
		q := min(room/3, 16<<10)
		if q == 0 {
			if r.nq == 0 {
				if err := r.avail(1); err != nil {
					return dst, false, err
				}
				if r.pos < r.end && r.buf[r.pos] == '"' {
					r.pos++
					return dst, true, nil
				}
			}
			return dst, false, nil
		}
		want := q * 4
		if r.b64buf == nil {
			r.b64buf = make([]byte, 0, 64<<10+8)
		}
		chars, done, err := r.strBody(r.b64buf[:r.nq], want, false)
		r.b64buf = chars[:0]
		if err != nil {
			return dst, false, err
		}
		if !done && len(chars) == r.nq {
			// No progress: a character that is not base64 did not fit.
			return dst, false, r.corrupt("invalid base64 in a byte string")
		}
		for _, c := range chars[r.nq:] {
			if !b64Alphabet[c] {
				return dst, false, r.corrupt("invalid base64 in a byte string")
			}
		}
		full := len(chars) / 4 * 4
		if full > 0 {
			if r.b64pad {
				return dst, false, r.corrupt("data after base64 padding")
			}
			if chars[full-1] == '=' {
				r.b64pad = true
			}
			dst = growBytes(dst, full/4*3)
			n, err := b64Strict.Decode(dst[len(dst):len(dst)+full/4*3], chars[:full])
			if err != nil {
				return dst, false, r.corrupt("invalid base64 in a byte string")
			}
			dst = dst[:len(dst)+n]
		}
		r.nq = copy(r.b64buf[:4], chars[full:])
		if done {
			if r.nq != 0 {
				return dst, false, r.corrupt("base64 length is not a multiple of 4")
			}
			return dst, true, nil
		}
	}
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// literal consumes the literal word (true, false, null) at r.pos.
func (r *Reader) literal(word string) error {
	if err := r.avail(len(word)); err != nil {
		return err
	}
	if r.end-r.pos < len(word) || string(r.buf[r.pos:r.pos+len(word)]) != word {
		if r.end-r.pos < len(word) && r.eof {
			return r.corrupt("unexpected end of archive")
		}
		return r.corrupt("invalid literal")
	}
	r.pos += len(word)
	return r.delimited()
}

// delimited checks that the token just consumed is followed by a delimiter
// (or the end of input, which the caller will report).
func (r *Reader) delimited() error {
	if err := r.avail(1); err != nil {
		return err
	}
	if r.pos < r.end {
		switch r.buf[r.pos] {
		case ' ', '\t', '\n', '\r', ',', ']', '}', ':':
		default:
			return r.corrupt("unexpected %s after a value", describe(r.buf[r.pos]))
		}
	}
	return nil
}

// numberText returns the JSON number at r.pos (at most maxNumberLen bytes)
// as a slice of the buffer, valid until the next read, and consumes it.
func (r *Reader) numberText() ([]byte, error) {
	if err := r.avail(maxNumberLen + 1); err != nil {
		return nil, err
	}
	i := r.pos
	for i < r.end {
		c := r.buf[i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			i++
			continue
		}
		break
	}
	s := r.buf[r.pos:i]
	if len(s) > maxNumberLen {
		return nil, r.corrupt("number too long")
	}
	if !isJSONNumber(s) {
		if len(s) == 0 {
			if r.pos < r.end {
				return nil, r.corrupt("unexpected %s", describe(r.buf[r.pos]))
			}
			return nil, r.corrupt("unexpected end of archive")
		}
		return nil, r.corrupt("invalid number %q", s)
	}
	r.pos = i
	if err := r.delimited(); err != nil {
		return nil, err
	}
	return s, nil
}

// readInt reads an integer (no fraction, no exponent) that fits in int64.
func (r *Reader) readInt(what string) (int64, error) {
	start := r.offset()
	s, err := r.numberText()
	if err != nil {
		return 0, err
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, corruptf(start, "%s is not an integer", what)
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, corruptf(start, "%s out of range", what)
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, corruptf(start, "%s out of range", what)
		}
		return -int64(v), nil
	}
	if v > math.MaxInt64 {
		return 0, corruptf(start, "%s out of range", what)
	}
	return int64(v), nil
}

// isNull consumes a null and reports true, or consumes nothing.
func (r *Reader) isNull() (bool, error) {
	c, err := r.peekTok()
	if err != nil || c != 'n' {
		return false, err
	}
	return true, r.literal("null")
}

// intOrNull reads an integer or null (reported as ok false).
func (r *Reader) intOrNull(what string) (v int64, ok bool, err error) {
	null, err := r.isNull()
	if err != nil || null {
		return 0, false, err
	}
	c, _ := r.peekTok()
	if c != '-' && (c < '0' || c > '9') {
		return 0, false, r.corrupt("expected an integer for %s, found %s", what, describe(c))
	}
	v, err = r.readInt(what)
	return v, err == nil, err
}

// expectInt reads an integer.
func (r *Reader) expectInt(what string) (int64, error) {
	c, err := r.peekTok()
	if err != nil {
		return 0, err
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, r.corrupt("expected an integer for %s, found %s", what, describe(c))
	}
	return r.readInt(what)
}

// skipValue consumes any JSON value; depth is the nesting level of the
// value (1 for a top-level member's value).
func (r *Reader) skipValue(depth int) error {
	if depth > maxDepth {
		return r.corrupt("nesting deeper than %d", maxDepth)
	}
	c, err := r.peekTok()
	if err != nil {
		return err
	}
	switch c {
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		r.pos++
		first := true
		for {
			more, err := r.next(&first, closing)
			if err != nil || !more {
				return err
			}
			if c == '{' {
				if err := r.beginString("a member name"); err != nil {
					return err
				}
				if err := r.skipString(); err != nil {
					return err
				}
				if err := r.expect(':', "':' after a member name"); err != nil {
					return err
				}
			}
			if err := r.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case '"':
		r.pos++
		r.slen, r.slimit = 0, maxStringLen
		return r.skipString()
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	default:
		_, err := r.numberText()
		return err
	}
}
