package agent

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/lease"
	"github.com/redback-dev/redback/codec"
	"github.com/redback-dev/redback/sinks"
)

// ArchiveInfo describes one stored archive (its size, time, layers and
// manifest), as Stat, Open and List see it.
type ArchiveInfo = sinks.Info

// Progress reports a running backup or restore: keys done, keys expected
// (-1 when unknown) and bytes.
type Progress = engine.Progress

// ValidateName checks that name is an archive name redback writes (the
// seed's redis_backup_YYYYMMDD_HHMMSS.json[.gz][.age]); anything else, a
// path among them, is an error wrapping ErrInvalid.
func ValidateName(name string) error { return translate(sinks.ValidateName(name)) }

// ValidateTTLMode checks a restore's TTL mode ("", "relative" or
// "absolute").
func ValidateTTLMode(mode string) error {
	if _, err := engine.ParseTTLMode(mode); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// RedactURL returns a Redis URL fit for a log: without its password.
func RedactURL(raw string) string { return engine.RedactURL(raw) }

// AddressOf names the server of a Redis URL by its address and database
// ("localhost:6379/0"), never its password; "default" when the URL does
// not parse.
func AddressOf(rawURL string) string {
	opt, err := engine.Connection{URL: rawURL}.Options()
	if err != nil {
		return "default"
	}
	return addressOf(opt)
}

func addressOf(o *redis.Options) string { return o.Addr + "/" + strconv.Itoa(o.DB) }

// Address names the Service's Redis server as AddressOf does.
func (s *Service) Address() string { return addressOf(s.redis) }

// Storage describes where the archives go (a folder, or a bucket URL
// without credentials).
func (s *Service) Storage() string { return s.sink.String() }

// Ping checks that the Redis server answers (the readiness probe).
func (s *Service) Ping(ctx context.Context) error {
	if _, err := engine.Inspect(ctx, s.redis); err != nil {
		return fmt.Errorf("redis does not answer: %w", err)
	}
	return s.archivingStalled()
}

// RedisStats describes what the Redis server holds (GET /api/stats).
func (s *Service) RedisStats(ctx context.Context) (RedisStatsResult, error) {
	f, err := engine.Inspect(ctx, s.redis)
	if err != nil {
		return RedisStatsResult{}, err
	}
	v := RedisStatsResult{
		RedisVersion: f.RedisVersion,
		Role:         f.Role,
		Mode:         f.Mode,
		UsedMemory:   f.UsedMemory,
		UsedMemoryMB: math.Round(float64(f.UsedMemory)/(1<<20)*100) / 100,
		KeysPerDB:    map[string]int64{},
	}
	for db, n := range f.KeysPerDB {
		v.KeysPerDB[strconv.Itoa(db)] = n
		v.TotalKeys += n
	}
	return v, nil
}

// LastBackup returns the creation time of the newest archive (zero when
// there is none).
func (s *Service) LastBackup(ctx context.Context) (time.Time, error) {
	infos, err := s.sink.List(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("list archives: %w", translate(err))
	}
	var last time.Time
	for _, in := range infos {
		if in.Created.After(last) {
			last = in.Created
		}
	}
	return last, nil
}

// Lease returns the HA lease of lease.key on the backed-up server (one
// lease per Service; its client is closed by Close). It is an error when
// lease.enabled is off.
func (s *Service) Lease() (*lease.Lease, error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if !s.cfg.Lease.Enabled {
		return nil, fmt.Errorf("%w: lease.enabled is off", ErrInvalid)
	}
	if s.lease != nil {
		return s.lease, nil
	}
	rdb := redis.NewClient(s.redis)
	l, err := lease.New(rdb, s.cfg.Lease.Key, s.cfg.Lease.TTL)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("lease: %w", err)
	}
	s.lease, s.leaseClient = l, rdb
	return l, nil
}

// OpenDecrypted opens an encrypted archive with its age layer removed (the
// gzip JSON inside, `redback download --decrypt`). No identity is an
// ErrInvalid error, and so is an identity that does not open it. The caller
// closes the reader; prune spares the archive until then.
func (s *Service) OpenDecrypted(ctx context.Context, name string, ids []age.Identity) (io.ReadCloser, error) {
	if !codec.LayersFromName(name).Age {
		return nil, fmt.Errorf("%w: %s is not encrypted", ErrInvalid, name)
	}
	rc, _, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	plain, err := codec.Decrypt(rc, ids)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("%s: %w", name, translate(err))
	}
	return struct {
		io.Reader
		io.Closer
	}{plain, rc}, nil
}
