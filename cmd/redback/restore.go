package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

// identityFiles returns the --identity files, or REDBACK_IDENTITY_FILE.
func identityFiles(flag []string) []string {
	if len(flag) > 0 {
		return flag
	}
	if v := os.Getenv("REDBACK_IDENTITY_FILE"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func restoreCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		o          agent.RestoreOptions
		asJSON     bool
		identities []string
		dbmap      []string
	)
	c := &cobra.Command{
		Use:   "restore FILENAME",
		Short: "Restore an archive into the Redis server",
		Long: "Restore an archive into the Redis server. Existing keys are skipped and never modified\n" +
			"unless --overwrite is given; then each is replaced atomically. The whole archive is\n" +
			"checked before the first key is written.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.service(ctx, asJSON)
			if err != nil {
				return err
			}
			defer svc.Close()
			cfg := svc.Config()
			ids, err := agent.LoadIdentities(append(identityFiles(identities), cfg.Restore.Identities...))
			if err != nil {
				return err
			}
			o.Identities = ids
			if o.DBMap, err = agent.ParseDBMap(dbmap); err != nil {
				return err
			}
			var finish func()
			o.Progress, finish = g.progress("restore", asJSON)
			res, err := svc.Restore(ctx, args[0], o)
			finish()
			return g.emit(asJSON, res, err, func(w io.Writer) {
				verb := "Restored"
				if res.DryRun {
					verb = "Dry run: would restore"
				}
				fmt.Fprintf(w, "%s %d of %d keys from %s (skipped %d, expired %d, errors %d) in %.1fs\n",
					verb, res.RestoredCount, res.TotalKeys, res.Filename, res.SkippedCount, res.ExpiredCount, res.ErrorCount, res.DurationSeconds)
			})
		},
	}
	f := c.Flags()
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace existing keys (each atomically)")
	f.BoolVar(&o.DryRun, "dry-run", false, "read the archive and report what would happen; write nothing")
	f.StringVar(&o.TTL, "ttl", "", "relative (the TTL as recorded, default) or absolute (skip keys expired since the backup)")
	f.StringArrayVar(&dbmap, "db", nil, "restore database FROM into database TO (FROM:TO; repeatable)")
	f.StringArrayVar(&identities, "identity", nil, "age identity file for encrypted archives (repeatable; default $REDBACK_IDENTITY_FILE)")
	f.BoolVar(&o.AllowEviction, "allow-eviction", false, "restore even when the server evicts keys under memory pressure (allkeys-*)")
	f.BoolVar(&o.NoPrecheck, "no-precheck", false, "skip reading the whole archive before the first write")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

func verifyCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON     bool
		identities []string
	)
	c := &cobra.Command{
		Use:   "verify FILENAME",
		Short: "Read an archive end to end and check its checksum, without touching Redis",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.service(ctx, true)
			if err != nil {
				return err
			}
			defer svc.Close()
			ids, err := agent.LoadIdentities(append(identityFiles(identities), svc.Config().Restore.Identities...))
			if err != nil {
				return err
			}
			res, err := svc.Verify(ctx, args[0], ids)
			return g.emit(asJSON, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "OK %s: %d keys, %d bytes, sha256 %s", res.Filename, res.KeysCount, res.Size, res.SHA256)
				if res.ChecksumStored {
					fmt.Fprint(w, " (matches the recorded checksum)")
				}
				fmt.Fprintln(w)
			})
		},
	}
	c.Flags().StringArrayVar(&identities, "identity", nil, "age identity file (repeatable; default $REDBACK_IDENTITY_FILE)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func deleteCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "delete FILENAME",
		Short: "Delete an archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.service(ctx, true)
			if err != nil {
				return err
			}
			defer svc.Close()
			res, err := svc.Delete(ctx, args[0])
			return g.emit(asJSON, res, err, func(w io.Writer) {
				fmt.Fprintf(w, "Deleted %s\n", res.Filename)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

func pruneCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON, dryRun bool
		keep           int
	)
	c := &cobra.Command{
		Use:   "prune",
		Short: "Delete all but the newest archives",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := g.service(ctx, asJSON)
			if err != nil {
				return err
			}
			defer svc.Close()
			if !cmd.Flags().Changed("keep") {
				keep = svc.Config().Retention.KeepLast
			}
			res, err := svc.Prune(ctx, keep, dryRun)
			return g.emit(asJSON, res, err, func(w io.Writer) {
				verb := "Deleted"
				if res.DryRun {
					verb = "Would delete"
				}
				for _, n := range res.Deleted {
					fmt.Fprintf(w, "%s %s\n", verb, n)
				}
				fmt.Fprintf(w, "Kept %d archives.\n", len(res.Kept))
			})
		},
	}
	c.Flags().IntVar(&keep, "keep", 7, "how many of the newest archives to keep (default: retention.keep_last)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
