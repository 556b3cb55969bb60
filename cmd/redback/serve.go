package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/daemon"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/api"
)

func serveCmd(ctx context.Context, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the agent: the admin API (and the scheduler), as agent.yaml says",
		Long: "Run the agent: the TOTP-protected admin API on api.listen (default 127.0.0.1:8080,\n" +
			"REDBACK_LISTEN), over TLS when api.tls_cert and api.tls_key are set, and the scheduler.\n" +
			"With a targets list in agent.yaml, every target (or only the one --target names) gets its\n" +
			"own agent and scheduler: servers back up in parallel, one backup or restore at a time each.\n" +
			"SIGTERM stops it gracefully: a running backup or restore may finish within\n" +
			"api.shutdown_timeout, then it is cancelled (a cancelled backup leaves no archive).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return g.serve(ctx) },
	}
}

// serve runs until ctx is cancelled, then shuts down gracefully: the
// daemon (every target's agent and scheduler) with the API as its runner.
func (g *globals) serve(ctx context.Context) error {
	cfg, ts, err := g.selectTargets(true)
	if err != nil {
		return err
	}
	setMemoryLimit(ts, true)
	log := g.logger(cfg, false)
	opts, err := api.OptionsFromConfig(cfg.API)
	if err != nil {
		return fmt.Errorf("%w: refusing to start the API: %v", agent.ErrInvalid, err)
	}
	opts.Log = log
	opts.DrillMaxAge = cfg.Drill.ReadyMaxAge
	if opts.Identities, err = agent.LoadIdentities(append(identityFiles(nil), cfg.Restore.Identities...)); err != nil {
		return err
	}
	tlsConf, err := loadTLS(cfg.API.TLSCert, cfg.API.TLSKey)
	if err != nil {
		return err
	}
	jm := jobs.New(jobs.Options{})
	m := metrics.Default()
	d, err := daemon.Open(ctx, ts, daemon.Options{Log: log, Clock: g.clock, Jobs: jm, ShutdownTimeout: cfg.API.ShutdownTimeout, Metrics: m, Archive: true})
	if err != nil {
		return err
	}
	defer d.Close()
	var apiTargets []api.Target
	for _, t := range d.Targets() {
		apiTargets = append(apiTargets, api.Target{Name: t.Name, Service: t.Service})
	}
	opts.Status, opts.Metrics = m, m.Handler()
	srv, err := api.NewTargets(apiTargets, jm, opts)
	if err != nil {
		return fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}

	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.API.Listen, err)
	}
	// The API's connection caps (under TLS, so that handshakes count).
	ln = srv.Listener(ln)
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	warnIfExposed(log, ln.Addr(), tlsConf != nil)
	if rs := d.Targets(); len(rs) == 1 && !rs[0].Listed {
		log.Info("api listening", "addr", ln.Addr().String(), "tls", tlsConf != nil,
			"redis", agent.RedactURL(rs[0].Config.Redis.URL), "storage", rs[0].Service.Storage())
	} else {
		log.Info("api listening", "addr", ln.Addr().String(), "tls", tlsConf != nil, "targets", len(rs))
		for _, t := range rs {
			log.Info("target", "target", t.Name, "redis", agent.RedactURL(t.Config.Redis.URL), "storage", t.Service.Storage())
		}
	}
	// The API's timeouts (api.header_timeout, idle) and sampled error log.
	runners := []daemon.Runner{httpRunner(log, srv.HTTPServer(), ln, cfg.API.ShutdownTimeout)}
	if cfg.API.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.API.MetricsListen)
		if err != nil {
			return fmt.Errorf("listen on %s (api.metrics_listen): %w", cfg.API.MetricsListen, err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		runners = append(runners, httpRunner(log, metricsServer(m.Handler()), mln, 0))
	}
	return d.Run(ctx, runners...)
}

// metricsServer serves GET /metrics alone (api.metrics_listen): no token,
// nothing of the admin API, so a scraper needs no access to it.
func metricsServer(h http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
}

// httpRunner serves hs on ln until its context ends, then stops it: new
// requests are refused at once; requests waiting for a job get the job's
// shutdown timeout and a few more seconds, then the connections still
// open are closed.
func httpRunner(log *slog.Logger, hs *http.Server, ln net.Listener, timeout time.Duration) daemon.Runner {
	return func(ctx context.Context) error {
		failed := make(chan error, 1)
		go func() { failed <- hs.Serve(ln) }()
		select {
		case err := <-failed:
			return fmt.Errorf("api: %w", err)
		case <-ctx.Done():
		}
		if timeout <= 0 {
			timeout = 5 * time.Minute
		}
		httpCtx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
		defer cancel()
		if err := hs.Shutdown(httpCtx); err != nil {
			log.Warn("closing the connections still open", "err", err)
			_ = hs.Close()
		}
		if err := <-failed; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	}
}

// loadTLS reads the certificate and key when both are set.
func loadTLS(cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%w: api.tls_cert and api.tls_key go together", agent.ErrInvalid)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%w: api.tls_cert/api.tls_key: %v", agent.ErrInvalid, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// warnIfExposed warns loudly when the API listens beyond loopback in clear
// text: tokens and codes would cross the network unencrypted.
func warnIfExposed(log *slog.Logger, addr net.Addr, tlsOn bool) {
	if tlsOn {
		return
	}
	tcp, ok := addr.(*net.TCPAddr)
	if ok && tcp.IP.IsLoopback() {
		return
	}
	log.Warn("!!! THE API LISTENS BEYOND LOOPBACK WITHOUT TLS: tokens, TOTP codes and backups cross the network in clear text. "+
		"Set api.tls_cert and api.tls_key, or listen on 127.0.0.1 behind a TLS proxy (api.trusted_proxies) !!!",
		"addr", addr.String())
}
