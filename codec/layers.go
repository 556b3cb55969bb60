package codec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
)

// DefaultGzipLevel is the gzip level NewEncoder uses when
// EncodeOptions.GzipLevel is 0, chosen by measurement (see the package's
// benchmarks): klauspost/compress level 1 sustains well over 100 MB/s of
// archive JSON on one core.
const DefaultGzipLevel = gzip.BestSpeed

// EncodeOptions selects the layers NewEncoder puts around the JSON.
type EncodeOptions struct {
	Gzip bool
	// GzipLevel is a klauspost/compress/gzip level (-3 stateless, 1 to 9);
	// 0 means DefaultGzipLevel.
	GzipLevel int
	// Recipients, when not empty, encrypt the archive with age.
	Recipients []age.Recipient
}

// NewEncoder returns a writer for the JSON document: what is written to it
// goes through gzip (if o.Gzip) and then age (if o.Recipients) into dst.
// Its Close finishes every layer (gzip trailer, last age chunk) but does
// not close dst; an archive whose encoder was not closed is incomplete.
func NewEncoder(dst io.Writer, o EncodeOptions) (io.WriteCloser, error) {
	var closers []io.Closer
	w := dst
	if len(o.Recipients) > 0 {
		aw, err := age.Encrypt(dst, o.Recipients...)
		if err != nil {
			return nil, fmt.Errorf("codec: age: %w", err)
		}
		w = aw
		closers = append(closers, aw)
	}
	if o.Gzip {
		level := o.GzipLevel
		if level == 0 {
			level = DefaultGzipLevel
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, fmt.Errorf("codec: gzip: %w", err)
		}
		w = zw
		closers = append(closers, zw)
	}
	// Close the outermost layer (the one written to) first.
	for i, j := 0, len(closers)-1; i < j; i, j = i+1, j-1 {
		closers[i], closers[j] = closers[j], closers[i]
	}
	return &encoder{w: w, closers: closers}, nil
}

type encoder struct {
	w       io.Writer
	closers []io.Closer
	closed  bool
}

func (e *encoder) Write(p []byte) (int, error) {
	if e.closed {
		return 0, errors.New("codec: write to a closed encoder")
	}
	return e.w.Write(p)
}

func (e *encoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	for _, c := range e.closers {
		if err := c.Close(); err != nil {
			return fmt.Errorf("codec: finish archive: %w", err)
		}
	}
	return nil
}

// DecodeOptions gives what NewDecoder may need.
type DecodeOptions struct {
	// Identities open an age-encrypted archive. For an age ScryptIdentity,
	// the caller should cap the work factor (SetMaxWorkFactor): a hostile
	// header may ask for gigabytes of memory.
	Identities []age.Identity
}

// Layers says which layers an archive has.
type Layers struct {
	Gzip, Age bool
}

// LayersFromName returns the layers an archive's name announces by its
// suffixes: ".age" last, ".gz" before it.
func LayersFromName(name string) Layers {
	var l Layers
	if strings.HasSuffix(name, ".age") {
		l.Age = true
		name = strings.TrimSuffix(name, ".age")
	}
	l.Gzip = strings.HasSuffix(name, ".gz")
	return l
}

const ageMagic = "age-encryption.org/v1\n"

// NewDecoder peels an archive's layers by content: it sniffs the age
// header, then the gzip magic, and returns the plain JSON stream and the
// layers it found (compare them with LayersFromName). It reads src only as
// far as the headers need, and never closes it.
//
// Errors: ErrEncrypted when the archive is encrypted and o.Identities is
// empty; ErrWrongKey (wrapping age's *NoIdentityMatchError) when none of the
// identities opens it, found from the header before any payload; an error
// wrapping ErrCorrupt for a malformed age or gzip header. Reading the
// returned stream gives errors wrapping ErrCorrupt for a damaged or
// truncated age payload or gzip stream (gzip's CRC is checked at its end, so
// data is tentative until io.EOF); errors of src itself are returned as they
// are.
func NewDecoder(src io.Reader, o DecodeOptions) (io.Reader, Layers, error) {
	var l Layers
	sr := &sourceReader{r: src}
	br := bufio.NewReaderSize(sr, 64<<10)
	head, err := br.Peek(len(ageMagic))
	if err != nil && err != io.EOF {
		return nil, l, passOrCorrupt(err, "read archive header")
	}
	var r io.Reader = br
	if bytes.Equal(head, []byte(ageMagic)) {
		l.Age = true
		ar, err := openAge(br, o.Identities)
		if err != nil {
			return nil, l, err
		}
		r = bufio.NewReaderSize(ar, 64<<10)
	}
	pr := r.(*bufio.Reader)
	magic, err := pr.Peek(2)
	if err != nil && err != io.EOF {
		return nil, l, passOrCorrupt(err, "read archive")
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		l.Gzip = true
		zr, err := gzip.NewReader(pr)
		if err != nil {
			return nil, l, passOrCorrupt(err, "gzip header")
		}
		r = zr
	}
	return &layerReader{r: r}, l, nil
}

// openAge opens the age layer whose header starts br (the caller sniffed
// ageMagic) and classifies age's errors: ErrEncrypted without identities,
// ErrWrongKey (wrapping *age.NoIdentityMatchError) when none matches, an
// error wrapping ErrCorrupt for a malformed header, br's source errors as
// they are. Errors of the returned payload are not classified (wrap it in
// a layerReader).
func openAge(br *bufio.Reader, ids []age.Identity) (io.Reader, error) {
	if len(ids) == 0 {
		return nil, ErrEncrypted
	}
	ar, err := age.Decrypt(br, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: %w", ErrWrongKey, err)
		}
		return nil, passOrCorrupt(err, "age header")
	}
	return ar, nil
}

// sourceError marks an error that came from the caller's source, so that
// it is passed on as is rather than reported as a corrupt archive.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// passOrCorrupt returns a source error unwrapped and wraps anything else
// in ErrCorrupt.
func passOrCorrupt(err error, what string) error {
	var se *sourceError
	if errors.As(err, &se) {
		return se.err
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
}

// layerReader classifies the errors of the peeled stream.
type layerReader struct {
	r   io.Reader
	err error
}

func (l *layerReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		err = passOrCorrupt(err, "read archive layers")
		l.err = err
	}
	return n, err
}
