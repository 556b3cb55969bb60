package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func restoreCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		o          agent.RestoreOptions
		asJSON     bool
		identities []string
		passFile   string
		dbmap      []string
		at         string
	)
	c := &cobra.Command{
		Use:   "restore NAME|latest|./path/file | --at TIME",
		Short: "Restore an archive (or only the keys you pick) into the Redis server",
		Long: "Restore an archive into the Redis server. Existing keys are skipped and never modified\n" +
			"unless --overwrite is given; then each is replaced atomically. The whole archive is\n" +
			"checked before the first key is written. NAME may be latest (the newest archive) or a\n" +
			"path holding a slash (a local file, read in place). --match, --exclude, --type and\n" +
			"--db N restore only the keys they pick; every other key is left untouched.\n" +
			"With --at TIME (RFC 3339, or -5m) and archiving on, the state of the server at that\n" +
			"time: the newest base snapshot before it and the archived commands up to it, into an\n" +
			"empty server (or, with --overwrite, one emptied first).",
		Args: func(cmd *cobra.Command, args []string) error {
			if at != "" {
				if len(args) != 0 {
					return usageError{fmt.Errorf("restore --at picks its base itself: give no archive name")}
				}
				return nil
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if at != "" {
				return restoreAt(ctx, g, at, o, identities, passFile, dbmap, asJSON)
			}
			g.fromFile = agent.IsPath(args[0])
			return g.withService(ctx, func(svc *agent.Service) error {
				ids, err := archiveKeys(args[0], identities, passFile, svc.Config().Restore)
				if err != nil {
					return g.emit(asJSON, agent.RestoreResult{Filename: args[0], DryRun: o.DryRun, Overwrite: o.Overwrite, Error: err.Error()}, err, nil)
				}
				o.Identities = ids
				o.Local = true
				if o.DBMap, o.Selection.DBs, err = parseDBMap(dbmap); err != nil {
					return err
				}
				var finish func()
				o.Progress, finish = g.progress("restore", asJSON)
				res, err := svc.Restore(ctx, args[0], o)
				finish()
				err = noteDefaultRedis(svc, &res.Warnings, err)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					verb := "Restored"
					if res.DryRun {
						verb = "Dry run: would restore"
					}
					left := ""
					if res.FilteredCount > 0 {
						left = fmt.Sprintf(", left out by the selection %d", res.FilteredCount)
					}
					fmt.Fprintf(w, "%s %d of %d keys from %s (skipped %d, expired %d, errors %d%s) in %.1fs\n",
						verb, res.RestoredCount, res.TotalKeys, res.Filename, res.SkippedCount, res.ExpiredCount, res.ErrorCount, left, res.DurationSeconds)
					for _, m := range res.Warnings {
						fmt.Fprintln(w, "warning:", m)
					}
				})
			})
		},
	}
	f := c.Flags()
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace existing keys (each atomically)")
	f.BoolVar(&o.DryRun, "dry-run", false, "read the archive and report what would happen; write nothing")
	f.StringVar(&o.TTL, "ttl", "", "relative (the TTL as recorded, default) or absolute (skip keys expired since the backup)")
	f.StringArrayVar(&dbmap, "db", nil, "restore database FROM into database TO (FROM:TO), or only database N (N); repeatable")
	f.StringArrayVar(&o.Selection.Match, "match", nil, "restore only keys that match this Redis glob pattern (repeatable: any of them; \\xHH for any byte)")
	f.StringArrayVar(&o.Selection.Exclude, "exclude", nil, "leave out keys that match this pattern (repeatable)")
	f.StringArrayVar(&o.Selection.Types, "type", nil, "restore only keys of this type (string, hash, list, set, zset, stream, raw or a module type; repeatable)")
	f.StringArrayVar(&identities, "identity", nil, "age identity file for encrypted archives (repeatable; default $REDBACK_IDENTITY_FILE)")
	f.StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	f.BoolVar(&o.AllowEviction, "allow-eviction", false, "restore even when the server evicts keys under memory pressure (allkeys-* or volatile-*)")
	f.BoolVar(&o.NoPrecheck, "no-precheck", false, "skip reading the whole archive before the first write")
	f.BoolVar(&o.IgnoreMemory, "ignore-memory", false, "restore even when the target seems to lack the memory the data needs")
	f.StringVar(&at, "at", "", "restore the state at this time (RFC 3339, or -5m: that long ago) from the continuous archive")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

// restoreAt runs restore --at.
func restoreAt(ctx context.Context, g *globals, text string, o agent.RestoreOptions, identities []string, passFile string, dbmap []string, asJSON bool) error {
	if len(dbmap) > 0 {
		return usageError{fmt.Errorf("--at restores every database as it was: --db does not apply")}
	}
	at, err := agent.ParseAt(text, time.Now())
	if err != nil {
		return usageError{err}
	}
	return g.withService(ctx, func(svc *agent.Service) error {
		ids, err := loadKeys(identities, passFile, svc.Config().Restore)
		if err != nil {
			return err
		}
		o.Identities = ids
		var finish func()
		o.Progress, finish = g.progress("restore", asJSON)
		res, err := svc.RestoreAt(ctx, at, o)
		finish()
		err = noteDefaultRedis(svc, &res.Warnings, err)
		return g.emit(asJSON, res, err, func(w io.Writer) {
			p := res.PointInTime
			fmt.Fprintf(w, "Restored %d keys from base %s, then replayed %d commands of %d segments: the state at %s (offset %d; asked for %s), errors %d, in %.1fs\n",
				res.RestoredCount, p.Base, p.Commands, p.Segments, p.ReachedAt, p.ReachedOffset, p.At, res.ErrorCount, res.DurationSeconds)
			for _, m := range res.Warnings {
				fmt.Fprintln(w, "warning:", m)
			}
		})
	})
}

// parseDBMap parses --db's values: "FROM:TO" pairs map a database of the
// archive to one of the target, and "N" selects database N. When any N is
// given, only the databases named (N, or FROM of a pair) are restored.
func parseDBMap(vals []string) (map[int]int, []int, error) {
	m := map[int]int{}
	var only []int
	selected := false
	for _, p := range vals {
		a, b, ok := strings.Cut(p, ":")
		if !ok {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 {
				return nil, nil, usageError{fmt.Errorf("--db %q: want N (only database N) or FROM:TO, e.g. 0:5", p)}
			}
			only, selected = append(only, n), true
			continue
		}
		from, err1 := strconv.Atoi(a)
		to, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || from < 0 || to < 0 {
			return nil, nil, usageError{fmt.Errorf("--db %q: want FROM:TO database numbers", p)}
		}
		if _, dup := m[from]; dup {
			return nil, nil, usageError{fmt.Errorf("--db: database %d mapped twice", from)}
		}
		m[from] = to
	}
	if selected {
		for from := range m {
			only = append(only, from)
		}
	}
	return m, only, nil
}
