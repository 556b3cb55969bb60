package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

// exitStatus is an outcome that is no error but has an exit status of its
// own (diff: 1 when the sides differ).
type exitStatus struct {
	code int
	msg  string
}

func (e exitStatus) Error() string { return e.msg }

func diffCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		rf     readFlags
		o      agent.DiffOptions
		live   bool
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "diff NAME [NAME2 | --live]",
		Short: "List the keys added, removed and changed between two archives, or an archive and the server",
		Long: "List the keys added (+), removed (-) and changed (~: value, type or TTL beyond --ttl-tolerance)\n" +
			"from NAME to NAME2, or to the live server with --live. Exit status: 0 when equal, 1 when\n" +
			"different, 2 on error. Both sides are read once, in bounded memory.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if live == (len(args) == 2) {
				return usageError{errors.New("give NAME2 or --live (one of them)")}
			}
			b := agent.DiffLive
			if !live {
				b = args[1]
			}
			g.fromFile = agent.IsPath(args[0]) || agent.IsPath(b)
			err := g.withService(ctx, func(svc *agent.Service) error {
				ro, err := rf.options(svc, args[0])
				if err != nil {
					return err
				}
				o.ReadOptions = ro
				out := bufio.NewWriterSize(g.stdout, 64<<10)
				defer out.Flush()
				list := jsonList{w: out, member: "differences"}
				if asJSON {
					list.begin()
				}
				res, err := svc.Diff(ctx, args[0], b, o, func(d agent.Difference) error {
					if asJSON {
						return list.add(d)
					}
					_, err := fmt.Fprintln(out, diffLine(d))
					return err
				})
				if asJSON {
					if err := list.end(g, res, err); err != nil {
						return err
					}
				} else if err != nil {
					return err
				}
				out.Flush()
				if !asJSON {
					fmt.Fprintf(g.stderr, "%s -> %s: %d added, %d removed, %d changed, %d the same\n", res.A, res.B, res.Added, res.Removed, res.Changed, res.Same)
				}
				if !res.Equal {
					return exitStatus{code: exitFailure, msg: "different"}
				}
				return nil
			})
			var es exitStatus
			if err != nil && !errors.As(err, &es) {
				// Every error of diff is status 2 (1 means "different").
				var reported reportedError
				if !errors.As(err, &reported) {
					fmt.Fprintf(g.stderr, "redback: %v\n", err)
				}
				return exitStatus{code: exitUsage, msg: err.Error()}
			}
			return err
		},
	}
	f := c.Flags()
	f.BoolVar(&live, "live", false, "compare NAME with the live server")
	f.StringArrayVar(&o.Selection.Match, "match", nil, "compare only keys that match this pattern (repeatable)")
	f.DurationVar(&o.TTLTolerance, "ttl-tolerance", 2*time.Second, "expiry times that differ by no more are the same")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	rf.add(c)
	return c
}

// diffLine is one difference for a person: "+ 0 KEY (type)", "- ...",
// "~ 0 KEY value, ttl".
func diffLine(d agent.Difference) string {
	switch d.Change {
	case "added":
		return fmt.Sprintf("+ %d %s (%s)", d.DB, d.Escaped, d.B.Type)
	case "removed":
		return fmt.Sprintf("- %d %s (%s)", d.DB, d.Escaped, d.A.Type)
	}
	what := strings.Join(d.What, ", ")
	if d.A.Type != d.B.Type {
		what += fmt.Sprintf(": %s -> %s", d.A.Type, d.B.Type)
	}
	return fmt.Sprintf("~ %d %s (%s)", d.DB, d.Escaped, what)
}
