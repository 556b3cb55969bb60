// Package config loads agent.yaml: strictly (an unknown or repeated key is
// an error that names its line), with ${VAR} and ${VAR:-default} expanded
// from the environment, then the environment variables and command-line
// flags that override it.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
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
	// TargetSpecs lists the Redis servers of an agent that watches several
	// (see TargetSpec and Targets); empty means the top level is the one
	// target.
	TargetSpecs []TargetSpec `yaml:"targets"`

	// redisURLLine is the line of the top-level redis.url in the file
	// (0 when it is not written there).
	redisURLLine int
}

// Redis says which server to back up.
type Redis struct {
	// URL is redis://[user:password@]host:port/db, rediss://... or
	// unix:///path?db=N.
	URL string `yaml:"url"`
	// Databases to back up; empty means every database that holds keys.
	Databases []int `yaml:"databases"`
}

// Backup tunes backups.
type Backup struct {
	Compress       bool    `yaml:"compress"`
	GzipLevel      int     `yaml:"gzip_level"`
	ScanCount      int     `yaml:"scan_count"`
	Workers        int     `yaml:"workers"`
	KeysPerSecond  float64 `yaml:"keys_per_second"`
	BytesPerSecond float64 `yaml:"bytes_per_second"`
	// VerifyAfter re-reads each new archive end to end after it is stored.
	VerifyAfter bool    `yaml:"verify_after"`
	Encrypt     Encrypt `yaml:"encrypt"`
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
	// maxmemory-policy is allkeys-* (it could evict existing keys).
	AllowEviction bool `yaml:"allow_eviction"`
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
	// ReadyMaxAge makes /readyz fail when the newest backup is older
	// (e.g. 26h); 0 only checks that Redis answers.
	ReadyMaxAge time.Duration `yaml:"ready_max_age"`
	// TrustedProxies are the addresses (IPs or CIDRs) whose
	// X-Forwarded-For is believed, for the audit log and rate limits.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// LoginMaxFailures failed codes per client within LoginWindow lock that
	// client out until the window has passed (defaults 5 and 5m);
	// LoginDailyCap failures in 24 hours from all clients together lock
	// every login (default 100).
	LoginMaxFailures int           `yaml:"login_max_failures"`
	LoginWindow      time.Duration `yaml:"login_window"`
	LoginDailyCap    int           `yaml:"login_daily_cap"`
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
		LoginWindow: 5 * time.Minute, LoginDailyCap: 100, ShutdownTimeout: 5 * time.Minute}
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

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
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

// Expand replaces ${VAR} and ${VAR:-default} in s, except on comment lines
// (whose first non-blank character is '#'). A ${VAR} whose variable is
// unset is an error (so a typo does not become an empty value);
// ${VAR:-default} takes the default when VAR is unset or empty. "$$" is a
// literal "$".
func Expand(s string, env Getenv) (string, error) {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		e, err := expandLine(l, env)
		if err != nil {
			return "", err
		}
		lines[i] = e
	}
	return strings.Join(lines, ""), nil
}

func expandLine(s string, env Getenv) (string, error) {
	var missing []string
	const dollar = "\x00dollar\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		v, ok := env(sub[1])
		if sub[2] != "" {
			if !ok || v == "" {
				return sub[3]
			}
			return v
		}
		if !ok {
			missing = append(missing, sub[1])
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for an optional one)", missing[0], missing[0])
	}
	return strings.ReplaceAll(out, dollar, "$"), nil
}

// Parse decodes YAML text (after expanding variables) over the defaults.
func Parse(data []byte, env Getenv) (Config, error) {
	text, err := Expand(string(data), env)
	if err != nil {
		return Config{}, err
	}
	c := Default()
	if strings.TrimSpace(text) == "" {
		return c, nil
	}
	if err := yaml.UnmarshalWithOptions([]byte(text), &c, yaml.Strict()); err != nil {
		return Config{}, errors.New(yaml.FormatError(err, false, true))
	}
	if len(c.TargetSpecs) > 0 {
		c.locateTargets([]byte(text))
	}
	return c, c.Validate()
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
	return c, c.Validate()
}

// Validate checks values that decode but make no sense. With targets it
// checks every resolved target as well (see Targets).
func (c Config) Validate() error {
	if err := c.validateOne(); err != nil || len(c.TargetSpecs) == 0 {
		return err
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
	if c.Storage == "" {
		errs = append(errs, errors.New("storage: empty"))
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
