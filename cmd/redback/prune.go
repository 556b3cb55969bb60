package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/retention"
)

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
			return g.withService(ctx, func(svc *agent.Service) error {
				cfg := svc.Config()
				loc := time.Local
				if tz := cfg.Schedule.Timezone; tz != "" {
					var err error
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
				res, decisions, err := svc.Prune(ctx, policy, dryRun)
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
			})
		},
	}
	c.Flags().IntVar(&keep, "keep", 0, "keep only the newest N archives (default: the retention rules of agent.yaml)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be deleted and why")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
