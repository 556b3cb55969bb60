// Package scratch runs a throw-away redis-server or valkey-server: in a
// private temporary folder, listening on a unix socket only, persisting
// nothing until asked (SAVE), removed with everything it wrote on Stop.
// `redback export` restores an archive into one and takes its RDB file:
// the server's own RDB writer, so that the file loads into that server.
package scratch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Server is a running scratch server.
type Server struct {
	// Binary is the server executable; Socket its unix socket.
	Binary, Socket string
	// Kind ("redis" or "valkey") and Version, from `BINARY --version`.
	Kind, Version string

	dir  string
	cmd  *exec.Cmd
	done chan error
}

// RDBFile is the server's dump file, written by SAVE.
func (s *Server) RDBFile() string { return filepath.Join(s.dir, "dump.rdb") }

// URL is a redis URL of the server's database db.
func (s *Server) URL(db int) string { return "unix://" + s.Socket + "?db=" + strconv.Itoa(db) }

// Identify runs `BINARY --version` and returns the server's kind and
// version ("redis", "7.0.15").
func Identify(ctx context.Context, binary string) (kind, version string, err error) {
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", binary, err)
	}
	// "Redis server v=7.0.15 sha=..." or "Valkey server v=9.1.2 sha=...".
	f := strings.Fields(string(out))
	if len(f) < 3 || !strings.HasPrefix(f[2], "v=") {
		return "", "", fmt.Errorf("%s --version: unexpected answer %q", binary, strings.TrimSpace(string(out)))
	}
	return strings.ToLower(f[0]), strings.TrimPrefix(f[2], "v="), nil
}

// Start starts binary with databases databases (at least 16) and waits up
// to a minute for it to answer. The caller must Stop it.
func Start(ctx context.Context, binary string, databases int) (*Server, error) {
	kind, version, err := Identify(ctx, binary)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redback-scratch-")
	if err != nil {
		return nil, err
	}
	s := &Server{Binary: binary, Socket: filepath.Join(dir, "s.sock"), Kind: kind, Version: version, dir: dir, done: make(chan error, 1)}
	args := []string{
		"--port", "0",
		"--unixsocket", s.Socket,
		"--unixsocketperm", "700",
		"--dir", dir,
		"--dbfilename", "dump.rdb",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--databases", strconv.Itoa(max(databases, 16)),
		"--maxmemory", "0",
		"--logfile", filepath.Join(dir, "server.log"),
	}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		if err := s.ping(); err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			s.done <- err
			log := s.logTail()
			s.Stop()
			return nil, fmt.Errorf("%s exited at start (%v): %s", binary, err, log)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s did not answer within a minute", binary)
		}
	}
}

// ping sends PING over the socket.
func (s *Server) ping() error {
	c, err := net.DialTimeout("unix", s.Socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// logTail is the end of the server's log, for an error message.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	b = bytes.TrimSpace(b)
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return string(b)
}

// Stop kills the server and removes its folder (and the RDB file in it).
// It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
	_ = os.RemoveAll(s.dir)
}
