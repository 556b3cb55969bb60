package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/api"
)

// tokenCmd is `redback token`: machine tokens for automation that makes
// admin calls (a CI job's backup before a deploy, a restore drill) without
// TOTP codes. They live in api.tokens_file (by default beside the API's
// state file); the running `redback serve` re-reads it when it changes.
func tokenCmd(_ context.Context, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Machine tokens for automation: scoped, revocable admin access without TOTP codes",
		Long: "Machine tokens let automation make admin calls without TOTP codes. Each has a name (in the\n" +
			"audit log as token:NAME), scopes naming the admin calls it may make (" + strings.Join(api.Scopes(), ", ") + "),\n" +
			"and may expire; every token may also make the read-only calls. They are stored, as SHA-256\n" +
			"hashes, in api.tokens_file (default: api-tokens.json beside api.state_file); the running\n" +
			"`redback serve` picks up changes at its next request, so a revoked token stops working at once.\n" +
			"Run these commands with the configuration and working directory that serve uses.",
		Args: cobra.NoArgs,
	}
	c.AddCommand(tokenCreateCmd(g), tokenListCmd(g), tokenRevokeCmd(g))
	return c
}

// tokensFile is api.tokens_file of the configuration.
func (g *globals) tokensFile() (string, error) {
	cfg, _, err := g.selectTargets(false)
	if err != nil {
		return "", err
	}
	if cfg.API.TokensFile == "" {
		return "", fmt.Errorf("%w: no api.tokens_file: set it (or api.state_file), since the storage is no local folder", agent.ErrInvalid)
	}
	return cfg.API.TokensFile, nil
}

func tokenCreateCmd(g *globals) *cobra.Command {
	var scopes []string
	var expires time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "create NAME --scope SCOPE[,SCOPE...]",
		Short: "Create a machine token (printed once)",
		Example: "  # A CI job that backs up before each deploy, for 90 days:\n" +
			"  redback token create ci-deploy --scope backup --expires 2160h\n" +
			"  curl -fsS -X POST -H \"Authorization: Bearer $REDBACK_TOKEN\" http://127.0.0.1:8080/api/backup/create",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := g.tokensFile()
			if err != nil {
				return err
			}
			tok, mt, err := api.CreateMachineToken(path, args[0], scopes, expires, time.Now())
			if err != nil {
				return fmt.Errorf("%w: %v", agent.ErrInvalid, err)
			}
			out := struct {
				Success bool   `json:"success"`
				Token   string `json:"token"`
				api.MachineToken
				File string `json:"file"`
			}{true, tok, mt, path}
			return g.emit(asJSON, out, nil, func(w io.Writer) {
				fmt.Fprintf(w, "Machine token %q (scopes: %s; %s), shown once:\n\n  %s\n\n", mt.Name, strings.Join(mt.Scopes, ", "), expiry(mt), tok)
				fmt.Fprintf(w, "Stored as its SHA-256 in %s; the running serve takes it at once.\nRevoke it with: redback token revoke %s\n", path, mt.Name)
			})
		},
	}
	c.Flags().StringSliceVar(&scopes, "scope", nil, "the admin calls it may make: "+strings.Join(api.Scopes(), ", ")+" (repeat or separate with commas)")
	c.Flags().DurationVar(&expires, "expires", 0, "lifetime (e.g. 720h); 0: never expires")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func expiry(mt api.MachineToken) string {
	if mt.ExpiresAt == nil {
		return "never expires"
	}
	return "expires " + mt.ExpiresAt.Format(time.RFC3339)
}

func tokenListCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the machine tokens (names, scopes, expiry; never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := g.tokensFile()
			if err != nil {
				return err
			}
			ts, err := api.ListMachineTokens(path)
			if err != nil {
				return err
			}
			if ts == nil {
				ts = []api.MachineToken{}
			}
			out := struct {
				Tokens []api.MachineToken `json:"tokens"`
			}{ts}
			return g.emit(asJSON, out, nil, func(w io.Writer) {
				if len(ts) == 0 {
					fmt.Fprintf(w, "No machine tokens (%s).\n", path)
					return
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tEXPIRES")
				for _, t := range ts {
					exp := "never"
					if t.ExpiresAt != nil {
						exp = t.ExpiresAt.Format(time.RFC3339)
						if !time.Now().Before(*t.ExpiresAt) {
							exp += " (expired)"
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339), exp)
				}
				_ = tw.Flush()
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func tokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a machine token (the running serve refuses it at its next request)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := g.tokensFile()
			if err != nil {
				return err
			}
			if err := api.RevokeMachineToken(path, args[0]); err != nil {
				return fmt.Errorf("%w: %v", agent.ErrNotFound, err)
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "Token %q revoked.\n", args[0])
			}
			return nil
		},
	}
}
