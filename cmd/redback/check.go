package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

// checkReport is `redback check --json`.
type checkReport struct {
	Target  string              `json:"target,omitempty"`
	OK      bool                `json:"ok"`
	Results []agent.CheckResult `json:"checks"`
}

func checkCmd(ctx context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "check",
		Short: "Check that the next backup can succeed and the last one is fresh",
		Long: "One line per check: agent.yaml valid (cron lines and zones included: it is loaded first),\n" +
			"Redis reachable and authenticated, with the rights a backup needs (SCAN, TYPE, PTTL, MEMORY\n" +
			"USAGE, DUMP, SCRIPT LOAD, tried on a key that does not exist), the storage listed and written\n" +
			"(a temporary object, removed, never listed), the newest archive younger than api.ready_max_age\n" +
			"and not suspect against the one before, the encryption recipients usable. Exit status 0 when\n" +
			"every check passes, 1 when one fails, 2 when agent.yaml is invalid.",
		Example: "  redback check\n  redback check --json --target prod",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep := checkReport{Target: g.target}
			svc, err := g.service(ctx)
			switch {
			case errors.Is(err, agent.ErrNotFound): // no storage folder: a failed check, not a usage error
				rep.Results = []agent.CheckResult{{Name: "storage", Detail: err.Error()}}
			case err != nil:
				return err
			default:
				defer svc.Close()
				rep.Results = svc.Check(ctx, svc.Config().API.ReadyMaxAge)
			}
			rep.OK = true
			for _, r := range rep.Results {
				rep.OK = rep.OK && r.OK
			}
			var fail error
			if !rep.OK {
				fail = exitStatus{code: exitFailure, msg: "a check failed"}
			}
			if asJSON {
				return g.emit(true, rep, fail, nil)
			}
			if fail != nil || !g.quiet {
				printChecks(g.stdout, rep.Results)
			}
			return fail
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return c
}

func printChecks(w io.Writer, rs []agent.CheckResult) {
	for _, r := range rs {
		mark := "ok  "
		if !r.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, r.Name, r.Detail)
	}
}
