package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redback-dev/redback/agent/config"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the webhook's secret. A receiver recomputes it over the raw
// body and compares in constant time (hmac.Equal); the body's "time" lets
// it refuse old replays.
const SignatureHeader = "X-Redback-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Webhook POSTs events to a URL.
type Webhook struct {
	url     string
	slack   bool
	secret  []byte
	timeout time.Duration
	// Client sends the requests (http.DefaultClient's transport, no
	// redirects followed, when nil).
	Client *http.Client
	// Backoff paces the retries.
	Backoff Backoff
}

// NewWebhook checks a webhook's configuration.
func NewWebhook(c config.Webhook) (*Webhook, error) {
	if _, err := checkURL(c.URL); err != nil {
		return nil, err
	}
	w := &Webhook{url: c.URL, secret: []byte(c.Secret), timeout: c.Timeout, Backoff: DefaultBackoff}
	switch strings.ToLower(c.Format) {
	case "", "json":
	case "slack":
		w.slack = true
	default:
		return nil, fmt.Errorf("format: %q: want json or slack", c.Format)
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 20 {
		return nil, fmt.Errorf("max_attempts: %d: want 1..20 (0: 5)", c.MaxAttempts)
	}
	if c.MaxAttempts > 0 {
		w.Backoff.Attempts = c.MaxAttempts
	}
	if w.timeout <= 0 {
		w.timeout = 10 * time.Second
	}
	return w, nil
}

// Notify POSTs e (as JSON, or as a Slack message), retrying network
// errors, 408, 425, 429 and 5xx answers.
func (w *Webhook) Notify(ctx context.Context, e Event) error {
	var body []byte
	var err error
	if w.slack {
		body, err = json.Marshal(map[string]string{"text": slackText(e)})
	} else {
		body, err = json.Marshal(e)
	}
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}, "X-Redback-Event": {string(e.Kind)}}
	if len(w.secret) > 0 {
		hdr.Set(SignatureHeader, Sign(w.secret, body))
	}
	return w.Backoff.Do(ctx, func(ctx context.Context) error {
		return send(ctx, w.Client, w.timeout, http.MethodPost, w.url, hdr, body)
	})
}

func slackText(e Event) string {
	if e.Kind != Succeeded {
		return "\u274c " + summary(e)
	}
	return "\u2705 " + summary(e)
}

// send makes one request; the error never holds the URL's path or query.
func send(ctx context.Context, client *http.Client, timeout time.Duration, method, url string, hdr http.Header, body []byte) error {
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return permanent{errors.New("bad URL")}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "redback")
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error holds the whole URL: keep only the cause.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return fmt.Errorf("%s %s: %w", method, Redact(url), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s %s: %s", method, Redact(url), resp.Status)
	switch {
	case resp.StatusCode == 429 || resp.StatusCode == 503:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return retryAfter{err, time.Duration(s) * time.Second}
		}
		return err
	case resp.StatusCode == 408 || resp.StatusCode == 425 || resp.StatusCode >= 500:
		return err
	}
	return permanent{err}
}

// Heartbeat fetches a URL after each successful backup (healthchecks.io,
// Uptime Kuma push monitors, Better Stack heartbeats): its silence is the
// alarm.
type Heartbeat struct {
	url     string
	timeout time.Duration
	Client  *http.Client
	Backoff Backoff
}

// NewHeartbeat checks a heartbeat's configuration.
func NewHeartbeat(c config.Heartbeat) (*Heartbeat, error) {
	if _, err := checkURL(c.URL); err != nil {
		return nil, err
	}
	h := &Heartbeat{url: c.URL, timeout: c.Timeout, Backoff: DefaultBackoff}
	if h.timeout <= 0 {
		h.timeout = 10 * time.Second
	}
	return h, nil
}

// Notify GETs the URL when e is a success, and does nothing otherwise.
func (h *Heartbeat) Notify(ctx context.Context, e Event) error {
	if e.Kind != Succeeded {
		return nil
	}
	return h.Backoff.Do(ctx, func(ctx context.Context) error {
		return send(ctx, h.Client, h.timeout, http.MethodGet, h.url, nil, nil)
	})
}
