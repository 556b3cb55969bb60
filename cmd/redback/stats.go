package main

import (
	"context"
	"fmt"
	"io"

	"github.com/redback-dev/redback/agent"
	"github.com/spf13/cobra"
)

func statsCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats",
		Short: "Summarise the stored archives",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				res, err := svc.Stats(ctx)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Storage:       %s\n", res.Storage)
					fmt.Fprintf(w, "Backups:       %d (%d verified)\n", res.TotalBackups, res.VerifiedCount)
					fmt.Fprintf(w, "Total size:    %s\n", humanSize(res.TotalSize))
					if res.LatestBackup != nil {
						fmt.Fprintf(w, "Latest:        %s (%s)\n", res.LatestBackup.Filename, res.LatestBackup.CreatedAt)
						fmt.Fprintf(w, "Oldest:        %s (%s)\n", res.OldestBackup.Filename, res.OldestBackup.CreatedAt)
					}
				})
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}
