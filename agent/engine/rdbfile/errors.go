package rdbfile

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Sentinel errors. Every error Next returns for a bad file is an *Error
// wrapping one of these (or the underlying reader's error), so callers can
// test with errors.Is.
var (
	// ErrCorrupt is malformed data: a bad length, encoding, blob or
	// structure.
	ErrCorrupt = errors.New("corrupt RDB data")
	// ErrTruncated is input that ends before the RDB data does. It wraps
	// io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("truncated RDB data: %w", io.ErrUnexpectedEOF)
	// ErrChecksum is a CRC-64 trailer that does not match the data.
	ErrChecksum = errors.New("RDB checksum mismatch")
	// ErrUnsupported is a version, opcode or value type this reader does
	// not know (or knows and cannot read, such as pre-release formats).
	ErrUnsupported = errors.New("unsupported RDB content")
	// ErrTooLarge is an item larger than the limits of Options (a blob
	// over MaxBlobBytes, an element over MaxElemBytes).
	ErrTooLarge = errors.New("RDB item too large")
)

// errStopped ends the parse when the consumer stops (Walk's callback
// returned an error, or Close was called during Next).
var errStopped = errors.New("rdbfile: stopped")

// Error describes a problem at a byte offset of the RDB input.
type Error struct {
	Offset int64  // offset in the input where the problem was seen
	Key    []byte // the key being read, nil outside keys
	Msg    string // what is wrong, e.g. "unknown opcode 0xF3"
	Err    error  // the sentinel (ErrCorrupt, ...) or the reader's error
}

func (e *Error) Error() string {
	s := "rdb: " + e.Msg + " at offset " + strconv.FormatInt(e.Offset, 10)
	if e.Key != nil {
		k := e.Key
		if len(k) > 64 {
			k = k[:64]
		}
		s += fmt.Sprintf(" (key %q)", k)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
