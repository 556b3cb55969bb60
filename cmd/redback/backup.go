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
	c := &cobra.Command{
		Use:   "backup",
		Short: "Take a backup of the Redis server now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.backs = true
			return g.withService(ctx, asJSON, func(svc *agent.Service) error {
				o := agent.BackupOptions{}
				if cmd.Flags().Changed("no-compress") {
					compress := !noCompress
					o.Compress = &compress
				}
				var finish func()
				o.Progress, finish = g.progress("backup", asJSON)
				res, err := svc.Backup(ctx, o)
				finish()
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Backup created: %s\n", res.Filepath)
					fmt.Fprintf(w, "  keys: %d   size: %d bytes (%.2f MB)   time: %.1fs\n", res.KeysCount, res.Size, res.SizeMB, res.DurationSeconds)
					if res.SHA256 != "" {
						fmt.Fprintf(w, "  sha256: %s\n", res.SHA256)
					}
					if res.Server != "" {
						fmt.Fprintf(w, "  server: %s\n", res.Server)
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
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}
