package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/api"
)

// completionTimeout bounds what completing a word may take (a bucket's
// listing): a shell must never hang on Tab.
const completionTimeout = 3 * time.Second

// archiveArgs says, per command, how many archive names its arguments
// start with (diff takes two), and whether a local path is taken too.
var archiveArgs = map[string]struct {
	n     int
	paths bool
}{
	"restore": {1, true}, "keys": {1, true}, "show": {1, true}, "diff": {2, true},
	"download": {1, false}, "delete": {1, false}, "verify": {1, false}, "export": {1, false},
}

// completions adds dynamic shell completion to root (`redback completion
// bash|zsh|fish|powershell` prints the script): archive names (and
// `latest`) of the selected target's storage for the commands that take
// one, target names for --target, token names for `token revoke`.
func completions(ctx context.Context, g *globals, root *cobra.Command) {
	root.CompletionOptions.HiddenDefaultCmd = false
	for _, c := range root.Commands() {
		spec, ok := archiveArgs[c.Name()]
		if !ok {
			continue
		}
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) >= spec.n {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			if spec.paths && (agent.IsPath(toComplete) || strings.HasPrefix(toComplete, ".")) {
				return nil, cobra.ShellCompDirectiveDefault // a local archive file
			}
			return g.archiveNames(ctx, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = root.RegisterFlagCompletionFunc("target", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		_, ts, err := g.selectTargets(true)
		if err != nil || len(ts) < 2 && !ts[0].Listed {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(ts))
		for _, t := range ts {
			names = append(names, t.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	})
	if tok, _, err := root.Find([]string{"token", "revoke"}); err == nil && tok.Name() == "revoke" {
		tok.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			path, err := g.tokensFile()
			if err != nil || len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			ts, _ := api.ListMachineTokens(path)
			var names []string
			for _, t := range ts {
				names = append(names, t.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// archiveNames lists `latest` and the archives of the selected target
// whose names start with prefix, newest first; nothing when storage
// cannot be read within completionTimeout (completion never creates it,
// and logs nothing).
func (g *globals) archiveNames(ctx context.Context, prefix string) []string {
	_, ts, err := g.selectTargets(false)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	svc, err := agent.NewExisting(ctx, ts[0].Config, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil
	}
	defer svc.Close()
	list, err := svc.List(ctx)
	if err != nil {
		return nil
	}
	var out []string
	if strings.HasPrefix(agent.Latest, prefix) {
		out = append(out, agent.Latest)
	}
	for i := len(list.Backups) - 1; i >= 0; i-- {
		if name := list.Backups[i].Filename; strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}
