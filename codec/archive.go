package codec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"filippo.io/age"

	"github.com/redback-dev/redback/internal/pipe"
)

// The whole archive stream (FORMAT.md, "Layers and names") is owned here:
// callers hand Create a storage writer and Open a storage reader, and never
// stack gzip, age, buffers or goroutines themselves.
//
// Writing, in the order the bytes travel:
//
//	caller's goroutine:  Writer (JSON encoding, its own 256 KiB buffer)
//	                     -> pipe.Writer (pipeDepth buffers of pipeBufSize)
//	pipe's goroutine:    -> gzip -> age (NewEncoder)
//	                     -> bufio.Writer of storeBufSize -> dst
//
// Reading:
//
//	pipe's goroutine:    src -> age -> gzip (NewDecoder) -> pipe.Reader
//	caller's goroutine:  -> Reader (JSON parsing, checksum)
const (
	pipeDepth    = 4
	pipeBufSize  = 256 << 10
	storeBufSize = 1 << 20 // storage gets large writes: gzip and age hand out small blocks
)

var (
	errAborted      = errors.New("codec: archive writer aborted")
	errReaderClosed = errors.New("codec: archive reader is closed")
)

// ArchiveWriter writes one whole archive: the JSON document of FORMAT.md
// through the layers that EncodeOptions select, into a storage writer. It
// has the key-writing methods of Writer (and so satisfies what a dumper
// needs of a *Writer); they run the JSON encoding in the caller's
// goroutine, while gzip, age and the writes to storage run in a goroutine
// of the ArchiveWriter's own, on another core.
//
// An archive is complete only once Close returned nil. The caller must end
// every ArchiveWriter with Close or Abort, else its goroutine stays
// blocked; after either, the ArchiveWriter never touches dst again.
// Neither closes dst: the caller finishes or discards the storage object
// (commit it after a successful Close; abort it otherwise).
//
// It is not safe for concurrent use: Abort, too, must not run while
// another method does.
type ArchiveWriter struct {
	w    *Writer
	pw   *pipe.Writer
	gate *gate
	enc  io.WriteCloser
	bw   *bufio.Writer

	done bool
	tr   Trailer
	err  error
}

// Create starts an archive to dst with header h (as for NewWriter) and the
// layers of o (as for NewEncoder: gzip when o.Gzip, at o.GzipLevel, then
// age to o.Recipients when there are any). EncodeOptions serve both
// NewEncoder and Create: the layers are the same. Create writes nothing to
// dst; on error it has started nothing and there is nothing to release.
//
// Errors of dst reach the caller wrapped (errors.Is finds them), from the
// write that notices them or at the latest from Close: dst is written from
// another goroutine, so an error shows a few hundred KiB late.
func Create(dst io.Writer, h Header, o EncodeOptions) (*ArchiveWriter, error) {
	bw := bufio.NewWriterSize(dst, storeBufSize)
	enc, err := NewEncoder(bw, o)
	if err != nil {
		return nil, err
	}
	g := &gate{w: enc}
	pw := pipe.NewWriter(g, pipeDepth, pipeBufSize)
	return &ArchiveWriter{w: NewWriter(pw, h), pw: pw, gate: g, enc: enc, bw: bw}, nil
}

// BeginKey is Writer.BeginKey.
func (a *ArchiveWriter) BeginKey(h KeyHeader) error { return a.w.BeginKey(h) }

// WriteString is Writer.WriteString.
func (a *ArchiveWriter) WriteString(v []byte) error { return a.w.WriteString(v) }

// WriteStringPart is Writer.WriteStringPart.
func (a *ArchiveWriter) WriteStringPart(p []byte) error { return a.w.WriteStringPart(p) }

// WriteField is Writer.WriteField.
func (a *ArchiveWriter) WriteField(field, value []byte) error { return a.w.WriteField(field, value) }

// WriteFieldExpire is Writer.WriteFieldExpire.
func (a *ArchiveWriter) WriteFieldExpire(field, value []byte, expireAt int64) error {
	return a.w.WriteFieldExpire(field, value, expireAt)
}

// WriteItem is Writer.WriteItem.
func (a *ArchiveWriter) WriteItem(v []byte) error { return a.w.WriteItem(v) }

// WriteMember is Writer.WriteMember.
func (a *ArchiveWriter) WriteMember(member, score []byte) error {
	return a.w.WriteMember(member, score)
}

// WriteStreamEntry is Writer.WriteStreamEntry.
func (a *ArchiveWriter) WriteStreamEntry(e StreamEntry) error { return a.w.WriteStreamEntry(e) }

// EndKey is Writer.EndKey.
func (a *ArchiveWriter) EndKey() error { return a.w.EndKey() }

// Keys returns the number of keys ended so far.
func (a *ArchiveWriter) Keys() int64 { return a.w.Keys() }

// BytesWritten returns the number of JSON bytes produced so far (before
// gzip and age).
func (a *ArchiveWriter) BytesWritten() int64 { return a.w.BytesWritten() }

// Close finishes every layer, in order: the JSON document's trailer
// (Writer.Close), the pipe (its last buffer written, its goroutine ended),
// gzip's trailer and age's last chunk (the encoder's Close), and the flush
// of the storage buffer into dst. It returns the trailer written. It does
// not close dst.
//
// On any error the archive is incomplete and must be discarded; the
// goroutine is released all the same. Close may be called again: it
// returns the same result. After Abort it returns an error.
func (a *ArchiveWriter) Close() (Trailer, error) {
	if a.done {
		return a.tr, a.err
	}
	a.done = true
	tr, err := a.w.Close()
	if err != nil {
		a.release()
		a.err = err
		return Trailer{}, err
	}
	// The pipe's goroutine ends here: after this only this goroutine
	// touches the encoder and dst.
	if err := a.pw.Close(); err != nil {
		a.err = fmt.Errorf("codec: write archive: %w", err)
		return Trailer{}, a.err
	}
	if err := a.enc.Close(); err != nil {
		a.err = err // "codec: finish archive: ..."
		return Trailer{}, a.err
	}
	if err := a.bw.Flush(); err != nil {
		a.err = fmt.Errorf("codec: write archive: %w", err)
		return Trailer{}, a.err
	}
	a.tr = tr
	return tr, nil
}

// Abort gives up the archive: it releases the goroutine without finishing
// any layer, waiting only for a write to dst in progress, and fails every
// later call (Close returns an error). What reached dst is an incomplete
// archive, to be discarded. Abort after Close, or twice, does nothing, so
// that `defer a.Abort()` may follow Create.
func (a *ArchiveWriter) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.err = errAborted
	a.w.fail(errAborted) // the Writer must not write to the closed pipe
	a.release()
}

// release ends the pipe's goroutine without writing further to dst.
func (a *ArchiveWriter) release() {
	a.gate.shut.Store(true)
	_ = a.pw.Close() // idempotent; its error is the one already reported, or errAborted
}

// gate stands between the pipe's goroutine and the encoder: once shut,
// what is still queued in the pipe is dropped instead of written.
type gate struct {
	w    io.Writer
	shut atomic.Bool
}

func (g *gate) Write(p []byte) (int, error) {
	if g.shut.Load() {
		return 0, errAborted
	}
	return g.w.Write(p)
}

// ArchiveReader reads one whole archive from a storage reader: it peels
// age and gzip (NewDecoder) in a goroutine of its own, reading ahead, and
// parses the JSON (a Reader with default options) in the caller's. It has
// the reading methods of Reader (and so satisfies what a restorer needs of
// a *Reader).
//
// The caller must Close it, before closing src; src is never closed by it.
// As with Reader, chunks are tentative until Next returns io.EOF (the
// document's checksum, gzip's CRC and age's MAC are checked by then).
//
// It is not safe for concurrent use, except Release (as Reader's).
type ArchiveReader struct {
	src    io.Reader
	pr     *pipe.Reader
	r      *Reader
	layers Layers

	ended  bool // Next returned io.EOF
	closed bool
	cerr   error
}

// Open starts reading the archive in src. name is the archive's name in
// storage: the layers found by content must be those its suffixes announce
// (LayersFromName), else Open fails with an error wrapping ErrCorrupt; an
// empty name skips that check. The errors of NewDecoder are Open's
// (ErrEncrypted, ErrWrongKey, ErrCorrupt, src's own); Open reads src only
// as far as the layers' headers. On error there is nothing to release.
func Open(src io.Reader, name string, o DecodeOptions) (*ArchiveReader, error) {
	plain, l, err := NewDecoder(src, o)
	if err != nil {
		return nil, err
	}
	if name != "" {
		if want := LayersFromName(name); want != l {
			return nil, fmt.Errorf("%w: %s: its content (gzip %v, age %v) does not match its name", ErrCorrupt, name, l.Gzip, l.Age)
		}
	}
	pr := pipe.NewReader(plain, pipeDepth, pipeBufSize)
	return &ArchiveReader{src: src, pr: pr, r: NewReader(pr), layers: l}, nil
}

// Layers returns the layers the archive has (found by content).
func (a *ArchiveReader) Layers() Layers { return a.layers }

// Header is Reader.Header. After Close it returns the header if it had
// been read, else an error.
func (a *ArchiveReader) Header() (Header, error) {
	if a.closed && !a.r.hdrDone {
		return Header{}, errReaderClosed
	}
	return a.r.Header()
}

// Next is Reader.Next: io.EOF once the document ended and was checked.
// After Close it returns an error.
func (a *ArchiveReader) Next() (*Chunk, error) {
	if a.closed {
		return nil, errReaderClosed
	}
	c, err := a.r.Next()
	if err == io.EOF {
		a.ended = true
	}
	return c, err
}

// Release is Reader.Release (safe from any goroutine).
func (a *ArchiveReader) Release(c *Chunk) { a.r.Release(c) }

// Trailer is Reader.Trailer: complete once Next returned io.EOF.
func (a *ArchiveReader) Trailer() Trailer { return a.r.Trailer() }

// Offset returns the number of JSON bytes consumed so far.
func (a *ArchiveReader) Offset() int64 { return a.r.Offset() }

// Close releases the goroutine, which then no longer touches src, so that
// src may be closed after it. When Next has returned io.EOF, Close first
// drains what follows the document to the end of src (gzip's trailer,
// nothing at all so far), so that a hash wrapped around src covers the
// whole object; bytes that src yields after the layers ended are an error
// wrapping ErrCorrupt, and src's errors are returned wrapped. Otherwise
// (an error, or the caller stopped early) it reads nothing more and
// returns nil: the archive was not read whole, and the error, if any, is
// the one Next returned.
//
// Close may be called again and returns the same result.
func (a *ArchiveReader) Close() error {
	if a.closed {
		return a.cerr
	}
	a.closed = true
	if !a.ended {
		return a.pr.Close()
	}
	if _, err := io.Copy(io.Discard, a.pr); err != nil {
		a.pr.Close()
		a.cerr = fmt.Errorf("codec: read archive after its end: %w", err)
		return a.cerr
	}
	a.pr.Close()
	// Every layer has seen src's end already (age and gzip check for it);
	// read it once more so that a hash around src is sure to be complete.
	n, err := io.Copy(io.Discard, a.src)
	switch {
	case err != nil:
		a.cerr = fmt.Errorf("codec: read archive after its end: %w", err)
	case n > 0:
		a.cerr = fmt.Errorf("%w: %d bytes after the end of the archive's layers", ErrCorrupt, n)
	}
	return a.cerr
}

// Decrypt removes the age layer of an archive, and only it: what it
// returns is the archive as it would be stored without encryption (gzip
// when it has that layer, else the JSON). src must start with an age
// header (else an error wrapping ErrCorrupt). The errors are NewDecoder's:
// ErrEncrypted when ids is empty, ErrWrongKey (wrapping
// *age.NoIdentityMatchError) when no identity opens the header, ErrCorrupt
// for a malformed header; reading the result gives errors wrapping
// ErrCorrupt for a damaged or truncated payload (its MAC is checked chunk
// by chunk: data is tentative until io.EOF) and src's own errors as they
// are. Decrypt reads src only as far as the header; it never closes it.
func Decrypt(src io.Reader, ids []age.Identity) (io.Reader, error) {
	br := bufio.NewReaderSize(&sourceReader{r: src}, 64<<10)
	head, err := br.Peek(len(ageMagic))
	if err != nil && err != io.EOF {
		return nil, passOrCorrupt(err, "read archive header")
	}
	if !bytes.Equal(head, []byte(ageMagic)) {
		return nil, fmt.Errorf("%w: not age-encrypted (no age header)", ErrCorrupt)
	}
	ar, err := openAge(br, ids)
	if err != nil {
		return nil, err
	}
	return &layerReader{r: ar}, nil
}
