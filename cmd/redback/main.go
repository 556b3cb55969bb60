// Command redback backs up and restores Redis. See README.md and
// docs/ for the commands, the configuration and the archive format.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/scheduler"
)

// Exit codes (DESIGN.md): 0 success, 1 failure, 2 bad usage or bad input.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitInterrupted is a shell's status for a command ended by SIGINT
	// (128 + 2), also used for SIGTERM.
	exitInterrupted = 130
)

// usageError marks errors in the command line itself.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// setMemoryLimit sets the Go runtime's soft memory limit for the storage in
// use, unless GOMEMLIMIT is set. redback streams, so its live heap is small
// whatever the dataset, and a soft limit keeps the heap from doubling between
// collections; uploads to S3 and GCS hold their parts in memory (8 MiB
// each, two in flight), so those get more room than a folder. A backup
// gets 42 MiB: the seen-key set of 96-bit hashes holds 18 MiB at a million
// keys, and the limit leaves the collector the 24 MiB of room above it that
// a million-key backup needs to run no slower than with more
// (docs/PERFORMANCE.md; at 36 MiB with the 24 MiB set of 128-bit hashes the
// collector cost 2.3 s of an 11 s backup).
// Commands that take no backup (restore, verify) keep the 36 MiB that was
// enough before. serve and schedule with several targets back them up in
// parallel, so the limit is per target.
func setMemoryLimit(ts []target, backups bool) {
	if os.Getenv("GOMEMLIMIT") != "" || len(ts) == 0 {
		return
	}
	limit := int64(36 << 20)
	if backups {
		limit = 42 << 20
	}
	for _, t := range ts {
		if strings.HasPrefix(t.Config.Storage, "s3://") || strings.HasPrefix(t.Config.Storage, "gs://") {
			limit = 96 << 20 // a bucket: uploads hold their parts in memory
		}
	}
	debug.SetMemoryLimit(limit * int64(len(ts)))
}

// startProfile writes a CPU profile to $REDBACK_CPUPROFILE and a heap
// profile to $REDBACK_MEMPROFILE when set (for docs/PERFORMANCE.md).
func startProfile() func() {
	var stops []func()
	if p := os.Getenv("REDBACK_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
			}
		}
	}
	if p := os.Getenv("REDBACK_MEMPROFILE"); p != "" {
		stops = append(stops, func() {
			if f, err := os.Create(p); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// globals are the flags every command takes.
type globals struct {
	configPath string
	redisURL   string
	storage    string
	target     string
	stdout     io.Writer
	stderr     io.Writer
	// clock drives the schedulers (nil: the real clock; tests set one).
	clock scheduler.Clock
	// backs says the command takes backups (its memory limit makes room
	// for the seen-key set, and it creates a missing storage folder: no
	// other command does, but one that reads a local file, fromFile).
	backs bool
	// quiet (-q) prints nothing on success but --json output; verbose
	// (-v) logs at info level in one-shot commands, which otherwise log
	// warnings and errors only (their summary says the rest).
	quiet, verbose bool
	// fromFile says the command reads a local archive file in place
	// (restore, keys, show or diff of ./path): the storage folder is then not needed to exist,
	// and is made as a backup would (on a fresh host the first restore
	// comes before any backup).
	fromFile bool
	// bar is the progress bar's line on stderr, which log records clear
	// first (logWriter).
	bar *barLine
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, &globals{stdout: stdout, stderr: stderr}, args)
}

// runWith runs the command line args with g's writers (and clock) and
// returns the exit status.
func runWith(ctx context.Context, g *globals, args []string) int {
	stderr := g.stderr
	root := newRoot(ctx, g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil {
		// Ctrl-C or SIGTERM stopped the command: nothing was left behind
		// (archives and restores are atomic per key), and a script tells
		// an interrupt from a failure by the status, as a shell does.
		fmt.Fprintln(stderr, "redback: interrupted")
		return exitInterrupted
	}
	var reported reportedError
	var status exitStatus
	if !errors.As(err, &reported) && !errors.As(err, &status) {
		fmt.Fprintf(stderr, "redback: %v\n", err)
	}
	return exitCode(err)
}

// newRoot builds the command tree over g: every command, flag, example
// and completion.
func newRoot(ctx context.Context, g *globals) *cobra.Command {
	stdout, stderr := g.stdout, g.stderr
	root := &cobra.Command{
		Use:           "redback",
		Short:         "Back up and restore Redis",
		Long:          "redback backs up every key of a Redis server into gzip JSON archives (optionally age-encrypted)\nin a local folder, S3 or GCS, restores them safely, prunes old ones and serves an admin API.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "config file (default ./agent.yaml when present)")
	pf.StringVar(&g.redisURL, "redis-url", "", "Redis URL (overrides REDIS_URL and the config)")
	pf.StringVar(&g.storage, "storage", "", "storage: a folder or a sink URL (overrides REDBACK_STORAGE and the config)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print nothing on success (errors still go to stderr; --json output stays)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what the command does as it goes (info level; debug with REDBACK_LOG_LEVEL=debug)")
	pf.StringVar(&g.target, "target", os.Getenv("REDBACK_TARGET"), "the target of agent.yaml's targets list to work on (default $REDBACK_TARGET, else the first; serve and schedule: all)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })

	// Every command, in one place.
	root.AddCommand(
		backupCmd(ctx, g), listCmd(ctx, g), statsCmd(ctx, g), restoreCmd(ctx, g),
		downloadCmd(ctx, g), deleteCmd(ctx, g), verifyCmd(ctx, g), pruneCmd(ctx, g),
		exportCmd(ctx, g), importCmd(ctx, g), keysCmd(ctx, g), showCmd(ctx, g), diffCmd(ctx, g), serveCmd(ctx, g), scheduleCmd(ctx, g), totpCmd(ctx, g),
		versionCmd(ctx, g), probeCmd(ctx, g), checkCmd(ctx, g), tokenCmd(ctx, g), drillCmd(ctx, g), pinCmd(ctx, g), unpinCmd(ctx, g),
	)
	// Argument errors are usage errors by type, not by their text.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.AddCommand(environmentTopic())
	versionFlag(root)
	root.InitDefaultCompletionCmd() // now, so that it gets its examples
	withExamples(root)
	completions(ctx, g, root)
	typedArgs(root)
	return root
}

// exitCode maps an error to the process's exit status, in one place.
func exitCode(err error) int {
	var u usageError
	var status exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &status):
		return status.code
	case errors.As(err, &u), errors.Is(err, agent.ErrInvalid), errors.Is(err, agent.ErrNotFound):
		return exitUsage
	}
	return exitFailure
}

// typedArgs makes the argument check of c and of every command below it
// return a usageError.
func typedArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typedArgs(sub)
	}
}

// reportedError is an error already printed (as JSON or text).
type reportedError struct{ error }

func (r reportedError) Unwrap() error { return r.error }

// logger returns the logger for cfg, writing to stderr.
//
// The level is REDBACK_LOG_LEVEL's, else log.level's, else info; quiet
// (a one-shot command without -v) raises it to warn.
func (g *globals) logger(cfg config.Config, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	name := os.Getenv("REDBACK_LOG_LEVEL")
	if name == "" {
		name = cfg.Log.Level
	}
	switch strings.ToLower(name) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	if quiet && !g.verbose && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.ToLower(cfg.Log.Format) == "json" {
		return slog.New(slog.NewJSONHandler(g.logWriter(), opts))
	}
	return slog.New(slog.NewTextHandler(g.logWriter(), opts))
}

// service opens the agent of the selected target.
//
// Every one-shot command prints its own summary, so its log says only what
// goes wrong (warnings and errors), unless -v.
func (g *globals) service(ctx context.Context) (*agent.Service, error) {
	_, ts, err := g.selectTargets(false)
	if err != nil {
		return nil, err
	}
	setMemoryLimit(ts, g.backs)
	open := agent.NewExisting // only a backup makes the storage folder
	if g.backs || g.fromFile {
		open = agent.New
	}
	return open(ctx, ts[0].Config, ts[0].Logger(g.logger(ts[0].Config, true)))
}

// withService opens the agent for one command, runs fn and closes it.
func (g *globals) withService(ctx context.Context, fn func(*agent.Service) error) error {
	svc, err := g.service(ctx)
	if err != nil {
		return err
	}
	defer svc.Close()
	return fn(svc)
}

// emit prints v as JSON (with --json) or runs human to print text. When
// err is set the command fails; with --json the error is inside v.
//
// --json output is one compact JSON document on one line (jq pretty-prints
// it), with the fields of the API's responses; it is stable: fields are
// only ever added, never renamed or removed (README.md, "Commands").
func (g *globals) emit(asJSON bool, v any, err error, human func(w io.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		if e := enc.Encode(v); e != nil {
			return e
		}
		if err != nil {
			fmt.Fprintf(g.stderr, "redback: %v\n", err)
			return reportedError{err}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !g.quiet {
		human(g.stdout)
	}
	return nil
}
