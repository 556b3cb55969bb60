package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/api"
)

// totpUnlockCmd is `redback totp unlock`: it lifts the lock that too many
// failed codes put on logins. It writes a request beside the API's state
// file (api.state_file, by default .redback/api-state.json in the storage
// folder); the running `redback serve` reads it when it next refuses a
// login for a limit and forgets every failed code counted so far. The
// file system is the authentication: whoever may write beside the API's
// state may unlock it. Run it with the configuration (and environment)
// that serve uses.
func totpUnlockCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock",
		Short: "Lift the lock on API logins after too many failed codes (the running serve picks it up)",
		Long: "Lift the lock that failed TOTP codes put on API logins: the daily cap of every client together\n" +
			"(api.login_daily_cap) and the per-client limits. It writes a request beside api.state_file (by\n" +
			"default .redback/api-state.json in the storage folder); the running `redback serve` reads it\n" +
			"at its next refused login and forgets every failed code counted so far. Block the client that\n" +
			"caused the lock first (its addresses are in the audit log): it gets a fresh budget too.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.selectTargets(false)
			if err != nil {
				return err
			}
			state := cfg.API.StateFile
			if state == "" {
				return fmt.Errorf("%w: api.state_file is not set and the storage is no local folder, so `redback serve` keeps its login counters in memory: restart it to clear them, or set api.state_file", agent.ErrInvalid)
			}
			path, err := api.RequestUnlock(state, time.Now())
			if err != nil {
				return fmt.Errorf("write the unlock request %s: %w", path, err)
			}
			fmt.Fprintf(g.stdout, "Unlock requested (%s).\n", path)
			if _, err := os.Stat(state); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(g.stdout, "Warning: there is no API state file at %s: is `redback serve` running with this configuration\n"+
					"and working directory? (api.state_file sets the place.)\n", state)
				return nil
			}
			fmt.Fprintln(g.stdout, "The running `redback serve` lifts the lock at its next refused login (logged as \"logins unlocked\").")
			return nil
		},
	}
}
