package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent/version"
)

func versionCmd(_ context.Context, g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print redback's version, the commit it was built from and its Go version",
		Long: "Print redback's version, the commit it was built from (VCS revision and time, and\n" +
			"\"modified\" when the working tree had changes) and the Go toolchain that built it.\n" +
			"`redback --version` prints the same line. --json prints an object whose fields are\n" +
			"only ever added: version, revision, time, modified, go_version, platform.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in := version.Get()
			return g.emit(asJSON, in, nil, func(w io.Writer) { fmt.Fprintln(w, in) })
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return c
}

// versionFlag gives the root command --version (cobra's own would also
// take -v).
func versionFlag(root *cobra.Command) {
	show := root.Flags().Bool("version", false, "print the version and exit")
	help := root.RunE
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if *show {
			fmt.Fprintln(cmd.OutOrStdout(), version.Get())
			return nil
		}
		return help(cmd, args)
	}
}
