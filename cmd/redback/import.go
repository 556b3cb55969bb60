package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func importCmd(ctx context.Context, g *globals) *cobra.Command {
	var noCompress, asJSON bool
	c := &cobra.Command{
		Use:   "import FILE.rdb|-",
		Short: "Turn an RDB file (dump.rdb, redis-cli --rdb output, an export) into an archive",
		Long: `Turn an RDB file into an archive in the configured storage, listed and restorable like any
other: dump.rdb from a server's folder, the output of redis-cli --rdb, a managed service's export
(- reads standard input). The archive is named after the time of the import and records the RDB's
own creation time. RDB versions 9 to 12 (Redis 6.0 to 8) and Valkey's (80 and up) are read; the
file streams through, whatever its size. A corrupt or truncated file stores nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.backs = true
			var src io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageError{fmt.Errorf("import: %w", err)}
				}
				defer f.Close()
				src = f
			}
			return g.withService(ctx, func(svc *agent.Service) error {
				o := agent.ImportOptions{}
				if cmd.Flags().Changed("no-compress") {
					compress := !noCompress
					o.Compress = &compress
				}
				var finish func()
				o.Progress, finish = g.progress("import", asJSON)
				res, err := svc.Import(ctx, src, o)
				finish()
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Archive created: %s\n", res.Filepath)
					fmt.Fprintf(w, "  keys: %d   size: %d bytes (%.2f MB)   time: %.1fs\n", res.KeysCount, res.Size, res.SizeMB, res.DurationSeconds)
					if res.Server != "" {
						fmt.Fprintf(w, "  from: %s\n", res.Server)
					}
					if res.Vanished > 0 {
						fmt.Fprintf(w, "  left out: %d keys expired when the RDB was written\n", res.Vanished)
					}
				})
			})
		},
	}
	c.Flags().BoolVar(&noCompress, "no-compress", false, "write plain JSON instead of gzip")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
