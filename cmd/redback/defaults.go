package main

import (
	"errors"
	"fmt"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
)

// defaultRedis returns, when svc talks to the default Redis server (no
// --redis-url, REDIS_URL or redis.url named another), the note that says
// so; else "". A backup of the wrong server should not pass unnoticed.
func defaultRedis(svc *agent.Service) string {
	if svc.Config().Redis.URL != config.Default().Redis.URL {
		return ""
	}
	return fmt.Sprintf("used the default Redis server, %s (set --redis-url, REDIS_URL or redis.url for another)", svc.Address())
}

// noteDefaultRedis adds defaultRedis's note to a result's warnings and to
// err (unless err is about the archive or the input, not the server).
func noteDefaultRedis(svc *agent.Service, warnings *[]string, err error) error {
	note := defaultRedis(svc)
	if note == "" {
		return err
	}
	*warnings = append(*warnings, note)
	if err == nil || errors.Is(err, agent.ErrNotFound) || errors.Is(err, agent.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, note)
}
