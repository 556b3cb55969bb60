package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// This file parses raw RESP2 replies (as go-redis's DoRaw returns them)
// without allocating per element: bulk strings come back as sub-slices of the
// reply buffer.

// replyError is an error reply from the server ("-WRONGTYPE ...").
type replyError string

func (e replyError) Error() string { return string(e) }

// isWrongType reports whether err is a WRONGTYPE reply (the key changed type
// between two reads).
func isWrongType(err error) bool {
	var re replyError
	return errors.As(err, &re) && bytes.HasPrefix([]byte(re), []byte("WRONGTYPE"))
}

var errShortReply = errors.New("redis: truncated reply")

// respLine returns the line at b[0:] without CRLF and the index after it.
func respLine(b []byte) ([]byte, int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, 0, errShortReply
	}
	return b[:i-1], i + 1, nil
}

func respInt(line []byte) (int64, error) {
	n, err := strconv.ParseInt(string(line), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: bad integer %q in reply", line)
	}
	return n, nil
}

// parseBulk parses one bulk string (or nil) at b. It returns the value, a
// flag that is false for a nil reply, and the bytes consumed.
func parseBulk(b []byte) (val []byte, ok bool, n int, err error) {
	if len(b) == 0 {
		return nil, false, 0, errShortReply
	}
	line, next, err := respLine(b)
	if err != nil {
		return nil, false, 0, err
	}
	switch line[0] {
	case '$':
		l, err := respInt(line[1:])
		if err != nil {
			return nil, false, 0, err
		}
		if l < 0 {
			return nil, false, next, nil
		}
		end := next + int(l)
		if end+2 > len(b) {
			return nil, false, 0, errShortReply
		}
		return b[next:end:end], true, end + 2, nil
	case '+':
		return line[1:], true, next, nil
	case ':':
		return line[1:], true, next, nil
	case '-':
		return nil, false, 0, replyError(line[1:])
	}
	return nil, false, 0, fmt.Errorf("redis: unexpected reply type %q", line[0])
}

// parseArrayHeader parses "*N\r\n". It returns N (-1 for a nil array) and the
// bytes consumed. An error reply is returned as a replyError.
func parseArrayHeader(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, errShortReply
	}
	line, next, err := respLine(b)
	if err != nil {
		return 0, 0, err
	}
	switch line[0] {
	case '*':
		n, err := respInt(line[1:])
		if err != nil {
			return 0, 0, err
		}
		return int(n), next, nil
	case '-':
		return 0, 0, replyError(line[1:])
	}
	return 0, 0, fmt.Errorf("redis: expected an array, got %q", line[0])
}

// parseBulkArray parses an array of bulk strings into dst (appended).
func parseBulkArray(b []byte, dst [][]byte) ([][]byte, int, error) {
	n, off, err := parseArrayHeader(b)
	if err != nil {
		return dst, 0, err
	}
	for i := 0; i < n; i++ {
		v, _, used, err := parseBulk(b[off:])
		if err != nil {
			return dst, 0, err
		}
		dst = append(dst, v)
		off += used
	}
	return dst, off, nil
}

// parseScan parses a SCAN-family reply: [cursor, [elements...]].
func parseScan(b []byte, dst [][]byte) (cursor uint64, out [][]byte, err error) {
	n, off, err := parseArrayHeader(b)
	if err != nil {
		return 0, dst, err
	}
	if n != 2 {
		return 0, dst, fmt.Errorf("redis: SCAN reply has %d elements", n)
	}
	c, _, used, err := parseBulk(b[off:])
	if err != nil {
		return 0, dst, err
	}
	cursor, err = strconv.ParseUint(string(c), 10, 64)
	if err != nil {
		return 0, dst, fmt.Errorf("redis: bad SCAN cursor %q", c)
	}
	off += used
	dst, _, err = parseBulkArray(b[off:], dst)
	return cursor, dst, err
}
