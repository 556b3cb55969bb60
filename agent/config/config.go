// Package config loads agent.yaml: strictly (an unknown or repeated key is
// an error that names its line), with ${VAR} and ${VAR:-default} expanded
// from the environment inside the parsed values (never as YAML text, and
// never echoed in an error), then the environment variables and
// command-line flags that override it.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Config is the whole of agent.yaml.
type Config struct {
	Redis     Redis     `yaml:"redis"`
	Storage   string    `yaml:"storage"`
	Backup    Backup    `yaml:"backup"`
	Restore   Restore   `yaml:"restore"`
	Schedule  Schedule  `yaml:"schedule"`
	Retention Retention `yaml:"retention"`
	Notify    Notify    `yaml:"notify"`
	Lease     Lease     `yaml:"lease"`
	API       API       `yaml:"api"`
	Log       Log       `yaml:"log"`
	Archiving Archiving `yaml:"archiving"`
	Drill     Drill     `yaml:"drill"`
	// TargetSpecs lists the Redis servers of an agent that watches several
	// (see TargetSpec and Targets); empty means the top level is the one
	// target.
	TargetSpecs []TargetSpec `yaml:"targets"`

	// redisURLLine is the line of the top-level redis.url in the file
	// (0 when it is not written there).
	redisURLLine int
	// envValues are the values that ${VAR} took from the environment: no
	// error message may show them.
	envValues []string
}

// Redis says which server to back up.
type Redis struct {
	// URL is redis://[user:password@]host:port/db, rediss://... or
	// unix:///path?db=N.
	URL string `yaml:"url"`
	// Databases to back up; empty means every database that holds keys.
	Databases []int `yaml:"databases"`
	// ReadFrom is where a cluster backup reads each shard: "primary" (the
	// default) or "replica" (one of its replicas, its primary when it has
	// none).
	ReadFrom string `yaml:"read_from"`
	// PasswordFile holds the password of the URL's user (its first line),
	// for URLs that carry none.
	PasswordFile string `yaml:"password_file"`
	// TLS configures rediss:// connections.
	TLS TLS `yaml:"tls"`
}

// TLS is redis.tls: a private CA, a client certificate, the server's name.
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate (logged as a
	// warning at every start: for tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Backup tunes backups.
type Backup struct {
	// Source is how keys are read: "scan" (SCAN and DUMP, the default),
	// "replica" (a point-in-time snapshot through the replication
	// protocol) or "auto" (replica, else scan where the server refuses).
	Source         string  `yaml:"source"`
	Compress       bool    `yaml:"compress"`
	GzipLevel      int     `yaml:"gzip_level"`
	ScanCount      int     `yaml:"scan_count"`
	Workers        int     `yaml:"workers"`
	KeysPerSecond  float64 `yaml:"keys_per_second"`
	BytesPerSecond float64 `yaml:"bytes_per_second"`
	// VerifyAfter re-reads each new archive end to end after it is stored.
	VerifyAfter bool    `yaml:"verify_after"`
	Encrypt     Encrypt `yaml:"encrypt"`
	// Include and Exclude select the keys a backup takes: those that
	// match one of Include (every key when it is empty) and none of
	// Exclude, by Redis glob patterns (\xHH for any byte). The archive
	// records them (it is partial).
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Encrypt configures age encryption of new archives.
type Encrypt struct {
	// Recipients are age public keys (age1...). Several may be given, so
	// that one key can live offline for disaster recovery.
	Recipients []string `yaml:"recipients"`
	// RecipientsFile names a file of recipients, one per line.
	RecipientsFile string `yaml:"recipients_file"`
	// PassphraseFile names a file holding a passphrase (scrypt); it cannot
	// be combined with recipients.
	PassphraseFile string `yaml:"passphrase_file"`
}

// Restore tunes restores.
type Restore struct {
	// TTL is "relative" (the TTL as recorded; the default) or "absolute"
	// (the recorded expiry time; keys that expired since are skipped).
	TTL           string  `yaml:"ttl"`
	BatchKeys     int     `yaml:"batch_keys"`
	Workers       int     `yaml:"workers"`
	KeysPerSecond float64 `yaml:"keys_per_second"`
	MaxErrors     int     `yaml:"max_errors"`
	// AllowEviction lets a restore run against a server whose
	// maxmemory-policy is allkeys-* or volatile-* (it could evict existing
	// keys).
	AllowEviction bool `yaml:"allow_eviction"`
	// IgnoreMemory lets a restore run against a server that seems to lack
	// the memory the archive's data needs (--ignore-memory).
	IgnoreMemory bool `yaml:"ignore_memory"`
	// Identities are age identity files for encrypted archives.
	Identities []string `yaml:"identities"`
	// PassphraseFile names a file holding the passphrase of archives
	// encrypted with backup.encrypt.passphrase_file (scrypt).
	PassphraseFile string `yaml:"passphrase_file"`
}

// Schedule is when `redback serve` and `redback schedule` take backups.
// agent/scheduler checks it (cron syntax, time zone) when it starts.
type Schedule struct {
	Enabled bool `yaml:"enabled"`
	// IntervalHours: at most so many hours between two backups (the seed's
	// default 24), counted from the last backup whatever started it, on the
	// wall clock of Timezone (0 for none).
	IntervalHours float64 `yaml:"interval_hours"`
	// DailyAt: also a backup every day at this time ("03:00"; "" for none).
	DailyAt string `yaml:"daily_at"`
	// Cron expressions (five fields or @daily-style descriptors), in addition.
	Cron []string `yaml:"cron"`
	// Timezone is an IANA name; empty means the host's local time.
	Timezone string `yaml:"timezone"`
	// Jitter delays each scheduled backup by a random 0..Jitter.
	Jitter time.Duration `yaml:"jitter"`
}

// Retention is what prune (and the scheduler, after each successful backup)
// keeps. An archive is kept when any rule keeps it; the newest complete
// archive is always kept; all rules zero means nothing is pruned.
type Retention struct {
	// KeepLast keeps the newest N archives (the seed's max_backups).
	KeepLast int `yaml:"keep_last"`
	// KeepDaily, KeepWeekly, KeepMonthly and KeepYearly keep the newest
	// archive of each of the newest N days, ISO weeks, months and years
	// that have one (in schedule.timezone).
	KeepDaily   int `yaml:"keep_daily"`
	KeepWeekly  int `yaml:"keep_weekly"`
	KeepMonthly int `yaml:"keep_monthly"`
	KeepYearly  int `yaml:"keep_yearly"`
	// KeepWithin keeps every archive younger than this.
	KeepWithin time.Duration `yaml:"keep_within"`
	// SuspectDrop: an archive whose key count or size is below (1 -
	// SuspectDrop) of the previous good archive's, or that has 0 keys after
	// one that had some, is suspect: kept, flagged, and counted towards no
	// rule (0: 0.5; 1 turns the guard off).
	SuspectDrop float64 `yaml:"suspect_drop"`
}

// Notify says whom to tell about scheduled backups. Secrets here (webhook
// keys, the SMTP password) are never logged.
type Notify struct {
	Webhooks  []Webhook `yaml:"webhooks"`
	Email     Email     `yaml:"email"`
	Heartbeat Heartbeat `yaml:"heartbeat"`
}

// Webhook is an HTTP POST of the backup result.
type Webhook struct {
	URL string `yaml:"url"`
	// Format is "json" (the event with the BackupResult; the default) or
	// "slack" (a {"text": ...} message for Slack-compatible incoming hooks).
	Format string `yaml:"format"`
	// Secret, when set, signs the body: X-Redback-Signature: sha256=<hex
	// HMAC-SHA256 of the body>.
	Secret string `yaml:"secret"`
	// On lists the events sent: "success", "failure" (default both).
	On []string `yaml:"on"`
	// MaxAttempts bounds the tries (default 5, with exponential backoff).
	MaxAttempts int           `yaml:"max_attempts"`
	Timeout     time.Duration `yaml:"timeout"`
}

// Email sends a message through an SMTP server.
type Email struct {
	// Host empty disables e-mail.
	Host     string   `yaml:"host"`
	Port     int      `yaml:"port"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	// TLS is "starttls" (the default: required), "tls" (implicit, port
	// 465) or "none" (only for a relay on localhost).
	TLS string `yaml:"tls"`
	// On lists the events sent: "success", "failure" (default: failure).
	On      []string      `yaml:"on"`
	Timeout time.Duration `yaml:"timeout"`
}

// Heartbeat is a URL (healthchecks.io, Uptime Kuma, ...) fetched after
// each successful backup only, so that its silence raises the alarm.
type Heartbeat struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
}

// Lease makes agents that share one Redis take turns: a scheduled backup
// runs only while its agent holds the lease, a key in that Redis that
// expires on its own if the holder dies.
type Lease struct {
	Enabled bool          `yaml:"enabled"`
	Key     string        `yaml:"key"`
	TTL     time.Duration `yaml:"ttl"`
}

// API configures `redback serve`'s HTTP API. The api package checks it
// when the server starts (secrets, tokens, proxies), so that `redback
// backup` and friends run without an API section.
type API struct {
	// Listen is host:port (default 127.0.0.1:8080; REDBACK_LISTEN).
	Listen string `yaml:"listen"`
	// MetricsListen, when set, is a second address serving GET /metrics
	// alone, without authentication (as /metrics on Listen is), so that a
	// scraper never needs the admin API; plain HTTP.
	MetricsListen string `yaml:"metrics_listen"`
	// TOTPSecret is the base32 TOTP secret (at least 20 bytes decoded) of
	// the admin named "admin" (REDBACK_TOTP_SECRET). TOTPSecretFile names a
	// file holding it instead; give one or the other.
	TOTPSecret     string `yaml:"totp_secret"`
	TOTPSecretFile string `yaml:"totp_secret_file"`
	// Admins are further administrators, each with their own secret.
	Admins []APIAdmin `yaml:"admins"`
	// ReadTokens are read-only API tokens for machines (list, stats,
	// download, jobs), stored as the hex SHA-256 of the token.
	ReadTokens []APIReadToken `yaml:"read_tokens"`
	// TokenTTL is the lifetime of a bearer token from a login (default 15m).
	TokenTTL time.Duration `yaml:"token_ttl"`
	// FreshAuthWindow, when set, lets destructive calls made within that
	// time of a login (or of the session's last fresh code) go without a
	// fresh code (X-TOTP-Code). 0, the default: each needs its own code.
	FreshAuthWindow time.Duration `yaml:"fresh_auth_window"`
	// MaxUploadBytes caps an archive sent to POST /api/backup/upload
	// (default 16 GiB).
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
	// ReadyMaxAge makes /readyz fail when the newest backup is older
	// (e.g. 26h); 0 only checks that Redis answers.
	ReadyMaxAge time.Duration `yaml:"ready_max_age"`
	// TrustedProxies are the addresses (IPs or CIDRs) whose
	// X-Forwarded-For is believed, for the audit log and rate limits.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// LoginMaxFailures failed codes per client within LoginWindow lock that
	// client out until the window has passed (defaults 5 and 5m);
	// LoginClientDailyCap failures in 24 hours lock one client for the
	// rest of the day (default 20); LoginDailyCap failures in 24 hours
	// from all clients together lock every login (default 500) until
	// `redback totp unlock` or the day has passed. A client is an IPv4
	// address or an IPv6 /64.
	LoginMaxFailures    int           `yaml:"login_max_failures"`
	LoginWindow         time.Duration `yaml:"login_window"`
	LoginClientDailyCap int           `yaml:"login_client_daily_cap"`
	LoginDailyCap       int           `yaml:"login_daily_cap"`
	// StateFile is where the API keeps what must outlive a restart: each
	// admin's last accepted TOTP time step (a code works once, even across
	// a restart) and the unlock requests of `redback totp unlock` (in
	// StateFile + ".unlock"). Default: .redback/api-state.json in the
	// (first target's) storage folder; with bucket storage and no
	// state_file the API keeps it in memory and refuses the codes current
	// when it starts.
	StateFile string `yaml:"state_file"`
	// TokensFile holds the machine tokens that `redback token create`
	// adds (their SHA-256, scopes and expiry). Default: api-tokens.json
	// beside state_file; "" with no state_file: machine tokens are off.
	TokensFile string `yaml:"tokens_file"`
	// MaxConnections caps the open connections (default 1000; a client,
	// an IPv4 address or IPv6 /64 that is no trusted proxy, may hold 64 of
	// them); 32 more are kept for /healthz, /readyz and /metrics.
	MaxConnections int `yaml:"max_connections"`
	// HeaderTimeout and BodyTimeout bound the time a client may take to
	// send a request's headers and its body (defaults 10s and 10s).
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	BodyTimeout   time.Duration `yaml:"body_timeout"`
	// ShutdownTimeout is how long a running backup or restore may go on
	// after SIGTERM before it is cancelled (default 5m).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLSCert and TLSKey (PEM files) make the API serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// defaultAPI is the API section's defaults.
func defaultAPI() API {
	return API{Listen: "127.0.0.1:8080", TokenTTL: 15 * time.Minute, LoginMaxFailures: 5,
		LoginWindow: 5 * time.Minute, LoginClientDailyCap: 20, LoginDailyCap: 500, ShutdownTimeout: 5 * time.Minute,
		MaxConnections: 1000, HeaderTimeout: 10 * time.Second, BodyTimeout: 10 * time.Second}
}

// APIAdmin is one administrator of the API.
type APIAdmin struct {
	Name string `yaml:"name"`
	// TOTPSecret is base32 (at least 20 bytes decoded); TOTPSecretFile
	// names a file holding it instead.
	TOTPSecret     string `yaml:"totp_secret"`
	TOTPSecretFile string `yaml:"totp_secret_file"`
}

// APIReadToken is a read-only API token, stored hashed.
type APIReadToken struct {
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token (printf %s TOKEN | sha256sum).
	SHA256 string `yaml:"sha256"`
}

// Archiving configures the continuous archive (redback serve): the
// replication stream stored in segments between base snapshots.
type Archiving struct {
	Enabled bool `yaml:"enabled"`
	// SegmentSeconds and SegmentBytes cut a segment once it is that old or
	// holds that many bytes of commands (0: 10 s and 8 MiB).
	SegmentSeconds float64 `yaml:"segment_seconds"`
	SegmentBytes   int64   `yaml:"segment_bytes"`
	// MaxStall is how long the archive may trail the server (writes not
	// yet durable, or no stream) before /readyz fails (0: 1 minute).
	MaxStall time.Duration `yaml:"max_stall"`
}

// Drill configures restore drills (`redback drill`, and in `redback
// serve` the scheduled ones): an archive is restored into a scratch server
// and the server's keys are compared with the archive's.
type Drill struct {
	// Enabled runs scheduled drills in `redback serve`.
	Enabled bool `yaml:"enabled"`
	// Schedule is when: "" or "after_backup" (the newest archive, after
	// each successful scheduled backup), or a cron expression (five
	// fields or an @daily-style descriptor, in schedule.timezone): the
	// newest archive at those times.
	Schedule string `yaml:"schedule"`
	// RedisURL is a scratch server to restore into: it must be empty, or
	// hold the marker of a previous drill (its keys are then flushed).
	// Never the server that is backed up.
	RedisURL string `yaml:"redis_url"`
	// ServerBinary is a redis-server or valkey-server that each drill
	// starts on a unix socket in a temporary folder, and stops after.
	// Neither set: the one of the archive's kind from PATH.
	ServerBinary string `yaml:"server_binary"`
	// MaxKeys drills only the first max_keys keys of a bigger archive (0:
	// all); such a drill is partial: the archive is still read whole.
	MaxKeys int64 `yaml:"max_keys"`
	// ReadyMaxAge makes /readyz fail when the newest archive's newest
	// drill failed, or when no archive was drilled successfully within
	// this time (e.g. 26h); 0 leaves drills out of /readyz.
	ReadyMaxAge time.Duration `yaml:"ready_max_age"`
}

// DrillAfterBackup is the drill schedule that drills after each backup.
const DrillAfterBackup = "after_backup"

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// validate checks the drill section; redisURL is the server backed up.
func (d Drill) validate(redisURL string) []error {
	var errs []error
	if d.RedisURL != "" && d.ServerBinary != "" {
		errs = append(errs, errors.New("drill: give redis_url or server_binary, not both"))
	}
	if d.RedisURL != "" && d.RedisURL == redisURL {
		errs = append(errs, errors.New("drill.redis_url: it is redis.url: a drill never restores into the server it backs up"))
	}
	if d.MaxKeys < 0 {
		errs = append(errs, errors.New("drill.max_keys: negative"))
	}
	if d.ReadyMaxAge < 0 {
		errs = append(errs, errors.New("drill.ready_max_age: negative"))
	}
	if strings.TrimSpace(d.Schedule) != d.Schedule {
		errs = append(errs, fmt.Errorf("drill.schedule: %q has spaces around it", d.Schedule))
	}
	return errs
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Redis:     Redis{URL: "redis://localhost:6379/0"},
		Storage:   "backups",
		Backup:    Backup{Compress: true},
		Restore:   Restore{TTL: "relative"},
		Schedule:  Schedule{Enabled: true, IntervalHours: 24, DailyAt: "03:00"},
		Retention: Retention{KeepLast: 7},
		Lease:     Lease{Key: "redback:lease", TTL: time.Minute},
		API:       defaultAPI(),
		Log:       Log{Level: "info", Format: "text"},
	}
}

// Getenv looks up an environment variable (os.LookupEnv in production).
type Getenv func(string) (string, bool)

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Expand replaces ${VAR} and ${VAR:-default} in one value s. A ${VAR}
// whose variable is unset is an error (so a typo does not become an empty
// value); ${VAR:-default} takes the default when VAR is unset or empty.
// "$$" is a literal "$". The error names the variable, never a value.
func Expand(s string, env Getenv) (string, error) {
	out, _, err := expandValue(s, env)
	return out, err
}

// expandValue is Expand that also returns the values taken from the
// environment (to keep them out of error messages).
func expandValue(s string, env Getenv) (string, []string, error) {
	var missing string
	var used []string
	const dollar = "\x00dollar\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		v, ok := env(sub[1])
		if sub[2] != "" && (!ok || v == "") {
			return sub[3]
		}
		if !ok && missing == "" {
			missing = sub[1]
		}
		used = append(used, v)
		return v
	})
	if missing != "" {
		return "", nil, fmt.Errorf("environment variable %s is not set (write ${%s:-default} for an optional one)", missing, missing)
	}
	return strings.ReplaceAll(out, dollar, "$"), used, nil
}

// expander expands the variables of a parsed file in its scalar values (never
// in keys or comments), so that a value from the environment is never YAML
// text: a quote or a colon in it is just a character. Each node keeps its
// token, which holds the file's own text: error excerpts and messages that
// quote a token show "${VAR}", not the value. secrets collects the values
// taken from the environment, scrubbed from every error Parse returns.
type expander struct {
	env     Getenv
	secrets []string
	errs    []error
}

// node expands the scalars under n and returns n, or the node that replaces
// it (a plain scalar whose expansion reads as a number, a boolean or null
// becomes one, as if its text had been written there).
func (e *expander) node(n ast.Node) ast.Node {
	switch n := n.(type) {
	case *ast.DocumentNode:
		if n.Body != nil {
			n.Body = e.node(n.Body)
		}
	case *ast.MappingNode:
		for _, v := range n.Values {
			e.node(v)
		}
	case *ast.MappingValueNode:
		if n.Value != nil {
			n.Value = e.node(n.Value)
		}
	case *ast.SequenceNode:
		for i, v := range n.Values {
			nv := e.node(v)
			if i < len(n.Entries) && n.Entries[i] != nil && n.Entries[i].Value == v {
				n.Entries[i].Value = nv
			}
			n.Values[i] = nv
		}
	case *ast.AnchorNode:
		if n.Value != nil {
			n.Value = e.node(n.Value)
		}
	case *ast.TagNode:
		if s, ok := n.Value.(*ast.StringNode); ok {
			e.expandString(s) // a tag decides the type
		} else if n.Value != nil {
			n.Value = e.node(n.Value)
		}
	case *ast.LiteralNode:
		if n.Value != nil {
			e.expandString(n.Value)
		}
	case *ast.StringNode:
		if !e.expandString(n) || n.Token == nil || n.Token.Type != token.StringType {
			return n
		}
		return retype(n)
	}
	return n
}

// expandString expands s's value in place and reports whether it held a
// variable.
func (e *expander) expandString(s *ast.StringNode) bool {
	if !strings.Contains(s.Value, "$") {
		return false
	}
	out, used, err := expandValue(s.Value, e.env)
	if err != nil {
		if s.Token != nil {
			err = fmt.Errorf("line %d: %w", s.Token.Position.Line, err)
		}
		e.errs = append(e.errs, err)
		return false
	}
	changed := out != s.Value
	s.Value = out
	e.secrets = append(e.secrets, used...)
	return changed
}

// retype turns an expanded plain scalar into the node its text would have
// given (a number, a boolean, null), keeping the original token.
func retype(s *ast.StringNode) ast.Node {
	tk := token.New(s.Value, s.Value, s.Token.Position)
	var out ast.Node
	switch tk.Type {
	case token.BoolType:
		b := ast.Bool(tk)
		b.BaseNode, b.Token = s.BaseNode, s.Token
		out = b
	case token.NullType:
		v := ast.Null(tk)
		v.BaseNode, v.Token = s.BaseNode, s.Token
		out = v
	case token.IntegerType, token.BinaryIntegerType, token.OctetIntegerType, token.HexIntegerType:
		v := ast.Integer(tk)
		v.BaseNode, v.Token = s.BaseNode, s.Token
		out = v
	case token.FloatType:
		v := ast.Float(tk)
		v.BaseNode, v.Token = s.BaseNode, s.Token
		out = v
	default:
		return s
	}
	return out
}

// scrub replaces every value taken from the environment in msg by "<from
// the environment>". Values shorter than 4 bytes are left (they would
// match too much; no secret is that short).
func (e *expander) scrub(msg string) string {
	vals := slices.Clone(e.secrets)
	// Longest first, so that a value inside another one does not leave a part.
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	for _, v := range vals {
		if len(v) < 4 {
			continue
		}
		const hidden = "<from the environment>"
		msg = strings.ReplaceAll(msg, v, hidden)
		if q := strconv.Quote(v); len(q) > 2 {
			msg = strings.ReplaceAll(msg, q[1:len(q)-1], hidden)
		}
	}
	return msg
}

// Parse decodes YAML text over the defaults, expanding variables in its
// values. Errors name their line; none holds a value from the environment.
func Parse(data []byte, env Getenv) (Config, error) {
	c := Default()
	if strings.TrimSpace(string(data)) == "" {
		return c, nil
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return Config{}, errors.New(yaml.FormatError(err, false, true))
	}
	if len(f.Docs) == 0 || f.Docs[0] == nil || f.Docs[0].Body == nil {
		return c, nil
	}
	x := &expander{env: env}
	body := x.node(f.Docs[0].Body)
	if len(x.errs) > 0 {
		return Config{}, errors.New(x.scrub(errors.Join(x.errs...).Error()))
	}
	if err := yaml.NodeToValue(body, &c, yaml.Strict()); err != nil {
		return Config{}, errors.New(x.scrub(yaml.FormatError(err, false, true)))
	}
	if len(c.TargetSpecs) > 0 {
		c.locateTargets(f)
	}
	c.envValues = x.secrets
	return c, c.Validate()
}

// scrubbed returns err with every value that came from the environment
// replaced (see expander.scrub); nil stays nil.
func (c Config) scrubbed(err error) error {
	if err == nil || len(c.envValues) == 0 {
		return err
	}
	return errors.New((&expander{secrets: c.envValues}).scrub(err.Error()))
}

// Load reads the file at path (see Parse), then applies the environment
// overrides (REDIS_URL, REDBACK_STORAGE, REDBACK_TOTP_SECRET,
// REDBACK_LISTEN). An empty path means no file.
func Load(path string, env Getenv) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		c, err = Parse(data, env)
		if err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if v, ok := env("REDIS_URL"); ok && v != "" {
		if len(c.TargetSpecs) > 0 {
			return Config{}, errors.New("REDIS_URL is set, but agent.yaml lists targets, each with its own redis.url: unset REDIS_URL (or pick one target with --target and give --redis-url)")
		}
		c.Redis.URL = v
	}
	if v, ok := env("REDBACK_STORAGE"); ok && v != "" {
		c.Storage = v
	}
	if v, ok := env("REDBACK_TOTP_SECRET"); ok && v != "" {
		c.API.TOTPSecret = v
	}
	if v, ok := env("REDBACK_LISTEN"); ok && v != "" {
		c.API.Listen = v
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.API.StateFile == "" {
		c.API.StateFile = c.defaultStateFile()
	}
	if c.API.TokensFile == "" && c.API.StateFile != "" {
		c.API.TokensFile = filepath.Join(filepath.Dir(c.API.StateFile), "api-tokens.json")
	}
	return c, nil
}

// stateFileName is the API's state file in a storage folder: beside the
// manifests, where the sinks ignore it.
const stateFileName = ".redback/api-state.json"

// defaultStateFile is api.state_file when agent.yaml does not set it: in
// the storage folder of the first target, "" when that is a bucket.
func (c Config) defaultStateFile() string {
	storage := c.Storage
	if len(c.TargetSpecs) > 0 {
		ts, err := c.Targets()
		if err != nil || len(ts) == 0 {
			return ""
		}
		storage = ts[0].Config.Storage
	}
	dir := localFolder(storage)
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, filepath.FromSlash(stateFileName))
}

// localFolder is the folder a storage location names ("" for a bucket).
func localFolder(storage string) string {
	if !strings.Contains(storage, "://") {
		return storage
	}
	u, err := url.Parse(storage)
	if err != nil || !strings.EqualFold(u.Scheme, "file") || u.Path == "" {
		return ""
	}
	return filepath.FromSlash(u.Path)
}

// Validate checks values that decode but make no sense. With targets it
// checks every resolved target as well (see Targets).
func (c Config) Validate() error {
	if err := c.validateOne(); err != nil || len(c.TargetSpecs) == 0 {
		return c.scrubbed(err)
	}
	_, err := c.Targets()
	return err
}

// validateOne checks the sections of one target's configuration.
func (c Config) validateOne() error {
	var errs []error
	if c.Redis.URL == "" {
		errs = append(errs, errors.New("redis.url: empty"))
	}
	for _, db := range c.Redis.Databases {
		if db < 0 {
			errs = append(errs, fmt.Errorf("redis.databases: %d is not a database number", db))
		}
	}
	switch c.Redis.ReadFrom {
	case "", "primary", "replica":
	default:
		errs = append(errs, fmt.Errorf("redis.read_from: %q: want primary or replica", c.Redis.ReadFrom))
	}
	if c.Storage == "" {
		errs = append(errs, errors.New("storage: empty"))
	}
	switch c.Backup.Source {
	case "", "scan", "replica", "auto":
	default:
		errs = append(errs, fmt.Errorf("backup.source: %q: want scan, replica or auto", c.Backup.Source))
	}
	for _, pats := range []struct {
		name string
		list []string
	}{{"backup.include", c.Backup.Include}, {"backup.exclude", c.Backup.Exclude}} {
		if len(pats.list) > 1024 {
			errs = append(errs, fmt.Errorf("%s: %d patterns (at most 1024)", pats.name, len(pats.list)))
		}
		for i, p := range pats.list {
			switch {
			case p == "":
				errs = append(errs, fmt.Errorf("%s[%d]: an empty pattern (an unset variable?); \"*\" is every key", pats.name, i))
			case len(p) > 64<<10:
				errs = append(errs, fmt.Errorf("%s[%d]: a pattern of %d bytes (at most 64 KiB)", pats.name, i, len(p)))
			}
		}
	}
	if c.Backup.GzipLevel < -2 || c.Backup.GzipLevel > 9 {
		errs = append(errs, fmt.Errorf("backup.gzip_level: %d is not in -2..9", c.Backup.GzipLevel))
	}
	if c.Backup.KeysPerSecond < 0 || c.Backup.BytesPerSecond < 0 || c.Restore.KeysPerSecond < 0 {
		errs = append(errs, errors.New("rates must not be negative"))
	}
	switch strings.ToLower(c.Restore.TTL) {
	case "", "relative", "absolute":
	default:
		errs = append(errs, fmt.Errorf("restore.ttl: %q: want relative or absolute", c.Restore.TTL))
	}
	if c.Schedule.IntervalHours < 0 {
		errs = append(errs, errors.New("schedule.interval_hours: negative"))
	}
	if c.Retention.KeepLast < 0 {
		errs = append(errs, errors.New("retention.keep_last: negative"))
	}
	if c.Backup.Encrypt.PassphraseFile != "" && (len(c.Backup.Encrypt.Recipients) > 0 || c.Backup.Encrypt.RecipientsFile != "") {
		errs = append(errs, errors.New("backup.encrypt: a passphrase cannot be combined with recipients"))
	}
	if c.Archiving.SegmentSeconds < 0 || c.Archiving.SegmentSeconds > 3600 {
		errs = append(errs, fmt.Errorf("archiving.segment_seconds: %g is not in 0..3600", c.Archiving.SegmentSeconds))
	}
	if c.Archiving.SegmentBytes < 0 || c.Archiving.SegmentBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("archiving.segment_bytes: %d is not in 0..1 GiB", c.Archiving.SegmentBytes))
	}
	if c.Archiving.MaxStall < 0 {
		errs = append(errs, errors.New("archiving.max_stall: negative"))
	}
	if c.Archiving.Enabled && (len(c.Backup.Include) > 0 || len(c.Backup.Exclude) > 0) {
		errs = append(errs, errors.New("archiving: the stream holds every key, so its bases must too: backup.include and backup.exclude cannot be combined with archiving.enabled"))
	}
	errs = append(errs, c.Drill.validate(c.Redis.URL)...)
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q: want debug, info, warn or error", c.Log.Level))
	}
	switch strings.ToLower(c.Log.Format) {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q: want text or json", c.Log.Format))
	}
	return errors.Join(errs...)
}
