package archiving

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// maxArgs and maxBulk bound what one command of the stream may claim, so
// that a corrupt stream fails clearly instead of allocating without end
// (the server's own limits: proto-max-bulk-len is 512 MB by default).
const (
	maxArgs = 1 << 24
	maxBulk = 1 << 32
)

// errProtocol is a stream that is not a sequence of RESP arrays of bulk
// strings.
var errProtocol = errors.New("replication stream: protocol error")

// readCommand reads one command (a RESP array of bulk strings) from br
// and appends its bytes, exactly as received, to dst. It returns dst and
// the command's first two arguments (name and, for SELECT, the database),
// which alias dst's new bytes (nil when absent).
func readCommand(br *bufio.Reader, dst []byte) (out []byte, name, arg1 []byte, err error) {
	line, dst, err := readLine(br, dst)
	if err != nil {
		return dst, nil, nil, err
	}
	if len(line) < 2 || line[0] != '*' {
		return dst, nil, nil, fmt.Errorf("%w: expected an array, got %q", errProtocol, clip(line))
	}
	n, err := strconv.ParseInt(string(line[1:]), 10, 64)
	if err != nil || n < 1 || n > maxArgs {
		return dst, nil, nil, fmt.Errorf("%w: array header %q", errProtocol, clip(line))
	}
	var nameAt, arg1At [2]int
	for i := int64(0); i < n; i++ {
		line, dst, err = readLine(br, dst)
		if err != nil {
			return dst, nil, nil, err
		}
		if len(line) < 2 || line[0] != '$' {
			return dst, nil, nil, fmt.Errorf("%w: expected a bulk string, got %q", errProtocol, clip(line))
		}
		l, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil || l < 0 || l > maxBulk {
			return dst, nil, nil, fmt.Errorf("%w: bulk header %q", errProtocol, clip(line))
		}
		at := len(dst)
		dst, err = readN(br, dst, int(l)+2)
		if err != nil {
			return dst, nil, nil, err
		}
		if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
			return dst, nil, nil, fmt.Errorf("%w: bulk string not ended by CRLF", errProtocol)
		}
		switch i {
		case 0:
			nameAt = [2]int{at, at + int(l)}
		case 1:
			arg1At = [2]int{at, at + int(l)}
		}
	}
	name = dst[nameAt[0]:nameAt[1]]
	if n > 1 {
		arg1 = dst[arg1At[0]:arg1At[1]]
	}
	return dst, name, arg1, nil
}

// readLine appends one CRLF-ended line to dst and returns it without its
// CRLF (aliasing dst).
func readLine(br *bufio.Reader, dst []byte) ([]byte, []byte, error) {
	at := len(dst)
	for {
		frag, err := br.ReadSlice('\n')
		dst = append(dst, frag...)
		if err == bufio.ErrBufferFull {
			if len(dst)-at > 64 {
				return nil, dst, fmt.Errorf("%w: header line too long", errProtocol)
			}
			continue
		}
		if err != nil {
			return nil, dst, err
		}
		break
	}
	line := dst[at:]
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, dst, fmt.Errorf("%w: line %q not ended by CRLF", errProtocol, clip(line))
	}
	return line[:len(line)-2], dst, nil
}

// readN appends exactly n bytes of br to dst.
func readN(br *bufio.Reader, dst []byte, n int) ([]byte, error) {
	dst = grow(dst, n)
	at := len(dst)
	dst = dst[:at+n]
	for off := at; off < len(dst); {
		m, err := br.Read(dst[off:])
		off += m
		if err != nil && off < len(dst) {
			return dst[:off], err
		}
	}
	return dst, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// parseArgs splits one complete command (as readCommand appended it) into
// its arguments, aliasing cmd.
func parseArgs(cmd []byte) ([][]byte, error) {
	i := bytes.IndexByte(cmd, '\n')
	if i < 3 || cmd[0] != '*' {
		return nil, fmt.Errorf("%w: not a command", errProtocol)
	}
	n, err := strconv.Atoi(string(cmd[1 : i-1]))
	if err != nil || n < 1 || n > maxArgs {
		return nil, fmt.Errorf("%w: array header", errProtocol)
	}
	args := make([][]byte, 0, n)
	rest := cmd[i+1:]
	for range n {
		j := bytes.IndexByte(rest, '\n')
		if j < 3 || rest[0] != '$' {
			return nil, fmt.Errorf("%w: bulk header", errProtocol)
		}
		l, err := strconv.Atoi(string(rest[1 : j-1]))
		if err != nil || l < 0 || j+1+l+2 > len(rest) {
			return nil, fmt.Errorf("%w: bulk length", errProtocol)
		}
		args = append(args, rest[j+1:j+1+l])
		rest = rest[j+1+l+2:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: bytes after the command", errProtocol)
	}
	return args, nil
}

// clip bounds what of a bad line an error message shows.
func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
