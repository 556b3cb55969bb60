// Package notify tells people and monitors about scheduled backups:
// webhooks (JSON, optionally HMAC-signed, or Slack-compatible), e-mail
// through SMTP, and a heartbeat URL fetched after each success only.
//
// Every sender retries with bounded exponential backoff. Errors and logs
// never carry a secret: URLs are shown as scheme://host only (a Slack hook
// URL is itself a secret), HMAC keys and SMTP passwords never appear.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
)

// Kind is what happened.
type Kind string

// The kinds of events.
const (
	Succeeded Kind = "backup.succeeded"
	Failed    Kind = "backup.failed"
	// DrillFailed is a restore drill whose archive did not restore to
	// what it records (Event.Drill says how). Notifiers that take
	// failures take it.
	DrillFailed Kind = "drill.failed"
)

// Event is one finished backup. It is the JSON body of a webhook.
type Event struct {
	Kind   Kind      `json:"event"`
	Target string    `json:"target"`
	Host   string    `json:"host,omitempty"`
	Time   time.Time `json:"time"`
	// Success is Result.Success, repeated at the top for simple filters.
	Success bool               `json:"success"`
	Result  agent.BackupResult `json:"result"`
	// Drill is the drill's result, for a drill event (Result then names
	// the archive and the error only).
	Drill *agent.DrillResult `json:"drill,omitempty"`
}

// NewDrillEvent describes a failed drill of target that ended at t.
func NewDrillEvent(target, host string, t time.Time, res agent.DrillResult) Event {
	return Event{Kind: DrillFailed, Target: target, Host: host, Time: t.UTC(), Success: false,
		Result: agent.BackupResult{Filename: res.Filename, Error: res.Error}, Drill: &res}
}

// NewEvent describes the outcome of a backup of target that ended at t.
func NewEvent(target, host string, t time.Time, res agent.BackupResult, err error) Event {
	e := Event{Kind: Succeeded, Target: target, Host: host, Time: t.UTC(), Success: err == nil, Result: res}
	if err != nil {
		e.Kind = Failed
		e.Result.Success = false
		if e.Result.Error == "" {
			e.Result.Error = err.Error()
		}
	}
	return e
}

// Notifier sends one event. Implementations retry as they see fit and
// return when done or when ctx is cancelled.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// Set sends each event to several notifiers at once.
type Set struct {
	entries []entry
	log     *slog.Logger
}

type entry struct {
	name string // for logs, no secrets
	on   map[Kind]bool
	n    Notifier
}

// Add adds n, which receives the kinds in on (all when empty).
func (s *Set) Add(name string, n Notifier, on ...Kind) {
	m := map[Kind]bool{}
	for _, k := range on {
		m[k] = true
	}
	if len(m) == 0 {
		m[Succeeded], m[Failed] = true, true
	}
	if m[Failed] {
		m[DrillFailed] = true
	}
	s.entries = append(s.entries, entry{name: name, on: m, n: n})
}

// Len returns how many notifiers the set holds.
func (s *Set) Len() int { return len(s.entries) }

// Notify sends e to every notifier that wants it, concurrently, and waits
// for all. Failures are logged and joined into the returned error.
func (s *Set) Notify(ctx context.Context, e Event) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, en := range s.entries {
		if !en.on[e.Kind] {
			continue
		}
		wg.Go(func() {
			err := en.n.Notify(ctx, e)
			if err != nil {
				if s.log != nil {
					s.log.Warn("notification failed", "to", en.name, "event", string(e.Kind), "err", err)
				}
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", en.name, err))
				mu.Unlock()
			} else if s.log != nil {
				s.log.Debug("notification sent", "to", en.name, "event", string(e.Kind))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FromConfig builds the notifiers of agent.yaml's notify section; errors
// name the offending key. log receives failures (nil: discarded).
func FromConfig(c config.Notify, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{log: log}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("notify.webhooks[%d]", i)
		on, err := parseOn(key, w.On, true)
		if err != nil {
			return nil, err
		}
		wh, err := NewWebhook(w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		s.Add("webhook "+Redact(w.URL), wh, on...)
	}
	if c.Email.Host != "" {
		on, err := parseOn("notify.email", c.Email.On, false)
		if err != nil {
			return nil, err
		}
		m, err := NewMailer(c.Email)
		if err != nil {
			return nil, fmt.Errorf("notify.email: %w", err)
		}
		s.Add("email via "+c.Email.Host, m, on...)
	}
	if c.Heartbeat.URL != "" {
		h, err := NewHeartbeat(c.Heartbeat)
		if err != nil {
			return nil, fmt.Errorf("notify.heartbeat: %w", err)
		}
		s.Add("heartbeat "+Redact(c.Heartbeat.URL), h, Succeeded)
	}
	return s, nil
}

// parseOn reads an "on:" list; empty means both kinds, or failures only
// when both is false. Failures are those of backups and of drills (Add).
func parseOn(key string, on []string, both bool) ([]Kind, error) {
	if len(on) == 0 {
		if both {
			return []Kind{Succeeded, Failed}, nil
		}
		return []Kind{Failed}, nil
	}
	var out []Kind
	for _, o := range on {
		switch strings.ToLower(strings.TrimSpace(o)) {
		case "success", "succeeded":
			out = append(out, Succeeded)
		case "failure", "failed":
			out = append(out, Failed)
		default:
			return nil, fmt.Errorf("%s.on: %q: want success or failure", key, o)
		}
	}
	return out, nil
}

// Redact returns scheme://host of a URL: its path, query and user info may
// hold secrets (Slack and healthchecks.io URLs do).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// checkURL accepts absolute http and https URLs, without echoing them.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("url: want an absolute http:// or https:// URL")
	}
	return u, nil
}

// summary is a one-line human description of e.
func summary(e Event) string {
	who := e.Target
	if e.Host != "" {
		who += " (on " + e.Host + ")"
	}
	who = oneLine(who)
	switch e.Kind {
	case Failed:
		return fmt.Sprintf("redback: backup of %s FAILED: %s", who, oneLine(e.Result.Error))
	case DrillFailed:
		return fmt.Sprintf("redback: restore drill of %s FAILED: %s", who, oneLine(e.Result.Error))
	}
	r := e.Result
	if r.Suspect != "" {
		return fmt.Sprintf("redback: backup of %s is SUSPECT (%s): %s, %d keys, %.2f MB in %.1f s; older archives are kept",
			who, oneLine(r.Suspect), r.Filename, r.KeysCount, r.SizeMB, r.DurationSeconds)
	}
	return fmt.Sprintf("redback: backup of %s succeeded: %s, %d keys, %.2f MB in %.1f s",
		who, r.Filename, r.KeysCount, r.SizeMB, r.DurationSeconds)
}
