package main

import (
	"context"
	"fmt"
	"io"

	"github.com/redback-dev/redback/agent"
	"github.com/spf13/cobra"
)

func deleteCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "delete FILENAME",
		Short: "Delete an archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return g.emit(asJSON, agent.DeleteResult{Filename: args[0], Error: err.Error()}, err, nil)
				}
				res, err := svc.Delete(ctx, args[0])
				return g.emit(asJSON, res, err, func(w io.Writer) {
					fmt.Fprintf(w, "Deleted %s\n", res.Filename)
				})
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	return c
}
