package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// probeCmd is `redback probe URL`: a health check for images without curl
// (the Dockerfile's HEALTHCHECK, Kubernetes exec probes on a loopback API).
func probeCmd(ctx context.Context, g *globals) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "probe URL",
		Short: "GET an http(s) URL and exit 0 on a 2xx answer (a health check for images without curl)",
		Long: "GET URL, without following redirects, and exit 0 when it answers 2xx within --timeout,\n" +
			"else 1 (the status, or the error, on stderr). It reads no configuration.\n\n" +
			"Example: redback probe http://127.0.0.1:8080/healthz",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError{fmt.Errorf("probe: %q: want an http:// or https:// URL", args[0])}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("probe: --timeout %s: want a duration above 0", timeout)}
			}
			return probe(ctx, u.String(), timeout)
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return c
}

// probe GETs u and fails unless it answers 2xx within timeout.
func probe(ctx context.Context, u string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("probe: %s: %s", u, res.Status)
	}
	return nil
}
