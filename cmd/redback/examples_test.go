package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples: every runnable command's help has an
// Examples section, and every redback invocation in any example names a
// real command with flags it has (examples that rot are worse than none).
func TestEveryCommandHasExamples(t *testing.T) {
	g := &globals{stdout: io.Discard, stderr: io.Discard}
	root := newRoot(context.Background(), g)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || strings.HasPrefix(sub.Name(), "__") {
				continue
			}
			// cobra's completion SHELL commands explain their loading in Long.
			shellScript := c.Name() == "completion" && strings.Contains(sub.Long, "To load completions")
			if sub.Runnable() && sub.Example == "" && !strings.Contains(sub.Long, "Example") && !shellScript {
				t.Errorf("%s has no examples", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
	var all []string
	var collect func(c *cobra.Command)
	collect = func(c *cobra.Command) {
		all = append(all, c.Example)
		for _, sub := range c.Commands() {
			collect(sub)
		}
	}
	collect(root)
	for _, ex := range all {
		for _, line := range strings.Split(ex, "\n") {
			_, inv, ok := strings.Cut(line, "redback ")
			if !ok || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			inv, _, _ = strings.Cut(inv, " |")
			inv, _, _ = strings.Cut(inv, " &&")
			inv, _, _ = strings.Cut(inv, " >")
			words := strings.Fields(inv)
			cmd, rest, err := root.Find(words)
			if err != nil || cmd == root {
				t.Errorf("example %q: no such command (%v)", line, err)
				continue
			}
			for _, w := range rest {
				if !strings.HasPrefix(w, "-") || w == "-" {
					continue
				}
				name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
				if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil &&
					(len(name) != 1 || cmd.Flags().ShorthandLookup(name) == nil && cmd.InheritedFlags().ShorthandLookup(name) == nil) {
					t.Errorf("example %q: %s has no flag %s", line, cmd.CommandPath(), w)
				}
			}
		}
	}
	// The environment topic is there.
	if c, _, err := root.Find([]string{"environment"}); err != nil || !strings.Contains(c.Long, "REDBACK_STORAGE") {
		t.Errorf("help environment: %v", err)
	}
}
