// Package api is redback's admin HTTP API: the routes of the Python tool it
// replaces (under /api/backup/...), TOTP logins that give short-lived bearer
// tokens, read-only machine tokens, background jobs, health probes and
// Prometheus metrics. docs/API.md documents it for users.
//
// Handlers call the agent through the small Service interface declared
// here; every error leaves through one adapter (errors.go) that maps the
// agent's error kinds to status codes and never reveals a path or a secret.
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/sinks"
)

// Service is what the API needs of *agent.Service. Methods that take an
// archive name validate it themselves; the API validates it first anyway.
type Service interface {
	Backup(ctx context.Context, o agent.BackupOptions) (agent.BackupResult, error)
	Restore(ctx context.Context, name string, o agent.RestoreOptions) (agent.RestoreResult, error)
	List(ctx context.Context) (agent.ListResult, error)
	Stats(ctx context.Context) (agent.StatsResult, error)
	Delete(ctx context.Context, name string) (agent.DeleteResult, error)
	// Stat, Open and OpenRange fail with agent.ErrNotFound for a missing
	// archive; the caller closes the readers.
	Stat(ctx context.Context, name string) (sinks.Info, error)
	Open(ctx context.Context, name string) (io.ReadCloser, sinks.Info, error)
	OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// RedisOptions points at the Redis server (for /api/stats and /readyz).
	RedisOptions() *redis.Options
}

var _ Service = (*agent.Service)(nil)

// Target is one Redis server that the API serves, selected by ?target=.
type Target struct {
	// Name is the target's name (its ?target= value, its job slot, its
	// label in /metrics).
	Name    string
	Service Service
}

// StatusSource tells what the scheduler knows of a target (next run, last
// outcome); *metrics.Metrics is one.
type StatusSource interface {
	Status(target string) metrics.Status
}

var _ StatusSource = (*metrics.Metrics)(nil)

// Options configure the API. OptionsFromConfig builds them from agent.yaml.
type Options struct {
	// Admins may log in with TOTP codes; at least one is required.
	Admins []Admin
	// ReadTokens may call the read-only routes.
	ReadTokens []ReadToken
	// TokenTTL is the lifetime of a login's bearer token (default 15m).
	TokenTTL time.Duration
	// ReadyMaxAge: /readyz fails when the newest backup is older; 0 only
	// checks Redis.
	ReadyMaxAge time.Duration
	// TrustedProxies are peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Failed codes: LoginMaxFailures per client within LoginWindow, and
	// LoginDailyCap in 24 h from everyone (defaults 5, 5m, 100).
	LoginMaxFailures int
	LoginWindow      time.Duration
	LoginDailyCap    int
	// Identities decrypt encrypted archives for restores.
	Identities []age.Identity
	// Log receives the request errors and the audit log (records with
	// audit=true). Default: discard.
	Log *slog.Logger
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// Status, when set, gives GET /api/targets the scheduler's view of
	// each target.
	Status StatusSource
}

// Server is the API. Create it with New; serve Handler().
type Server struct {
	targets  []Target
	jobs     *jobs.Manager
	opt      Options
	log      *slog.Logger
	audit    *slog.Logger
	totp     *totpVerifier
	sessions *sessions
	readers  []ReadToken
	limiter  *failureLimiter
	proxies  []netip.Prefix
	handler  http.Handler
}

// New checks the options and builds the API over one Service, the target
// named "default", running long operations through jm.
func New(svc Service, jm *jobs.Manager, o Options) (*Server, error) {
	if svc == nil {
		return nil, errors.New("api: a service and a job manager are required")
	}
	return NewTargets([]Target{{Name: "default", Service: svc}}, jm, o)
}

// NewTargets checks the options and builds the API over several targets,
// running long operations through jm, each target's in its own slot (the
// target's name). The first target is the default of every route.
func NewTargets(targets []Target, jm *jobs.Manager, o Options) (*Server, error) {
	if len(targets) == 0 || jm == nil {
		return nil, errors.New("api: a service and a job manager are required")
	}
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Service == nil || t.Name == "" || seen[t.Name] {
			return nil, errors.New("api: every target needs a service and a name of its own")
		}
		seen[t.Name] = true
	}
	if len(o.Admins) == 0 {
		return nil, errors.New("api: no admin: set api.totp_secret (or REDBACK_TOTP_SECRET, api.totp_secret_file) or api.admins")
	}
	if err := checkAdmins(o.Admins); err != nil {
		return nil, err
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 15 * time.Minute
	}
	if o.LoginMaxFailures <= 0 {
		o.LoginMaxFailures = 5
	}
	if o.LoginWindow <= 0 {
		o.LoginWindow = 5 * time.Minute
	}
	if o.LoginDailyCap <= 0 {
		o.LoginDailyCap = 100
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		targets:  targets,
		jobs:     jm,
		opt:      o,
		log:      o.Log,
		audit:    o.Log.With("audit", true),
		totp:     newTOTPVerifier(o.Admins, o.Now),
		sessions: newSessions(o.TokenTTL, o.Now),
		readers:  o.ReadTokens,
		limiter:  newFailureLimiter(o.LoginMaxFailures, o.LoginWindow, o.LoginDailyCap, o.Now),
		proxies:  o.TrustedProxies,
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the API's root handler (all routes, metrics included).
func (s *Server) Handler() http.Handler { return s.handler }
