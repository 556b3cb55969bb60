// Package replica takes a point-in-time snapshot of a Redis or Valkey
// server the way a replica does: it connects, introduces itself as a
// replica (REPLCONF), asks for a full resynchronisation (PSYNC ? -1) and
// reads the RDB the server produces for it, then disconnects. The server
// forks to write that RDB (copy-on-write memory grows with the writes
// made during the transfer); the account needs the SYNC/PSYNC/REPLCONF
// commands (ACL: +psync +replconf +sync, or @admin... see docs).
//
// Fetch returns the RDB as a stream, whichever framing the server uses:
// "$<length>" (disk-based) or "$EOF:<40-byte mark>" (diskless), with the
// server's keep-alive newlines before it. Nothing is held whole and nothing
// is written to disk.
package replica

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrRefused is a server that will not serve a replica: SYNC or PSYNC
// refused (a managed service, an ACL without the commands, a replica
// that is itself loading).
var ErrRefused = errors.New("the server refuses replication")

// Options say how to reach the server.
type Options struct {
	// Network and Addr: "tcp" and "host:port", or "unix" and a path.
	Network, Addr string
	// Username and Password authenticate (AUTH); none when empty.
	Username, Password string
	// TLS, when set, wraps the connection.
	TLS *tls.Config
	// Dial replaces net.Dialer when set.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each read or write, the wait for the server to start
	// the transfer included (the fork and, disk-based, the whole RDB write
	// happen before the first byte: default 5 minutes), and then every read
	// of the transfer (default 1 minute between two reads).
	StartTimeout, ReadTimeout time.Duration
	// Version, when set, is announced as the replica's version (REPLCONF
	// version, Valkey 8+): Valkey writes the RDB of the newest version the
	// replica announces, and without it falls back to RDB 11, which cannot
	// hold hashes with field TTLs (the transfer then fails). Give the
	// server's own version. Redis ignores it.
	Version string
	// RDBOnly asks for the RDB alone (REPLCONF rdb-only 1, Redis 7+ and
	// Valkey): the server then sends no command stream after it. Ignored
	// when the server does not know it.
	RDBOnly bool
}

// Snapshot is a running transfer. Read the RDB from it, then Close it.
type Snapshot struct {
	// ReplID and Offset are where the snapshot sits in the server's
	// replication stream (+FULLRESYNC <replid> <offset>).
	ReplID string
	Offset int64
	// Diskless says the server streamed the RDB with an EOF mark.
	Diskless bool
	// Continued says the server accepted a partial resynchronisation
	// (+CONTINUE, see Sync): there is no RDB, the command stream starts at
	// Offset+1, and ReplID is the server's current replication ID (a new
	// one after a failover).
	Continued bool

	wmu     sync.Mutex // serialises writes (Ack) with the handshake's
	conn    net.Conn
	br      *bufio.Reader
	body    io.Reader
	timeout time.Duration
	err     error
}

// Fetch connects, performs the replica handshake and returns the snapshot
// positioned at the first byte of the RDB. ctx bounds the handshake and
// the wait for the transfer; cancelling it later closes the connection.
func Fetch(ctx context.Context, o Options) (*Snapshot, error) {
	return Sync(ctx, o, "", 0)
}

// Sync is Fetch asking to continue the stream of replication ID replid
// from offset next (the first byte wanted: PSYNC replid next). When the
// server agrees (+CONTINUE), the Snapshot is Continued, holds no RDB, and
// Stream reads the commands from next on. Otherwise (+FULLRESYNC: the
// backlog no longer holds next, another history, a restart) it is a new
// snapshot as Fetch returns. An empty replid asks for a full
// resynchronisation (PSYNC ? -1). Without Options.RDBOnly the command
// stream follows the RDB on the same connection: read the RDB to its end,
// then Stream.
func Sync(ctx context.Context, o Options, replid string, next int64) (*Snapshot, error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = time.Minute
	}
	dial := o.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	conn, err := dial(ctx, network, o.Addr)
	if err != nil {
		return nil, fmt.Errorf("replica: connect: %w", err)
	}
	if o.TLS != nil {
		tc := tls.Client(conn, o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("replica: tls: %w", err)
		}
		conn = tc
	}
	s := &Snapshot{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), timeout: o.ReadTimeout}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := s.handshake(o); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("replica: %w", ctx.Err())
		}
		return nil, err
	}
	if err := s.start(o.StartTimeout, replid, next); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("replica: %w", ctx.Err())
		}
		return nil, err
	}
	return s, nil
}

// command sends one command and reads its one-line reply.
func (s *Snapshot) command(args ...string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	s.conn.SetDeadline(time.Now().Add(s.timeout))
	s.wmu.Lock()
	_, err := s.conn.Write(b.Bytes())
	s.wmu.Unlock()
	if err != nil {
		return "", fmt.Errorf("replica: %s: %w", args[0], err)
	}
	line, err := s.line()
	if err != nil {
		return "", fmt.Errorf("replica: %s: %w", args[0], err)
	}
	return line, nil
}

// line reads one reply line without its CRLF; an error reply is an error.
func (s *Snapshot) line() (string, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", errors.New("reply line too long")
	}
	if err != nil {
		return "", err
	}
	l := strings.TrimRight(string(line), "\r\n")
	if strings.HasPrefix(l, "-") {
		return "", &replyError{msg: l[1:]}
	}
	return l, nil
}

// replyError is an error reply of the server.
type replyError struct{ msg string }

func (e *replyError) Error() string { return e.msg }

func (s *Snapshot) handshake(o Options) error {
	if o.Password != "" {
		args := []string{"AUTH", o.Password}
		if o.Username != "" {
			args = []string{"AUTH", o.Username, o.Password}
		}
		if _, err := s.command(args...); err != nil {
			return fmt.Errorf("replica: AUTH failed: %w", redactAuth(err))
		}
	}
	if _, err := s.command("PING"); err != nil {
		return err
	}
	// The port a real replica announces; 0 is refused by some versions.
	if _, err := s.command("REPLCONF", "listening-port", "0"); err != nil {
		if isRefusal(err) {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		// Older servers accept no port 0: announce a dummy one.
		if _, err := s.command("REPLCONF", "listening-port", "1"); err != nil {
			return refusal(err)
		}
	}
	if _, err := s.command("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return refusal(err)
	}
	if o.Version != "" {
		// Unknown to Redis (an error reply, ignored).
		_, _ = s.command("REPLCONF", "version", o.Version)
	}
	if o.RDBOnly {
		// Unknown to servers before Redis 7.0: the transfer then simply
		// continues with the command stream, which Close cuts off.
		_, _ = s.command("REPLCONF", "rdb-only", "1")
	}
	return nil
}

func isRefusal(err error) bool {
	var re *replyError
	return errors.As(err, &re)
}

func refusal(err error) error {
	if isRefusal(err) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}

// redactAuth keeps AUTH's error reply (it names no secret) and drops
// anything else's detail.
func redactAuth(err error) error {
	if isRefusal(err) {
		return err
	}
	return errors.New("connection failed during AUTH")
}

// start sends PSYNC and reads up to the first byte of the RDB, or past
// +CONTINUE.
func (s *Snapshot) start(startTimeout time.Duration, replid string, next int64) error {
	psync := []string{"PSYNC", "?", "-1"}
	if replid != "" {
		psync = []string{"PSYNC", replid, strconv.FormatInt(next, 10)}
	}
	reply, err := s.command(psync...)
	// Keep-alive newlines may come first (the server waits before forking:
	// repl-diskless-sync-delay).
	deadline := time.Now().Add(startTimeout)
	for err == nil && reply == "" {
		s.conn.SetReadDeadline(deadline)
		reply, err = s.line()
	}
	if err != nil {
		return refusal(err)
	}
	f := strings.Fields(reply)
	if replid != "" && len(f) >= 1 && len(f) <= 2 && f[0] == "+CONTINUE" {
		s.Continued, s.ReplID, s.Offset = true, replid, next-1
		if len(f) == 2 {
			s.ReplID = f[1]
		}
		s.body = strings.NewReader("")
		return nil
	}
	if len(f) != 3 || f[0] != "+FULLRESYNC" {
		return fmt.Errorf("%w: PSYNC answered %q, not +FULLRESYNC", ErrRefused, truncate(reply, 80))
	}
	s.ReplID = f[1]
	if s.Offset, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return fmt.Errorf("replica: PSYNC offset %q: %w", truncate(f[2], 30), err)
	}
	// The server may send newlines (keep-alives) while it forks and, for a
	// disk-based transfer, writes the RDB; then the bulk header.
	for {
		s.conn.SetReadDeadline(deadline)
		b, err := s.br.ReadByte()
		if err == io.EOF {
			return fmt.Errorf("replica: the server closed the connection before the snapshot began (a failed fork or RDB write, a key it cannot write in the RDB version it chose for this replica, or the replica killed: its log says which): %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("replica: waiting for the snapshot: %w", err)
		}
		if b == '\n' {
			continue
		}
		if b == '-' {
			l, _ := s.br.ReadString('\n')
			return fmt.Errorf("%w: %s", ErrRefused, strings.TrimSpace(l))
		}
		if b != '$' {
			return fmt.Errorf("replica: unexpected byte %q before the snapshot", b)
		}
		break
	}
	l, err := s.line()
	if err != nil {
		return fmt.Errorf("replica: snapshot header: %w", err)
	}
	if mark, ok := strings.CutPrefix(l, "EOF:"); ok {
		if len(mark) != eofMarkLen {
			return fmt.Errorf("replica: EOF mark of %d bytes, want %d", len(mark), eofMarkLen)
		}
		s.Diskless = true
		s.body = &markReader{r: s.br, mark: []byte(mark)}
	} else {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("replica: snapshot length %q", truncate(l, 30))
		}
		s.body = &lengthReader{r: s.br, n: n}
	}
	return nil
}

const eofMarkLen = 40

// Read reads the RDB; it returns io.EOF at its end (the length reached, or
// the EOF mark seen). A read that waits longer than the read timeout fails.
func (s *Snapshot) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	s.conn.SetReadDeadline(time.Now().Add(s.timeout))
	n, err := s.body.Read(p)
	if err != nil && err != io.EOF {
		if err == io.ErrUnexpectedEOF || errors.Is(err, net.ErrClosed) || isEOF(err) {
			err = fmt.Errorf("replica: the connection ended before the snapshot did: %w", io.ErrUnexpectedEOF)
		} else {
			err = fmt.Errorf("replica: read snapshot: %w", err)
		}
		s.err = err
	}
	return n, err
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// Stream returns the command stream that follows the RDB (read the RDB to
// its io.EOF first) or +CONTINUE. Each read waits at most the read
// timeout (the server PINGs its replicas every repl-ping-replica-period,
// 10 s by default). It is not safe for concurrent reads; Ack may run
// beside it.
func (s *Snapshot) Stream() io.Reader { return streamReader{s} }

type streamReader struct{ s *Snapshot }

func (r streamReader) Read(p []byte) (int, error) {
	r.s.conn.SetReadDeadline(time.Now().Add(r.s.timeout))
	n, err := r.s.br.Read(p)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("replica: the server closed the stream: %w", io.ErrUnexpectedEOF)
		} else {
			err = fmt.Errorf("replica: read stream: %w", err)
		}
	}
	return n, err
}

// Ack tells the server that the replica has processed the stream up to
// offset (REPLCONF ACK offset). It is safe beside Stream's reads; a write
// waits at most the read timeout.
func (s *Snapshot) Ack(offset int64) error {
	off := strconv.FormatInt(offset, 10)
	msg := fmt.Sprintf("*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n", len(off), off)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := io.WriteString(s.conn, msg); err != nil {
		return fmt.Errorf("replica: ack: %w", err)
	}
	return nil
}

// Close disconnects; the server drops the replica.
func (s *Snapshot) Close() error { return s.conn.Close() }

// lengthReader reads exactly n bytes; fewer is io.ErrUnexpectedEOF.
type lengthReader struct {
	r io.Reader
	n int64
}

func (l *lengthReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err == io.EOF {
		if l.n > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// markReader reads up to the EOF mark, which may arrive split across
// reads. It reads r only through Peek and Discard, so that nothing after
// the mark is consumed: the command stream that follows stays in r.
type markReader struct {
	r    *bufio.Reader // its buffer must hold more than len(mark) bytes
	mark []byte
	done bool
}

func (m *markReader) Read(p []byte) (int, error) {
	if m.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	// At least a whole mark's worth: either it is the mark, or its first
	// byte is payload.
	if _, err := m.r.Peek(len(m.mark)); err != nil {
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	win, _ := m.r.Peek(m.r.Buffered())
	i := bytes.Index(win, m.mark)
	switch {
	case i == 0:
		m.done = true
		_, _ = m.r.Discard(len(m.mark))
		return 0, io.EOF
	case i > 0:
		win = win[:i]
	default:
		// A mark starting in the last len(mark)-1 bytes is not whole yet.
		win = win[:len(win)-len(m.mark)+1]
	}
	n := copy(p, win)
	_, _ = m.r.Discard(n)
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
