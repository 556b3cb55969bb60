// Package s3test starts throw-away S3-compatible servers for tests: a real
// versitygw process (an Apache-licensed S3 gateway) serving a temporary
// folder through its POSIX backend, on a free loopback port.
//
// When the versitygw binary cannot be found the caller's test fails (it is
// never skipped): scripts/install-test-deps.sh installs it.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Test credentials of the gateway's root account. They protect nothing: the
// server listens on loopback only and lives as long as one test.
const (
	AccessKey = "AKIAREDBACKTEST"
	SecretKey = "redback-test-secret-key"
	Region    = "us-east-1"
)

// Server is a running versitygw owned by a test.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Root string // the folder it serves; each bucket is a subfolder
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Binary returns the path of versitygw: $VERSITYGW, then PATH, then the Go
// install folder ($GOBIN, or $(go env GOPATH)/bin), where `go install`
// puts it.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				dirs = append(dirs, lines[0])
			}
			for _, p := range filepath.SplitList(lines[1]) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found on PATH nor in the Go install folder (run scripts/install-test-deps.sh, or: go install github.com/versity/versitygw/cmd/versitygw@%s)", Version)
}

// Start starts a gateway for t with the given buckets created, and stops it
// when t ends. It fails t when no gateway can be started.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	s, err := StartDir(t.TempDir())
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(s.Stop)
	for _, b := range buckets {
		if err := s.CreateBucket(context.Background(), b); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	return s
}

// StartDir starts a gateway serving dir/root (dir must exist). The caller
// stops it.
func StartDir(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{
			URL:  "http://127.0.0.1:" + strconv.Itoa(port),
			Root: root,
			done: make(chan struct{}),
			log:  &bytes.Buffer{},
		}
		s.cmd = exec.Command(bin, "--access", AccessKey, "--secret", SecretKey,
			"--region", Region, "--port", "127.0.0.1:"+strconv.Itoa(port), "--quiet",
			"posix", root)
		s.cmd.Dir = dir
		s.cmd.Stdout = &lockedWriter{buf: s.log}
		s.cmd.Stderr = s.cmd.Stdout
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if err := s.waitReady(20 * time.Second); err != nil {
			s.Stop()
			lastErr = fmt.Errorf("versitygw on port %d: %w; its output: %s", port, err, s.output())
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the gateway answers HTTP (any status: an anonymous
// request is refused, which proves it is up).
func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("exited at start")
		default:
		}
		resp, err := c.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not answering")
}

// Stop kills the gateway and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

func (s *Server) output() string {
	lw := s.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return strings.TrimSpace(lw.buf.String())
}

// Client returns an S3 client for the gateway (path-style, static
// credentials, checksums only when required).
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(s.URL),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	_, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// SinkURL returns the redback storage URL of bucket/prefix on the gateway.
func (s *Server) SinkURL(bucket, prefix string) string {
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + strings.Trim(prefix, "/")}
	q := url.Values{}
	q.Set("endpoint", s.URL)
	q.Set("use_path_style", "true")
	q.Set("region", Region)
	u.RawQuery = q.Encode()
	return u.String()
}

// Env is the environment that points the AWS default credential chain at
// the gateway's credentials only (no shared files, no instance metadata).
func Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=",
		"AWS_DEFAULT_REGION=",
		"AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent/redback-test",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent/redback-test",
	}
}

// SetEnv applies Env to the test process with t.Setenv.
func SetEnv(t *testing.T) {
	t.Helper()
	for _, kv := range Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return w.buf.Write(p)
}
