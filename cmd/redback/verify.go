package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func verifyCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		asJSON     bool
		identities []string
		passFile   string
	)
	c := &cobra.Command{
		Use:   "verify FILENAME",
		Short: "Read an archive end to end and check its checksums, without touching Redis",
		Long: `Read an archive end to end (decrypt, gunzip, parse, count) and check its checksums,
without touching Redis: the SHA-256 its manifest records and the checksum the archive
carries itself (format version 2). An archive that has neither (a seed or version 1
archive copied in without its manifest) parses but cannot be verified: verify then
fails (exit status 1) and records nothing; restore still takes it, with a warning.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return g.emit(asJSON, agent.VerifyResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				ids, err := archiveKeys(args[0], identities, passFile, svc.Config().Restore)
				if err != nil {
					return g.emit(asJSON, agent.VerifyResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				res, err := svc.Verify(ctx, args[0], ids)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "OK %s: %d keys, %d bytes, sha256 %s", res.Filename, res.KeysCount, res.Size, res.SHA256)
					switch res.Integrity {
					case agent.IntegrityBoth:
						fmt.Fprint(w, " (matches the recorded checksum; the archive's own checksum matches)")
					case agent.IntegrityManifest:
						fmt.Fprint(w, " (matches the recorded checksum)")
					case agent.IntegrityArchive:
						fmt.Fprint(w, " (the archive's own checksum matches)")
					}
					fmt.Fprintln(w)
					if res.Warning != "" {
						fmt.Fprintln(w, "warning:", res.Warning)
					}
				})
			})
		},
	}
	c.Flags().StringArrayVar(&identities, "identity", nil, "age identity file (repeatable; default $REDBACK_IDENTITY_FILE)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
