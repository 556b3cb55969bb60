// Connection settings beyond the URL: TLS files (a private CA, a client
// certificate), a password kept in a file, and Sentinel (the current
// master, asked of the sentinels at every new connection).

package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TLSFiles are redis.tls: the files and checks of a rediss:// connection.
type TLSFiles struct {
	CAFile             string // PEM certificates that sign the server's (default: the system's)
	CertFile, KeyFile  string // the client's certificate and key (PEM), for servers that ask for one
	ServerName         string // the name the server's certificate must carry (default: the URL's host)
	InsecureSkipVerify bool   // accept any server certificate (tests only: anyone can pose as the server)
}

func (f TLSFiles) set() bool {
	return f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.ServerName != "" || f.InsecureSkipVerify
}

// Connection is where and how to reach Redis: a URL and what agent.yaml
// adds to it.
type Connection struct {
	// URL is redis://, rediss://, unix:// or redis+sentinel:// (see
	// ParseSentinelURL).
	URL string
	// PasswordFile, when set, holds the password (its first line); the URL
	// then must not carry one.
	PasswordFile string
	TLS          TLSFiles
}

// Options returns the client options of c. Errors never repeat a password.
func (c Connection) Options() (*redis.Options, error) {
	var opt *redis.Options
	var err error
	if strings.HasPrefix(c.URL, SentinelScheme+"://") {
		opt, err = ParseSentinelURL(c.URL)
	} else {
		opt, err = ParseURL(c.URL)
	}
	if err != nil {
		return nil, err
	}
	if c.PasswordFile != "" {
		if opt.Password != "" {
			return nil, fmt.Errorf("%w: the URL carries a password and redis.password_file is set: keep one", ErrBadURL)
		}
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("redis.password_file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
		if pw == "" {
			return nil, fmt.Errorf("redis.password_file %s: empty", c.PasswordFile)
		}
		opt.Password = pw
	}
	if c.TLS.set() {
		if opt.TLSConfig == nil {
			return nil, fmt.Errorf("%w: redis.tls is set but the URL is not rediss:// (or redis+sentinel:// with tls=true)", ErrBadURL)
		}
		cfg, err := c.TLS.config(opt.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("redis.tls: %w", err)
		}
		opt.TLSConfig = cfg
	}
	return opt, nil
}

// config returns base (go-redis's, with the URL's host as ServerName)
// with the files loaded.
func (f TLSFiles) config(base *tls.Config) (*tls.Config, error) {
	cfg := base.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if f.ServerName != "" {
		cfg.ServerName = f.ServerName
	}
	cfg.InsecureSkipVerify = f.InsecureSkipVerify
	return cfg, nil
}

// SentinelScheme is the scheme of Sentinel URLs.
const SentinelScheme = "redis+sentinel"

// ParseSentinelURL parses
//
//	redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB][?sentinel_username=U&sentinel_password=P&tls=true]
//
// (the hosts are the sentinels'; user and password are the data nodes';
// sentinel_username and sentinel_password, when the sentinels want one;
// tls=true reaches the data nodes and the sentinels over TLS, with
// redis.tls). The options' Dialer asks the sentinels for MASTER's address
// at every new connection, so that each operation after a failover
// reaches the new master.
func ParseSentinelURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the URL does not parse", ErrBadURL)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if u.Host == "" || parts[0] == "" || len(parts) > 2 {
		return nil, fmt.Errorf("%w: want %s://[user:password@]sentinel:26379[,sentinel2:26379]/MASTER[/DB]", ErrBadURL, SentinelScheme)
	}
	s := &sentinels{master: parts[0], addrs: strings.Split(u.Host, ",")}
	for _, a := range s.addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("%w: sentinel address %q: want host:port", ErrBadURL, a)
		}
	}
	opt := &redis.Options{Network: "tcp", Addr: s.addrs[0]}
	if len(parts) == 2 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("%w: database %q", ErrBadURL, parts[1])
		}
		opt.DB = db
	}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "sentinel_username", "sentinel_password", "tls":
		default:
			return nil, fmt.Errorf("%w: unknown parameter %q (want sentinel_username, sentinel_password, tls)", ErrBadURL, k)
		}
	}
	s.username, s.password = q.Get("sentinel_username"), q.Get("sentinel_password")
	if q.Get("tls") == "true" {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	opt.Dialer = s.dialer(opt)
	return opt, nil
}

// sentinels finds a master by asking its sentinels, one after another.
type sentinels struct {
	addrs              []string
	master             string
	username, password string
}

// dialer dials the current master. TLS, when opt has it, is the data
// connection's (go-redis wraps what the dialer returns only when it has no
// dialer; here the dialer does it).
func (s *sentinels) dialer(opt *redis.Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		addr, err := s.masterAddr(ctx, opt.TLSConfig)
		if err != nil {
			return nil, err
		}
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 5 * time.Minute}
		if opt.TLSConfig != nil {
			return (&tls.Dialer{NetDialer: d, Config: opt.TLSConfig}).DialContext(ctx, network, addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// masterAddr asks each sentinel in turn for the master's address.
func (s *sentinels) masterAddr(ctx context.Context, tlsCfg *tls.Config) (string, error) {
	var errs []error
	for _, a := range s.addrs {
		c := redis.NewSentinelClient(&redis.Options{Addr: a, Username: s.username, Password: s.password,
			TLSConfig: tlsCfg, DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
		hp, err := c.GetMasterAddrByName(ctx, s.master).Result()
		c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		if err == nil {
			err = errors.New("no address")
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", a, err))
	}
	return "", fmt.Errorf("no sentinel knows master %q: %w", s.master, errors.Join(errs...))
}
