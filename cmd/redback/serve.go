package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/engine"
	"github.com/redback-dev/redback/agent/jobs"
	"github.com/redback-dev/redback/agent/metrics"
	"github.com/redback-dev/redback/agent/scheduler"
	"github.com/redback-dev/redback/api"
)

// serveTarget is one target of `redback serve`: its configuration and its
// open agent.
type serveTarget struct {
	target
	svc *agent.Service
	// clock drives the target's scheduler (nil: the real clock).
	clock scheduler.Clock
}

// serveRunner builds one long-lived part of `redback serve` besides the
// API (the scheduler) for one target. It is called once per target, after
// the Services and the job Manager exist and before the API listens; an
// error stops serve with it. The returned run is called in its own
// goroutine with a context that is cancelled when serve shuts down
// (SIGINT, SIGTERM, or the API failing); run must return soon after, with
// nil or the context's error when it stopped because of that. Work that
// must survive a client or a shutdown signal for a while (a backup) goes
// through jobs.Manager.StartIn with the target's name as the slot: serve
// lets running jobs finish for api.shutdown_timeout before it cancels them.
type serveRunner func(ctx context.Context, t serveTarget, jm *jobs.Manager, log *slog.Logger) (run func(context.Context) error, err error)

// serveRunners are the parts that other files add, in an init(), for
// `redback serve` to start: serveRunners = append(serveRunners, ...).
var serveRunners []serveRunner

func init() {
	extraCommands = append(extraCommands, serveCmd)
}

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

// serve runs until ctx is cancelled, then shuts down gracefully.
func (g *globals) serve(ctx context.Context) error {
	cfg, ts, err := g.selectTargets(true)
	if err != nil {
		return err
	}
	log := g.logger(cfg, false)
	opts, err := api.OptionsFromConfig(cfg.API)
	if err != nil {
		return fmt.Errorf("%w: refusing to start the API: %v", agent.ErrInvalid, err)
	}
	opts.Log = log
	if opts.Identities, err = agent.LoadIdentities(append(identityFiles(nil), cfg.Restore.Identities...)); err != nil {
		return err
	}
	tlsConf, err := loadTLS(cfg.API.TLSCert, cfg.API.TLSKey)
	if err != nil {
		return err
	}

	var targets []serveTarget
	var apiTargets []api.Target
	for _, t := range ts {
		svc, err := agent.New(ctx, t.cfg, t.logger(log))
		if err != nil {
			if t.listed {
				return fmt.Errorf("target %s: %w", t.name, err)
			}
			return err
		}
		defer svc.Close()
		targets = append(targets, serveTarget{target: t, svc: svc, clock: g.clock})
		apiTargets = append(apiTargets, api.Target{Name: t.name, Service: svc})
	}
	jm := jobs.New(jobs.Options{})
	opts.Status = metrics.Default()
	srv, err := api.NewTargets(apiTargets, jm, opts)
	if err != nil {
		return fmt.Errorf("%w: %v", agent.ErrInvalid, err)
	}
	var runs []func(context.Context) error
	for _, t := range targets {
		for _, build := range serveRunners {
			run, err := build(ctx, t, jm, log)
			if err != nil {
				if t.listed {
					return fmt.Errorf("target %s: %w", t.name, err)
				}
				return err
			}
			runs = append(runs, run)
		}
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
	if len(targets) == 1 && !targets[0].listed {
		log.Info("api listening", "addr", ln.Addr().String(), "tls", tlsConf != nil,
			"redis", engine.RedactURL(targets[0].cfg.Redis.URL), "storage", targets[0].svc.Sink().String())
	} else {
		log.Info("api listening", "addr", ln.Addr().String(), "tls", tlsConf != nil, "targets", len(targets))
		for _, t := range targets {
			log.Info("target", "target", t.name, "redis", engine.RedactURL(t.cfg.Redis.URL), "storage", t.svc.Sink().String())
		}
	}

	// The API's timeouts (api.header_timeout, idle) and sampled error log.
	hs := srv.HTTPServer()
	failed := make(chan error, 1+len(runs))
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("api: %w", err)
		}
	}()
	runCtx, stopRunners := context.WithCancel(ctx)
	defer stopRunners()
	var runners sync.WaitGroup
	for _, run := range runs {
		runners.Add(1)
		go func() {
			defer runners.Done()
			if err := run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				failed <- err
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: no new requests; waiting for running jobs", "timeout", cfg.API.ShutdownTimeout)
	case runErr = <-failed:
		log.Error("shutting down after a failure", "err", runErr)
	}
	stopRunners()
	shutdown(log, hs, jm, cfg.API.ShutdownTimeout)
	runners.Wait()
	log.Info("stopped")
	return runErr
}

// shutdown stops the HTTP server and the jobs: new requests and jobs are
// refused at once; running jobs may finish within timeout, then they are
// cancelled (and their waiting requests answered, for a few more seconds).
func shutdown(log *slog.Logger, hs *http.Server, jm *jobs.Manager, timeout time.Duration) {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	jobsCtx, cancelJobs := context.WithTimeout(context.Background(), timeout)
	defer cancelJobs()
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), timeout+15*time.Second)
	defer cancelHTTP()
	jobsDone := make(chan error, 1)
	go func() { jobsDone <- jm.Shutdown(jobsCtx) }()
	if err := hs.Shutdown(httpCtx); err != nil {
		log.Warn("closing the connections still open", "err", err)
		_ = hs.Close()
	}
	if err := <-jobsDone; err != nil {
		log.Warn("a running job was cancelled at the shutdown timeout", "timeout", timeout)
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
