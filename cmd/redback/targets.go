package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/scheduler/job"
)

// target is one Redis server of agent.yaml as a command runs it.
type target struct {
	// name labels the target in metrics, logs, notifications, job slots
	// and the API; the one target of a config without a targets list is
	// named after its Redis address ("localhost:6379/0"), as before.
	name string
	// listed is true when the name comes from agent.yaml's targets list.
	listed bool
	cfg    config.Config
}

// logger adds the target's name to log when the config lists targets
// (the log of a single-server agent stays as it was).
func (t target) logger(log *slog.Logger) *slog.Logger {
	if t.listed {
		return log.With("target", t.name)
	}
	return log
}

// selectTargets loads agent.yaml (if any) with the environment and returns
// it with the targets the command works on: the one --target names (or
// $REDBACK_TARGET), or else every target when all is set (serve,
// schedule) and the first one when not. An unknown name is invalid input
// that lists the known ones. --redis-url and --storage override the
// selected target's; with several selected they are refused.
func (g *globals) selectTargets(all bool) (config.Config, []target, error) {
	path := g.configPath
	if path == "" {
		if _, err := os.Stat("agent.yaml"); err == nil {
			path = "agent.yaml"
		}
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	resolved, err := cfg.Targets()
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	listed := len(cfg.TargetSpecs) > 0
	var ts []target
	for _, r := range resolved {
		ts = append(ts, target{name: r.Name, listed: listed, cfg: r.Config})
	}
	switch {
	case g.target != "" && !listed:
		return cfg, nil, usageError{fmt.Errorf("--target %q: the configuration lists no targets (agent.yaml's targets:)", g.target)}
	case g.target != "":
		var names []string
		var found []target
		for _, t := range ts {
			names = append(names, t.name)
			if t.name == g.target {
				found = []target{t}
			}
		}
		if found == nil {
			return cfg, nil, usageError{fmt.Errorf("--target %q: no such target; known: %s", g.target, strings.Join(names, ", "))}
		}
		ts = found
	case !all:
		ts = ts[:1]
	}
	if (g.redisURL != "" || g.storage != "") && len(ts) > 1 {
		return cfg, nil, usageError{fmt.Errorf("--redis-url and --storage apply to one target: add --target NAME")}
	}
	for i := range ts {
		if g.redisURL != "" {
			ts[i].cfg.Redis.URL = g.redisURL
		}
		if g.storage != "" {
			ts[i].cfg.Storage = g.storage
		}
		if !ts[i].listed {
			ts[i].name = "default"
			if opt, err := engine.ParseURL(ts[i].cfg.Redis.URL); err == nil {
				ts[i].name = job.TargetName(opt)
			}
		}
	}
	setMemoryLimit(memoryStorage(ts), len(ts))
	return cfg, ts, nil
}

// memoryStorage is the storage that sets the memory limit: a bucket's when
// any target uploads to one (uploads hold their parts in memory).
func memoryStorage(ts []target) string {
	for _, t := range ts {
		if strings.Contains(t.cfg.Storage, "://") && !strings.HasPrefix(t.cfg.Storage, "file://") {
			return t.cfg.Storage
		}
	}
	return ts[0].cfg.Storage
}
