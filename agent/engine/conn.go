// Connections: Redis URLs (parsed, redacted, the database they name), the
// clients the engine opens, and INFO.

package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBadURL is returned for a Redis URL that cannot be used. Its message
// never repeats the URL (it may hold a password).
var ErrBadURL = errors.New("invalid Redis URL")

// ParseURL parses a redis://, rediss:// or unix:// URL into client options.
func ParseURL(raw string) (*redis.Options, error) {
	opt, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis errors may echo the URL; say what is wrong without it.
		msg := err.Error()
		if u, perr := url.Parse(raw); perr == nil {
			msg = strings.ReplaceAll(msg, raw, u.Redacted())
			if u.User != nil {
				if p, ok := u.User.Password(); ok && p != "" {
					msg = strings.ReplaceAll(msg, p, "xxxxx")
				}
			}
		} else {
			msg = "the URL does not parse"
		}
		return nil, fmt.Errorf("%w: %s", ErrBadURL, msg)
	}
	return opt, nil
}

// RedactURL returns raw with any password replaced, for logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable Redis URL)"
	}
	if q := u.Query(); q.Has("sentinel_password") || q.Has("password") {
		for _, k := range []string{"sentinel_password", "password"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// newClient returns a RESP2 client for database db (scores and other
// replies then arrive as the server's own text), with room for pool
// connections.
func newClient(base *redis.Options, db, pool int) *redis.Client {
	o := *base
	o.DB = db
	o.Protocol = 2
	o.DisableIdentity = true
	o.PoolSize = pool
	o.MinIdleConns = 0
	// Unset timeouts become 60 s (big-key windows and RESTORE of big
	// payloads take longer than go-redis's default 3 s); timeouts the URL
	// sets are kept.
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	o.ContextTimeoutEnabled = true
	return redis.NewClient(&o)
}

// newWriteClient is newClient without go-redis's retries: after a read
// timeout it would send a whole pipeline again while the first copy may
// still reach the server, and RPUSH, APPEND, XADD or SADD chunks would then
// run twice. A failed write fails its key (or the restore) instead.
func newWriteClient(base *redis.Options, db, pool int) *redis.Client {
	o := *base
	o.MaxRetries = -1
	return newClient(&o, db, pool)
}

// newClusterWriteClient is newWriteClient for a cluster whose nodes are at
// seeds: commands go to the primary of their key's slot, MOVED and ASK
// replies are followed (the command did not run), and nothing is sent
// twice after a failure to write or read (see newWriteClient): every
// command is marked NoRetry. Database db > 0 is selected on each connection
// (a server without it fails the SELECT, and so each command).
func newClusterWriteClient(base *redis.Options, seeds []string, db, pool int) *redis.ClusterClient {
	o := &redis.ClusterOptions{
		Addrs:                  seeds,
		Dialer:                 base.Dialer,
		Username:               base.Username,
		Password:               base.Password,
		TLSConfig:              base.TLSConfig,
		DialTimeout:            base.DialTimeout,
		ReadTimeout:            base.ReadTimeout,
		WriteTimeout:           base.WriteTimeout,
		Protocol:               2,
		DisableIdentity:        true,
		PoolSize:               pool,
		MaxRedirects:           16,
		MaxRetries:             -1,
		ContextTimeoutEnabled:  true,
		DisableRoutingPolicies: true,
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if db > 0 {
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.Select(ctx, db).Err() }
	}
	c := redis.NewClusterClient(o)
	c.AddHook(noRetryHook{})
	return c
}

// noRetryHook marks every command NoRetry: go-redis's cluster client then
// follows MOVED and ASK but never sends a command again after a lost
// connection or a timeout (it may have run).
type noRetryHook struct{}

func (noRetryHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (noRetryHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return next(ctx, noRetry{cmd}) }
}

func (noRetryHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		wrapped := make([]redis.Cmder, len(cmds))
		for i, c := range cmds {
			wrapped[i] = noRetry{c}
		}
		return next(ctx, wrapped)
	}
}

// noRetry is a command that go-redis must not send twice.
type noRetry struct{ redis.Cmder }

func (noRetry) NoRetry() bool { return true }

// serverInfo reads INFO sections into a map of field -> value.
func serverInfo(ctx context.Context, c redis.UniversalClient, sections ...string) (map[string]string, error) {
	args := []any{"INFO"}
	for _, s := range sections {
		args = append(args, s)
	}
	txt, err := c.Do(ctx, args...).Text()
	if err != nil {
		return nil, wrapRedis("INFO", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(txt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// URLDatabase reports the database a Redis URL names: the path of a
// redis:// or rediss:// URL ("/3"), or the db parameter of a unix:// URL.
// explicit is false when the URL names none (the client then uses 0).
func URLDatabase(raw string) (db int, explicit bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, false
	}
	s := strings.Trim(u.Path, "/")
	if u.Scheme == "unix" {
		s = u.Query().Get("db")
	}
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
