package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/redback-dev/redback/agent"
	"github.com/spf13/cobra"
)

func listCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the archives, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				res, err := svc.List(ctx)
				return g.emit(asJSON, res, err, func(w io.Writer) {
					defer printWindow(w, res.Window)
					if len(res.Backups) == 0 {
						fmt.Fprintln(w, "No backups.")
						return
					}
					tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "FILENAME\tCREATED (UTC)\tSIZE\tKEYS\tVERIFIED\tDRILLED\tPINNED")
					for _, b := range res.Backups {
						keys := "-"
						if b.KeysCount != nil {
							keys = fmt.Sprint(*b.KeysCount)
						}
						ver := "no"
						if b.Verified {
							ver = b.VerifiedAt
						}
						drilled := "no"
						if b.DrillResult != "" {
							drilled = b.DrillResult + " " + b.DrilledAt
						}
						pinned := "-"
						if b.Pinned {
							pinned = "pinned"
							if b.Note != "" {
								pinned += ": " + b.Note
							}
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Filename, b.CreatedAt, humanSize(b.Size), keys, ver, drilled, pinned)
					}
					tw.Flush()
				})
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}

// printWindow says what a restore --at can reach.
func printWindow(w io.Writer, win *agent.Window) {
	if win == nil {
		return
	}
	if win.From == "" {
		fmt.Fprintln(w, "Restorable window: none yet (archiving has stored no segment)")
		return
	}
	fmt.Fprintf(w, "Restorable window (restore --at): %s to %s, %d chains\n", win.From, win.To, len(win.Chains))
	for _, gap := range win.Gaps {
		why := ""
		if gap.Reason != "" {
			why = ": " + gap.Reason
		}
		fmt.Fprintf(w, "  gap %s to %s%s\n", gap.From, gap.To, why)
	}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
