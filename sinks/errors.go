package sinks

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"

	"gocloud.dev/gcerrors"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNotFound: the archive (or the object asked for) does not exist.
	ErrNotFound = errors.New("archive not found")
	// ErrExists: an archive with that name already exists; nothing was
	// overwritten.
	ErrExists = errors.New("archive already exists")
	// ErrInvalidName: the name is not a valid archive name; storage was not
	// touched.
	ErrInvalidName = errors.New("invalid archive name")
	// ErrNoStorage: OpenExisting found no folder where the storage should
	// be; nothing was created.
	ErrNoStorage = errors.New("the storage folder does not exist")
)

// maxDetail bounds the length of a storage error's text in our messages.
const maxDetail = 400

// opError is the only error type that leaves this package for storage
// failures. It unwraps to one of our sentinels or to context.Canceled /
// context.DeadlineExceeded, never to a gocloud, AWS or GCS error type, and its
// text has been cleaned of local absolute paths.
type opError struct {
	op   string // "create", "commit", "open", ...
	name string // archive name (already validated) or ""
	kind error  // sentinel or context error, may be nil
	msg  string // cleaned detail, may be ""
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString(e.op)
	if e.name != "" {
		b.WriteString(" ")
		b.WriteString(e.name)
	}
	b.WriteString(": ")
	switch {
	case e.msg != "":
		b.WriteString(e.msg)
	case e.kind != nil:
		b.WriteString(e.kind.Error())
	default:
		b.WriteString("storage error")
	}
	return b.String()
}

func (e *opError) Unwrap() error { return e.kind }

// newError returns an opError of the given kind with no further detail.
func newError(op, name string, kind error) error {
	return &opError{op: op, name: name, kind: kind}
}

// errorf returns an opError carrying a fixed message (which must not contain
// paths or secrets).
func errorf(op, name string, kind error, msg string) error {
	return &opError{op: op, name: name, kind: kind, msg: msg}
}

// translate turns any error from gocloud, the OS or a cloud SDK into an
// opError: NotFound becomes ErrNotFound, a failed precondition ErrExists,
// cancellation the context error; the text is cleaned of root (the local
// folder's absolute path, or "").
func translate(op, name, root string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	e := &opError{op: op, name: name}
	// A store may answer with one of our sentinels (a folder's commit
	// finding the name taken).
	for _, kind := range []error{ErrNotFound, ErrExists, ErrInvalidName} {
		if errors.Is(err, kind) {
			e.kind = kind
			return e
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		e.kind = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		e.kind = context.DeadlineExceeded
	default:
		switch gcerrors.Code(err) {
		case gcerrors.NotFound:
			e.kind = ErrNotFound
			return e
		case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
			e.kind = ErrExists
			return e
		case gcerrors.Canceled:
			e.kind = context.Canceled
		case gcerrors.DeadlineExceeded:
			e.kind = context.DeadlineExceeded
		}
		if errors.Is(err, fs.ErrNotExist) {
			e.kind = ErrNotFound
			return e
		}
	}
	if e.kind != nil {
		return e
	}
	e.msg = cleanDetail(err, root)
	return e
}

// cleanDetail renders err without local paths: file system errors keep only
// their operation and errno text; anything else has root replaced and the
// gocloud "blob (key ...) (code=...)" preamble removed.
func cleanDetail(err error, root string) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Op + ": " + le.Err.Error()
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "blob ") {
		if i := strings.Index(msg, "(code="); i >= 0 {
			if j := strings.Index(msg[i:], "): "); j >= 0 {
				msg = msg[i+j+3:]
			}
		}
	}
	if root != "" && root != string(os.PathSeparator) {
		msg = strings.ReplaceAll(msg, root, "<folder>")
	}
	if len(msg) > maxDetail {
		msg = msg[:maxDetail] + "..."
	}
	return msg
}
