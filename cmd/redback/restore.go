package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/retention"
	"github.com/redback-dev/redback/agent/scheduler/job"
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

// passphraseFile returns --passphrase-file, or REDBACK_PASSPHRASE_FILE.
func passphraseFile(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("REDBACK_PASSPHRASE_FILE")
}

// loadKeys reads the identities of the command line (--identity,
// --passphrase-file, or their environment variables) and of the
// configuration (restore.identities, restore.passphrase_file).
func loadKeys(identities []string, passFile string, cfg config.Restore) ([]age.Identity, error) {
	k := agent.Keys{IdentityFiles: append(identityFiles(identities), cfg.Identities...)}
	if k.PassphraseFile = passphraseFile(passFile); k.PassphraseFile == "" {
		k.PassphraseFile = cfg.PassphraseFile
	}
	return k.Load()
}

// errNoKey is the error for an encrypted archive and no identity.
func errNoKey(name string) error {
	return fmt.Errorf("%w: %s is encrypted: give --identity FILE (or REDBACK_IDENTITY_FILE), or --passphrase-file FILE (or REDBACK_PASSPHRASE_FILE) for a passphrase", agent.ErrInvalid, name)
}

const passphraseUsage = "file holding the passphrase of a passphrase-encrypted archive (default $REDBACK_PASSPHRASE_FILE)"

func restoreCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		o          agent.RestoreOptions
		asJSON     bool
		identities []string
		passFile   string
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
			ids, err := loadKeys(identities, passFile, svc.Config().Restore)
			if err != nil {
				return err
			}
			if len(ids) == 0 && strings.HasSuffix(args[0], ".age") {
				err := errNoKey(args[0])
				return g.emit(asJSON, agent.RestoreResult{Filename: args[0], DryRun: o.DryRun, Overwrite: o.Overwrite, Error: err.Error()}, err, nil)
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
	f.StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	f.BoolVar(&o.AllowEviction, "allow-eviction", false, "restore even when the server evicts keys under memory pressure (allkeys-*)")
	f.BoolVar(&o.NoPrecheck, "no-precheck", false, "skip reading the whole archive before the first write")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

func verifyCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON     bool
		identities []string
		passFile   string
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
			ids, err := loadKeys(identities, passFile, svc.Config().Restore)
			if err != nil {
				return err
			}
			if len(ids) == 0 && strings.HasSuffix(args[0], ".age") {
				err := errNoKey(args[0])
				return g.emit(asJSON, agent.VerifyResult{Filename: args[0], Error: err.Error()}, err, nil)
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
	c.Flags().StringVar(&passFile, "passphrase-file", "", passphraseUsage)
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
		Short: "Delete the archives that the retention rules do not keep",
		Long: "Delete the archives that the retention rules (retention: in agent.yaml) do not keep, or all but\n" +
			"the newest N with --keep N. Archives are ordered by creation time; the newest complete archive,\n" +
			"archives copied in by hand (no manifest) and archives being read are never deleted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := g.service(ctx, asJSON)
			if err != nil {
				return err
			}
			defer svc.Close()
			cfg := svc.Config()
			loc := time.Local
			if tz := cfg.Schedule.Timezone; tz != "" {
				if loc, err = time.LoadLocation(tz); err != nil {
					return fmt.Errorf("%w: schedule.timezone: %v", agent.ErrInvalid, err)
				}
			}
			policy := retention.FromConfig(cfg.Retention, loc)
			if cmd.Flags().Changed("keep") {
				if keep < 1 {
					return usageError{fmt.Errorf("--keep must be at least 1 (the newest archive is never pruned)")}
				}
				policy = retention.Policy{Last: keep, Location: loc}
			}
			res, decisions, err := job.Prune(ctx, svc, policy, dryRun, g.logger(cfg, asJSON))
			return g.emit(asJSON, res, err, func(w io.Writer) {
				for _, d := range decisions {
					verb := "keep  "
					if !d.Keep {
						verb = "delete"
						if !res.DryRun {
							verb = "deleted"
						}
					}
					fmt.Fprintf(w, "%s %s  (%s)\n", verb, d.Name, strings.Join(d.Reasons, ", "))
				}
				fmt.Fprintf(w, "Kept %d, deleted %d.\n", len(res.Kept), len(res.Deleted))
			})
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "keep only the newest N archives (default: the retention rules of agent.yaml)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted and why")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
