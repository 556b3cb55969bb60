// Package redistest starts throw-away redis-server processes for tests and
// benchmarks: each in its own temporary directory, listening on a unix
// socket and on a free loopback port, never on the machine's own 6379.
//
// Start runs the default server (REDIS_SERVER, or redis-server on PATH);
// StartServer runs one of the servers of Matrix by name, as
// scripts/install-servers.sh unpacks them from Debian's archive (see
// matrix.go).
//
// When a server cannot be found the caller's test fails (it is never
// skipped): a test that needs a server must not pass without one.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server (or valkey-server) owned by a test.
type Server struct {
	Name   string // the Matrix name it was started by; "" for the default server
	Dir    string // the server's working directory
	Socket string // unix socket path
	Port   int    // loopback TCP port
	// TLSPort is the loopback TLS port of a server started by StartTLS
	// (0 otherwise).
	TLSPort int
	cmd     *exec.Cmd
	done    chan struct{}
}

// Binary returns the path of redis-server, from REDIS_SERVER or PATH.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found (install it: apt-get install redis-server): %w", err)
	}
	return p, nil
}

// Start starts a server for t and stops it when t ends. extra arguments are
// passed to redis-server as "--name value" pairs (for example
// "--maxmemory", "10mb"). It fails t when no server can be started.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s, err := StartDir(t.TempDir(), extra...)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartDir starts a server in dir (which must exist). The caller stops it.
func StartDir(dir string, extra ...string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return startDir(dir, "", bin, extra)
}

// startDir starts bin in dir, as Server name, on a free loopback port.
func startDir(dir, name, bin string, extra []string) (*Server, error) {
	return startDirOn(dir, name, bin, nil, extra, freePort)
}

// startDirOn is startDir with the port picker pick; lead goes before the
// arguments (a config file).
func startDirOn(dir, name, bin string, lead, extra []string, pick func() (int, error)) (*Server, error) {
	label := "redis-server"
	if name != "" {
		label = name
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		// A unix socket path is limited to about 104 bytes; keep it short.
		sockDir, err := os.MkdirTemp("", "rt")
		if err != nil {
			return nil, err
		}
		sock := filepath.Join(sockDir, "redis.sock")
		port, err := pick()
		if err != nil {
			return nil, err
		}
		args := append(append([]string(nil), lead...),
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--unixsocket", sock,
			"--unixsocketperm", "700",
			"--dir", dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--enable-debug-command", "yes",
			"--logfile", filepath.Join(dir, "redis.log"),
		)
		args = append(args, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		// What the server (or the wrapper of a Matrix server) says before
		// its log is open: a file, not a pipe, so that a forked child
		// (BGSAVE) still running holds up nothing.
		stderrPath := filepath.Join(sockDir, "stderr")
		stderr, err := os.Create(stderrPath)
		if err != nil {
			_ = os.RemoveAll(sockDir)
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		// A process group of its own, so that Stop also ends a forked
		// child (BGSAVE, a disk-based replica sync) that would otherwise
		// outlive the server and write into dir while the test removes it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		stderr.Close()
		if err != nil {
			_ = os.RemoveAll(sockDir)
			return nil, fmt.Errorf("start %s: %w", label, err)
		}
		s := &Server{Name: name, Dir: dir, Socket: sock, Port: port, cmd: cmd, done: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(s.done) }()
		if err := s.waitReady(label, 10*time.Second); err != nil {
			s.Kill()
			lastErr = fmt.Errorf("%s (%s): %w; log: %s%s", label, bin, err,
				tail(filepath.Join(dir, "redis.log")), stderrTail(stderrPath))
			s.Stop()
			continue // most likely the port was taken between probe and bind
		}
		return s, nil
	}
	return nil, lastErr
}

func (s *Server) waitReady(label string, max time.Duration) error {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start", label)
		default:
		}
		c, err := net.DialTimeout("unix", s.Socket, 200*time.Millisecond)
		if err == nil {
			_, _ = c.Write([]byte("PING\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			// -NOAUTH: the server is up and wants a password.
			if err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s", label, max)
}

// URL returns a redis:// URL for database db over TCP.
func (s *Server) URL(db int) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/%d", s.Port, db)
}

// SocketURL returns a unix:// URL for database db.
func (s *Server) SocketURL(db int) string {
	return fmt.Sprintf("unix://%s?db=%d", s.Socket, db)
}

// Client returns a client for database db, closed when t ends.
func (s *Server) Client(t testing.TB, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: s.Socket, DB: db, Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server and removes its socket directory. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.Kill()
	_ = os.RemoveAll(filepath.Dir(s.Socket))
}

// Kill stops the server abruptly (as a crash would), leaving its files.
// A forked child of the server (its process group) is killed too, and
// Kill waits until the group is gone, 200 ms at most (a killed child that
// nobody reaps stays a zombie, which no longer writes).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = s.cmd.Process.Kill()
	<-s.done
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
}

// Digest returns DEBUG DIGEST-VALUE of key in db, or "" when it does not exist.
func Digest(ctx context.Context, c *redis.Client, key string) (string, error) {
	v, err := c.Do(ctx, "DEBUG", "DIGEST-VALUE", key).Slice()
	if err != nil {
		return "", err
	}
	if len(v) != 1 {
		return "", fmt.Errorf("DEBUG DIGEST-VALUE: unexpected reply %v", v)
	}
	d, _ := v[0].(string)
	if d == strings.Repeat("0", 40) {
		return "", nil
	}
	return d, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stderrTail is what the server wrote to stderr, if anything.
func stderrTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; stderr: " + string(b)
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
