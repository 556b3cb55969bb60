package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func backupCmd(ctx context.Context, g *globals) *cobra.Command {
	var noCompress, asJSON bool
	var source string
	c := &cobra.Command{
		Use:   "backup",
		Short: "Take a backup of the Redis server now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.backs = true
			return g.withService(ctx, func(svc *agent.Service) error {
				o := agent.BackupOptions{Source: source}
				if cmd.Flags().Changed("no-compress") {
					compress := !noCompress
					o.Compress = &compress
				}
				var finish func()
				o.Progress, finish = g.progress("backup", asJSON)
				res, err := svc.Backup(ctx, o)
				finish()
				err = noteDefaultRedis(svc, &res.Warnings, err)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Backup created: %s\n", res.Filepath)
					fmt.Fprintf(w, "  keys: %d   size: %d bytes (%.2f MB)   time: %.1fs\n", res.KeysCount, res.Size, res.SizeMB, res.DurationSeconds)
					if res.SHA256 != "" {
						fmt.Fprintf(w, "  sha256: %s\n", res.SHA256)
					}
					if res.Server != "" {
						fmt.Fprintf(w, "  server: %s\n", res.Server)
					}
					if res.Source == agent.SourceReplica {
						fmt.Fprintf(w, "  snapshot: replication ID %s, offset %d\n", res.ReplID, res.ReplOffset)
					}
					for typ, n := range res.RawKeys {
						fmt.Fprintf(w, "  kept as DUMP payloads: %d %s keys (restorable only where the server loads them)\n", n, typ)
					}
					for _, m := range res.Warnings {
						fmt.Fprintln(w, "warning:", m)
					}
				})
			})
		},
	}
	c.Flags().BoolVar(&noCompress, "no-compress", false, "write plain JSON instead of gzip")
	c.Flags().StringVar(&source, "source", "", "how keys are read: scan (each key at its own moment), replica (a point-in-time snapshot as a replica gets it; the server forks) or auto (replica, else scan); default backup.source, else scan")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}
