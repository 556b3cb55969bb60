package rdbfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/redback-dev/redback/agent/engine/rdbvalue"
)

// The Reader's input side: a buffer over the io.Reader that tracks the
// offset, the running CRC-64 and, when a tee is set, copies every consumed
// byte to it (that is how raw values are captured).

const (
	bufSize   = 64 << 10 // input buffer (it starts at 4 KiB)
	smallRead = 1 << 20  // lengths up to this are allocated up front
)

// tee collects consumed bytes. With flush set, it is called whenever buf
// reaches limit bytes (and must empty buf); without, going beyond limit is
// ErrTooLarge.
type tee struct {
	buf   []byte
	limit int
	flush func() error
	what  string // for the ErrTooLarge message
}

// fill makes at least n (<= bufSize) bytes available at r.buf[r.pos:].
func (r *Reader) fill(n int) error {
	if r.end-r.pos >= n {
		return nil
	}
	if r.pos > 0 {
		r.crc = rdbvalue.CRC64(r.crc, r.buf[r.crcPos:r.pos])
		copy(r.buf, r.buf[r.pos:r.end])
		r.base += int64(r.pos)
		r.end -= r.pos
		r.pos, r.crcPos = 0, 0
	}
	if len(r.buf) < bufSize || n > len(r.buf) {
		// Start small (small files, many Readers), grow to bufSize.
		g := make([]byte, max(min(2*len(r.buf), bufSize), n))
		r.end = copy(g, r.buf[:r.end])
		r.buf = g
	}
	for r.end-r.pos < n {
		if r.rerr != nil {
			return r.readErr()
		}
		m, err := r.rd.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.rerr = err
		} else if m == 0 {
			r.zeroReads++
			if r.zeroReads > 100 {
				r.rerr = io.ErrNoProgress
			}
		}
	}
	return nil
}

func (r *Reader) readErr() error {
	off := r.base + int64(r.end)
	if errors.Is(r.rerr, io.EOF) {
		return &Error{Offset: off, Key: r.curKey(), Msg: "unexpected end of input", Err: ErrTruncated}
	}
	return &Error{Offset: off, Key: r.curKey(), Msg: "read error: " + r.rerr.Error(), Err: r.rerr}
}

// offset is the input offset of the next byte to read.
func (r *Reader) offset() int64 { return r.base + int64(r.pos) }

// consume advances over n available bytes, feeding the tee.
func (r *Reader) consume(n int) error {
	p := r.buf[r.pos : r.pos+n]
	r.pos += n
	t := r.tee
	if t == nil {
		return nil
	}
	if t.flush == nil {
		if len(p) > t.limit-len(t.buf) {
			return r.errf(ErrTooLarge, "%s larger than %d bytes (MaxBlobBytes)", t.what, t.limit)
		}
		t.buf = append(t.buf, p...)
		return nil
	}
	for len(p) > 0 { // pieces of at most limit bytes
		k := min(len(p), t.limit-len(t.buf))
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
		if len(t.buf) >= t.limit {
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reader) readByte() (byte, error) {
	if r.pos >= r.end {
		if err := r.fill(1); err != nil {
			return 0, err
		}
	}
	b := r.buf[r.pos]
	if r.tee == nil {
		r.pos++
		return b, nil
	}
	return b, r.consume(1)
}

// take returns the next n (<= bufSize) bytes, valid until the next read.
func (r *Reader) take(n int) ([]byte, error) {
	if err := r.fill(n); err != nil {
		return nil, err
	}
	p := r.buf[r.pos : r.pos+n]
	if r.tee == nil {
		r.pos += n
		return p, nil
	}
	return p, r.consume(n)
}

// readFull fills dst.
func (r *Reader) readFull(dst []byte) error {
	for len(dst) > 0 {
		if err := r.fill(1); err != nil {
			return err
		}
		k := copy(dst, r.buf[r.pos:r.end])
		if err := r.consume(k); err != nil {
			return err
		}
		dst = dst[k:]
	}
	return nil
}

// appendN appends the next n bytes to dst, growing dst only as the data
// arrives (a huge n in a short file costs nothing).
func (r *Reader) appendN(dst []byte, n uint64) ([]byte, error) {
	if n <= smallRead && uint64(cap(dst)-len(dst)) < n {
		g := make([]byte, len(dst), len(dst)+int(n))
		copy(g, dst)
		dst = g
	}
	for n > 0 {
		if err := r.fill(1); err != nil {
			return dst, err
		}
		k := uint64(r.end - r.pos)
		if k > n {
			k = n
		}
		dst = append(dst, r.buf[r.pos:r.pos+int(k)]...)
		if err := r.consume(int(k)); err != nil {
			return dst, err
		}
		n -= k
	}
	return dst, nil
}

// discard skips n bytes (still feeding the CRC and the tee).
func (r *Reader) discard(n uint64) error {
	for n > 0 {
		if err := r.fill(1); err != nil {
			return err
		}
		k := uint64(r.end - r.pos)
		if k > n {
			k = n
		}
		if err := r.consume(int(k)); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (r *Reader) u32le() (uint32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (r *Reader) u64le() (uint64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

// millis reads an 8-byte little-endian millisecond time.
func (r *Reader) millis() (int64, error) {
	v, err := r.u64le()
	return int64(v), err
}

// rawLength reads an RDB length; enc reports the special 11xxxxxx form
// (an encoded string follows), whose value is then the encoding.
func (r *Reader) rawLength() (n uint64, enc bool, err error) {
	b, err := r.readByte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := r.readByte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(c), false, nil
	case 2:
		switch b {
		case 0x80:
			p, err := r.take(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.take(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, r.errf(ErrCorrupt, "bad length prefix 0x%02X", b)
	}
	return uint64(b & 0x3f), true, nil
}

// length reads a plain RDB length (what is the count of something).
func (r *Reader) length(what string) (uint64, error) {
	n, enc, err := r.rawLength()
	if err != nil {
		return 0, err
	}
	if enc {
		return 0, r.errf(ErrCorrupt, "encoded value where a length (%s) was expected", what)
	}
	return n, nil
}

// errf builds an *Error at the current offset.
func (r *Reader) errf(sentinel error, format string, args ...any) error {
	return &Error{Offset: r.offset(), Key: r.curKey(), Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
