package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func exportCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		out        string
		asJSON     bool
		identities []string
		passFile   string
		o          agent.ExportOptions
	)
	c := &cobra.Command{
		Use:   "export FILENAME -o FILE.rdb",
		Short: "Write an archive as an RDB file that redis-server / valkey-server loads at start",
		Long: `Write an archive as an RDB file that a redis-server or valkey-server loads at start: the
fastest restore onto a fresh host (put the file in the server's dir as its dbfilename, then start
it). The file is written by the server that will load it (--server-binary; default redis-server,
or valkey-server for an archive of Valkey, from PATH): redback restores the archive into a
throw-away instance of it (a private folder and unix socket, no persistence, removed after) and
takes its SAVE. The file has that server's RDB version: it loads into that server and newer ones
of its kind. The instance holds the data in memory while it runs. Keys the server cannot hold
(for example a module type it lacks) fail the export, and then no file is written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("export needs -o FILE.rdb (or -o - for stdout)")}
			}
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return g.emit(asJSON, agent.ExportResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				name := args[0]
				ids, err := archiveKeys(name, identities, passFile, svc.Config().Restore)
				if err != nil {
					return g.emit(asJSON, agent.ExportResult{Filename: name, Error: err.Error()}, err, nil)
				}
				o.Identities = ids
				var res agent.ExportResult
				write := func(w io.Writer) error {
					res, err = svc.Export(ctx, name, w, o)
					return err
				}
				if out == "-" {
					err = write(g.stdout)
				} else {
					err = writeFileAtomicWith(out, write)
					res.Output = out
				}
				if out == "-" && !asJSON {
					return err
				}
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Exported %s: %d keys into %s (%d bytes, RDB version %d, written by %s; loads into %s and newer)\n",
						res.Filename, res.KeysCount, res.Output, res.Size, res.RDBVersion, res.Server, res.Server)
					for _, m := range res.Warnings {
						fmt.Fprintln(w, "warning:", m)
					}
				})
			})
		},
	}
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "", "the RDB file to write (- for stdout; an existing file is refused)")
	f.StringVar(&o.ServerBinary, "server-binary", "", "the redis-server or valkey-server that will load the file (default: from PATH)")
	f.StringVar(&o.TTL, "ttl", "", "relative (each key's TTL as recorded, from now; default) or absolute (expiry times as recorded)")
	f.StringArrayVar(&identities, "identity", nil, "age identity file for encrypted archives (repeatable; default $REDBACK_IDENTITY_FILE)")
	f.StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
