package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func drillCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON     bool
		identities []string
		passFile   string
		o          agent.DrillOptions
	)
	c := &cobra.Command{
		Use:   "drill [FILENAME|latest]",
		Short: "Restore an archive into a scratch server and prove that it holds what the archive records",
		Long: `Restore an archive (default: latest) into a scratch server and prove it: the key counts per
database and per type equal the archive's, and a digest of every key computed while restoring
equals one computed from the server afterwards (values, TTLs, hash field TTLs, stream groups,
consumers and pending entries). The production server is never touched.

The scratch server is drill.redis_url (or --redis-url-scratch): it must be empty, or marked by
an earlier drill (the key redback:drill:scratch); one that holds other keys is refused and left
untouched. Otherwise redback starts drill.server_binary (or --server-binary; default the
redis-server or valkey-server of the archive's kind from PATH) on a unix socket in a temporary
folder and stops it after. The outcome is recorded in the archive's manifest and shown by list.
Exit status 0: the archive restores to what it records; 1: it does not (or the drill failed).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := agent.Latest
			if len(args) == 1 {
				ref = args[0]
			}
			return g.withService(ctx, func(svc *agent.Service) error {
				var err error
				o.Identities, err = archiveKeys(ref, identities, passFile, svc.Config().Restore)
				if err != nil {
					return g.emit(asJSON, agent.DrillResult{Filename: ref, Error: err.Error()}, err, nil)
				}
				res, err := svc.Drill(ctx, ref, o)
				if errors.Is(err, agent.ErrDrillFailed) {
					// A finding, not bad input: status 1.
					if !asJSON {
						printDrill(g.stdout, res)
						fmt.Fprintf(g.stderr, "redback: %v\n", err)
					}
					err = exitStatus{code: exitFailure, msg: err.Error()}
					if !asJSON {
						return err
					}
				}
				return g.emit(asJSON, res, err, func(w io.Writer) { printDrill(w, res) })
			})
		},
	}
	f := c.Flags()
	f.StringVar(&o.RedisURL, "redis-url-scratch", "", "the scratch server to restore into (overrides drill.redis_url)")
	f.StringVar(&o.ServerBinary, "server-binary", "", "the redis-server or valkey-server to start as the scratch server (overrides drill.server_binary)")
	f.Int64Var(&o.MaxKeys, "max-keys", 0, "drill the first N keys only (default drill.max_keys; 0: all)")
	f.StringArrayVar(&identities, "identity", nil, "age identity file (repeatable; default $REDBACK_IDENTITY_FILE)")
	f.StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

// printDrill prints a drill's result as text.
func printDrill(w io.Writer, res agent.DrillResult) {
	verdict := "PASSED"
	if !res.Success {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "Drill %s %s: %d keys restored into %s (%s), %d the same, %d expired during the drill, %.3fs\n",
		verdict, res.Filename, res.Restored, res.Server, res.Scratch, res.Compared, res.ExpiredDuring, res.DurationSeconds)
	for _, m := range res.Mismatches {
		fmt.Fprintln(w, "  count:", m)
	}
	for _, d := range res.Differences {
		fmt.Fprintf(w, "  %s db %d %s %v\n", d.Change, d.DB, d.Escaped, d.What)
	}
	if n := res.DifferencesCount - int64(len(res.Differences)); n > 0 {
		fmt.Fprintf(w, "  ... and %d more keys\n", n)
	}
	for _, e := range res.RestoreErrors {
		fmt.Fprintln(w, "  refused:", e)
	}
	for _, warn := range res.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}

func pinCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON bool
		note   string
	)
	c := &cobra.Command{
		Use:   "pin FILENAME",
		Short: "Pin an archive: no retention rule prunes it, and it counts towards none",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return g.emit(asJSON, agent.PinResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				res, err := svc.Pin(ctx, args[0], note)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Pinned %s (since %s)", res.Filename, res.PinnedAt)
					if res.Note != "" {
						fmt.Fprintf(w, ": %s", res.Note)
					}
					fmt.Fprintln(w)
				})
			})
		},
	}
	c.Flags().StringVar(&note, "note", "", "a note kept with the pin (shown by list; at most 1024 bytes)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

func unpinCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "unpin FILENAME",
		Short: "Remove an archive's pin and note: retention treats it as any other again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return g.emit(asJSON, agent.PinResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				res, err := svc.Unpin(ctx, args[0])
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Unpinned %s\n", res.Filename)
				})
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}
