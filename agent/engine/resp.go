// Raw RESP2 replies (as go-redis's DoRaw returns them), parsed without
// allocating per element: bulk strings come back as sub-slices of the reply
// buffer. parseValue, which allocates, serves the rare replies (XINFO,
// XRANGE).

package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// replyError is an error reply from the server ("-WRONGTYPE ...").
type replyError string

func (e replyError) Error() string { return string(e) }

// RedisError makes replyError a redis.Error, so that go-redis's helpers
// (redis.HasErrorPrefix) and isReply know it.
func (replyError) RedisError() {}

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

// parseValue parses any RESP2 reply into []byte, int64 (as []byte text),
// nil or []any. It allocates; it serves the rare replies (XINFO, XRANGE).
func parseValue(b []byte, depth int) (any, int, error) {
	if depth > 16 {
		return nil, 0, fmt.Errorf("redis: reply nested too deep")
	}
	if len(b) == 0 {
		return nil, 0, errShortReply
	}
	if b[0] != '*' {
		v, ok, n, err := parseBulk(b)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, n, nil
		}
		return v, n, nil
	}
	n, off, err := parseArrayHeader(b)
	if err != nil {
		return nil, 0, err
	}
	if n < 0 {
		return nil, off, nil
	}
	arr := make([]any, 0, n)
	for i := 0; i < n; i++ {
		v, used, err := parseValue(b[off:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		arr = append(arr, v)
		off += used
	}
	return arr, off, nil
}
