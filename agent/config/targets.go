package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// TargetSpec is one entry of agent.yaml's targets list, as written:
//
//	targets:
//	  - name: sessions                      # [a-z0-9_-]+, unique; required
//	    redis: {url: "redis://sessions:6379/0", databases: []}
//	    storage: "s3://backups/sessions"    # or storage_prefix: sessions
//	    schedule: {daily_at: "04:00"}       # optional overrides
//	    retention: {keep_last: 14}
//	    backup: {workers: 2}
//	    lease: {enabled: true}
//
// The sections redis, schedule, retention, backup and lease are merged
// field by field over a copy of the top-level section: a target that
// writes `retention: {keep_last: 14}` keeps the top level's keep_daily and
// the rest; a list (schedule.cron, backup.encrypt.recipients,
// redis.databases) is replaced whole, never appended to. redis.url is
// required in every target, and the top level must then not set one (it
// would be ignored). storage is the target's full location; storage_prefix
// a relative path under the top-level storage (a folder, file://, s3:// or
// gs://); with neither, the prefix is the target's name. The other
// top-level sections (restore, notify, api, log) are shared by all targets.
type TargetSpec struct {
	Name          string
	Redis         Redis
	Storage       string
	StoragePrefix string

	// decode decodes the entry again, over values it overrides (nil for a
	// TargetSpec built in Go: its fields above are all there is).
	decode func(any) error
	// line is the entry's line in the file (0 when unknown).
	line int
}

// targetEntry is the YAML shape of a TargetSpec.
type targetEntry struct {
	Name          string    `yaml:"name"`
	Redis         Redis     `yaml:"redis"`
	Storage       string    `yaml:"storage"`
	StoragePrefix string    `yaml:"storage_prefix"`
	Schedule      Schedule  `yaml:"schedule"`
	Retention     Retention `yaml:"retention"`
	Backup        Backup    `yaml:"backup"`
	Lease         Lease     `yaml:"lease"`
}

// UnmarshalYAML decodes the entry strictly (errors name their line) and
// keeps the decoder, to merge its sections over the top level later.
func (t *TargetSpec) UnmarshalYAML(unmarshal func(any) error) error {
	var e targetEntry
	if err := unmarshal(&e); err != nil {
		return err
	}
	*t = TargetSpec{Name: e.Name, Redis: e.Redis, Storage: e.Storage, StoragePrefix: e.StoragePrefix, decode: unmarshal}
	return nil
}

// Target is one Redis server that the agent backs up, fully resolved.
type Target struct {
	// Name labels the target in metrics, logs, notifications, the API and
	// --target. It is "" for the one target of a configuration without a
	// targets list (callers then name it after its Redis address).
	Name string
	// Config is the target's whole configuration: its own redis, storage,
	// schedule, retention, backup and lease, the shared sections of the
	// top level, and no TargetSpecs. It is what agent.New takes.
	Config Config
}

var targetNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Targets returns the targets in the order of the file: without a targets
// list, the top level as the one target (Name ""). It refuses a bad or
// repeated name, a target without redis.url, a top-level redis.url beside
// a targets list, storage together with storage_prefix, an unsafe
// storage_prefix, and two targets on one storage location (their
// retention and last-backup times would mix). Errors name the entry and,
// for a file, its line.
func (c Config) Targets() ([]Target, error) {
	if len(c.TargetSpecs) == 0 {
		top := c
		top.TargetSpecs = nil
		return []Target{{Config: top}}, nil
	}
	var errs []error
	if c.redisURLLine > 0 {
		errs = append(errs, fmt.Errorf("line %d: redis.url: the top level's Redis is not used when targets are listed; give each target its redis.url", c.redisURLLine))
	}
	out := make([]Target, 0, len(c.TargetSpecs))
	names := map[string]int{}
	places := map[string]int{}
	for i, spec := range c.TargetSpecs {
		where := spec.where(i)
		t, err := c.resolve(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if j, ok := names[t.Name]; ok {
			errs = append(errs, fmt.Errorf("%s: name %q is taken by targets[%d]", where, t.Name, j))
			continue
		}
		names[t.Name] = i
		key := storageKey(t.Config.Storage)
		if j, ok := places[key]; ok {
			errs = append(errs, fmt.Errorf("%s: same storage location as targets[%d] (%s): their retention and last-backup times would mix", where, j, c.TargetSpecs[j].Name))
			continue
		}
		places[key] = i
		out = append(out, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, c.scrubbed(err)
	}
	return out, nil
}

// where names entry i for error messages.
func (t TargetSpec) where(i int) string {
	w := fmt.Sprintf("targets[%d]", i)
	if t.Name != "" {
		w += fmt.Sprintf(" (%s)", truncate(t.Name, 64))
	}
	if t.line > 0 {
		w = fmt.Sprintf("line %d: %s", t.line, w)
	}
	return w
}

// resolve builds the configuration of one target over a copy of c.
func (c Config) resolve(spec TargetSpec) (Target, error) {
	e := targetEntry{
		Name:          spec.Name,
		Redis:         Redis{URL: spec.Redis.URL, Databases: slices.Clone(c.Redis.Databases)},
		Storage:       spec.Storage,
		StoragePrefix: spec.StoragePrefix,
		Schedule:      c.Schedule,
		Retention:     c.Retention,
		Backup:        c.Backup,
		Lease:         c.Lease,
	}
	e.Schedule.Cron = slices.Clone(c.Schedule.Cron)
	e.Backup.Encrypt.Recipients = slices.Clone(c.Backup.Encrypt.Recipients)
	if spec.decode != nil {
		if err := spec.decode(&e); err != nil {
			return Target{}, errors.New(yaml.FormatError(err, false, false))
		}
	} else if spec.Redis.Databases != nil {
		e.Redis.Databases = spec.Redis.Databases
	}
	if !targetNameRE.MatchString(e.Name) {
		return Target{}, fmt.Errorf("name %q: want 1 to 64 of a-z, 0-9, '_' and '-'", truncate(e.Name, 64))
	}
	if e.Redis.URL == "" {
		return Target{}, errors.New("redis.url: empty (every target names its Redis server)")
	}
	storage := e.Storage
	switch {
	case e.Storage != "" && e.StoragePrefix != "":
		return Target{}, errors.New("give storage or storage_prefix, not both")
	case storage == "":
		prefix := e.StoragePrefix
		if prefix == "" {
			prefix = e.Name
		}
		if err := checkPrefix(prefix); err != nil {
			return Target{}, fmt.Errorf("storage_prefix: %w", err)
		}
		var err error
		if storage, err = joinStorage(c.Storage, prefix); err != nil {
			return Target{}, fmt.Errorf("storage_prefix: %w", err)
		}
	}
	t := c
	t.TargetSpecs, t.redisURLLine = nil, 0
	t.Redis, t.Storage = e.Redis, storage
	t.Schedule, t.Retention, t.Backup, t.Lease = e.Schedule, e.Retention, e.Backup, e.Lease
	if err := t.validateOne(); err != nil {
		return Target{}, err
	}
	return Target{Name: e.Name, Config: t}, nil
}

var prefixSegRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkPrefix accepts a relative path of segments of letters, digits, '.',
// '_' and '-', none of them "." or "..".
func checkPrefix(p string) error {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || filepath.IsAbs(p) {
		return fmt.Errorf("%q: want a relative path, not an absolute one", truncate(p, 64))
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q: %q segments are not allowed", truncate(p, 64), seg)
		}
		if !prefixSegRE.MatchString(seg) {
			return fmt.Errorf("%q: want segments of letters, digits, '.', '_' and '-' separated by '/'", truncate(p, 64))
		}
	}
	return nil
}

// joinStorage puts the relative path prefix under the storage location
// base: a sub-folder of a folder, a longer path (object prefix) in a URL.
func joinStorage(base, prefix string) (string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if !strings.Contains(base, "://") {
		return filepath.Join(base, filepath.FromSlash(prefix)), nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", errors.New("the top-level storage is a malformed URL")
	}
	if u.Scheme == "mem" {
		return "", errors.New("a mem:// storage takes no prefix: give the target its own storage")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + prefix
	u.RawPath = ""
	return u.String(), nil
}

// storageKey normalises a storage location for comparison: a folder and a
// file:// URL become the absolute path; a bucket URL its scheme, bucket,
// clean prefix and endpoint (the other parameters do not change where
// archives go).
func storageKey(s string) string {
	if !strings.Contains(s, "://") {
		if abs, err := filepath.Abs(s); err == nil {
			return "file://" + abs
		}
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if strings.EqualFold(u.Scheme, "file") {
		return "file://" + filepath.Clean(filepath.FromSlash(u.Path))
	}
	key := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + path.Clean("/"+u.Path)
	if ep := u.Query().Get("endpoint"); ep != "" {
		key += "?endpoint=" + strings.ToLower(strings.TrimSuffix(ep, "/"))
	}
	return key
}

// locateTargets records the lines of the targets and of a top-level
// redis.url in the parsed file, for error messages.
func (c *Config) locateTargets(f *ast.File) {
	line := func(p string) int {
		yp, err := yaml.PathString(p)
		if err != nil {
			return 0
		}
		n, err := yp.FilterFile(f)
		if err != nil || n == nil || n.GetToken() == nil {
			return 0
		}
		return n.GetToken().Position.Line
	}
	c.redisURLLine = line("$.redis.url")
	for i := range c.TargetSpecs {
		c.TargetSpecs[i].line = line(fmt.Sprintf("$.targets[%d]", i))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
