package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/daemon"
)

// A target is one Redis server of agent.yaml as a command runs it. The one
// target of a config without a targets list is named after its Redis
// address ("localhost:6379/0").
type target = daemon.Target

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
		ts = append(ts, target{Name: r.Name, Listed: listed, Config: r.Config})
	}
	switch {
	case g.target != "" && !listed:
		return cfg, nil, usageError{fmt.Errorf("--target %q: the configuration lists no targets (agent.yaml's targets:)", g.target)}
	case g.target != "":
		var names []string
		var found []target
		for _, t := range ts {
			names = append(names, t.Name)
			if t.Name == g.target {
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
			ts[i].Config.Redis.URL = g.redisURL
		}
		if g.storage != "" {
			ts[i].Config.Storage = g.storage
		}
		if !ts[i].Listed {
			ts[i].Name = agent.AddressOf(ts[i].Config.Redis.URL)
		}
	}
	return cfg, ts, nil
}
