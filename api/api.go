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

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
)

// Service is what the API needs of *agent.Service. Methods that take an
// archive name validate it themselves; the API validates it first anyway.
type Service interface {
	Backup(ctx context.Context, o agent.BackupOptions) (agent.BackupResult, error)
	Restore(ctx context.Context, name string, o agent.RestoreOptions) (agent.RestoreResult, error)
	// RestoreAt restores the state at a time from the continuous archive.
	RestoreAt(ctx context.Context, at time.Time, o agent.RestoreOptions) (agent.RestoreResult, error)
	List(ctx context.Context) (agent.ListResult, error)
	Stats(ctx context.Context) (agent.StatsResult, error)
	Delete(ctx context.Context, name string) (agent.DeleteResult, error)
	// Verify reads an archive end to end and records the outcome in its
	// manifest (agent.Service.Verify).
	Verify(ctx context.Context, name string, ids []age.Identity) (agent.VerifyResult, error)
	Drill(ctx context.Context, ref string, o agent.DrillOptions) (agent.DrillResult, error)
	// Stat, Open and OpenRange fail with agent.ErrNotFound for a missing
	// archive; the caller closes the readers.
	Stat(ctx context.Context, name string) (agent.ArchiveInfo, error)
	Open(ctx context.Context, name string) (io.ReadCloser, agent.ArchiveInfo, error)
	OpenRange(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// Ping checks that Redis answers (/readyz); RedisStats describes what
	// it holds (/api/stats); Address names it (/api/targets).
	Ping(ctx context.Context) error
	RedisStats(ctx context.Context) (agent.RedisStatsResult, error)
	Address() string
	// Resolve gives the name agent.Latest stands for.
	Resolve(ctx context.Context, ref string) (string, error)
	// Keys, Show and Diff look into archives (names or agent.Latest);
	// Upload stores an archive sent by a client once it has read whole.
	Keys(ctx context.Context, name string, o agent.KeysOptions, fn func(agent.KeyInfo) error) (agent.KeysPage, error)
	Show(ctx context.Context, name string, key []byte, db int, o agent.ShowOptions) (agent.ShowResult, error)
	Diff(ctx context.Context, a, b string, o agent.DiffOptions, fn func(agent.Difference) error) (agent.DiffResult, error)
	Upload(ctx context.Context, name string, src io.Reader, ids []age.Identity) (agent.UploadResult, error)
	// Pin and Unpin keep an archive from retention, and let it go.
	Pin(ctx context.Context, name, note string) (agent.PinResult, error)
	Unpin(ctx context.Context, name string) (agent.PinResult, error)
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
	// FreshAuthWindow, when positive, lets a destructive call made within
	// that time of the session's login (or of its last fresh code) go
	// without a fresh code. Zero (the default): every destructive call
	// needs a code of its own.
	FreshAuthWindow time.Duration
	// TokensFile holds the machine tokens (`redback token create`), read
	// again when it changes; "" disables them.
	TokensFile string
	// ReadyMaxAge: /readyz fails when the newest backup is older; 0 only
	// checks Redis.
	ReadyMaxAge time.Duration
	// DrillMaxAge (drill.ready_max_age): /readyz fails when the newest
	// restore drill failed, or when no drill passed within it; 0 leaves
	// drills out.
	DrillMaxAge time.Duration
	// TrustedProxies are peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Failed codes: LoginMaxFailures per client within LoginWindow,
	// LoginClientDailyCap per client in 24 h, and LoginDailyCap in 24 h from
	// everyone (defaults 5, 5m, 20, 500; a client's daily cap at or above
	// the global one becomes half of it). A client is an IPv4 address or an
	// IPv6 /64. Only complete attempts count: a well-formed code that was
	// checked and failed.
	LoginMaxFailures    int
	LoginWindow         time.Duration
	LoginClientDailyCap int
	LoginDailyCap       int
	// StateFile keeps each admin's last accepted TOTP step across restarts
	// (a code works once, even after a restart), and StateFile+".unlock"
	// carries the requests of `redback totp unlock` (RequestUnlock). Empty:
	// the steps are kept in memory, and the steps up to one ahead of the
	// clock at start count as used (a code seen before a restart is never
	// accepted after it; the first login may wait for the next code).
	StateFile string
	// MaxConns caps the connections of Listener (default 1000), of which a
	// client that is no trusted proxy may hold MaxConnsPerClient (default
	// 64); ReserveConns more (default 32) serve only /healthz, /readyz and
	// /metrics, one request each, within HeaderTimeout.
	MaxConns          int
	MaxConnsPerClient int
	ReserveConns      int
	// MaxLogins caps the login requests in progress (their bodies being
	// read or their codes checked): MaxLogins in all (default 128),
	// MaxLoginsPerClient from one client (default 4). Probes and requests
	// with a token are not counted.
	MaxLogins          int
	MaxLoginsPerClient int
	// HeaderTimeout bounds the time to send a request's headers (default
	// 10s; HTTPServer), BodyTimeout its body (default 10s), IdleTimeout a
	// kept-alive connection between requests (default 60s).
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	IdleTimeout   time.Duration
	// LogEvery: refused requests and failed logins are logged at most once
	// per LogEvery for each kind of refusal, with the number left out
	// (suppressed=N) on the next line (default 10s).
	LogEvery time.Duration
	// Identities decrypt encrypted archives for restores, looks and the
	// check of uploads.
	Identities []age.Identity
	// MaxUploadBytes caps an upload's body (default 16 GiB).
	MaxUploadBytes int64
	// Log receives the request errors and the audit log (records with
	// audit=true). Default: discard.
	Log *slog.Logger
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// Status, when set, gives GET /api/targets the scheduler's view of
	// each target.
	Status StatusSource
	// Metrics serves /metrics (default: promhttp.Handler(), the default
	// registry); serve sets metrics.Default().Handler(), which lists the
	// targets' storage first.
	Metrics http.Handler
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
	machines *machineTokens
	readers  []ReadToken
	limiter  *failureLimiter
	proxies  []netip.Prefix
	handler  http.Handler
	// logins limits the login requests in progress.
	logins *gate
	// unlock watches StateFile+".unlock" (nil without a state file).
	unlock *unlockWatcher
	// sample thins out the log lines of refusals.
	sample *sampler
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
	if o.LoginClientDailyCap <= 0 {
		o.LoginClientDailyCap = max(20, o.LoginMaxFailures)
	}
	if o.LoginDailyCap <= 0 {
		o.LoginDailyCap = 500
	}
	if o.LoginClientDailyCap >= o.LoginDailyCap {
		// One client alone must not reach the cap of everyone.
		o.LoginClientDailyCap = max(o.LoginMaxFailures, o.LoginDailyCap/2)
	}
	setDefault(&o.MaxConns, 1000)
	setDefault(&o.MaxConnsPerClient, 64)
	setDefault(&o.ReserveConns, 32)
	setDefault(&o.MaxLogins, 128)
	setDefault(&o.MaxLoginsPerClient, 4)
	setDefault(&o.HeaderTimeout, 10*time.Second)
	setDefault(&o.BodyTimeout, 10*time.Second)
	setDefault(&o.IdleTimeout, 60*time.Second)
	setDefault(&o.LogEvery, 10*time.Second)
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 16 << 30
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
		sessions: newSessions(o.TokenTTL, o.Now),
		machines: &machineTokens{path: o.TokensFile},
		readers:  o.ReadTokens,
		limiter: newFailureLimiter(limits{perClient: o.LoginMaxFailures, window: o.LoginWindow,
			clientDaily: o.LoginClientDailyCap, daily: o.LoginDailyCap}, o.Now),
		proxies: o.TrustedProxies,
		logins:  newGate(o.MaxLogins, o.MaxLoginsPerClient),
		sample:  newSampler(o.LogEvery, o.Now),
	}
	var err error
	if s.totp, err = newTOTPVerifier(o.Admins, o.Now, o.StateFile); err != nil {
		return nil, err
	}
	if o.StateFile != "" {
		s.unlock = newUnlockWatcher(unlockPath(o.StateFile))
	} else {
		s.log.Warn("api: no state file: used TOTP codes are remembered in memory only; after a restart, logins wait for the next code")
	}
	s.handler = s.routes()
	return s, nil
}

// setDefault sets *v to def when it is not positive.
func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Handler returns the API's root handler (all routes, metrics included).
func (s *Server) Handler() http.Handler { return s.handler }
