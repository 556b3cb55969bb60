package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

func downloadCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		out        string
		decrypt    bool
		identities []string
		passFile   string
	)
	c := &cobra.Command{
		Use:   "download FILENAME",
		Short: "Copy an archive out of storage (to a file, or - for stdout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withService(ctx, func(svc *agent.Service) error {
				if err := resolveArg(ctx, svc, args); err != nil {
					return err
				}
				name := args[0]
				var src io.ReadCloser
				outName := name
				if decrypt {
					if !strings.HasSuffix(name, ".age") {
						return usageError{fmt.Errorf("--decrypt: %s is not encrypted", name)}
					}
					ids, err := loadKeys(identities, passFile, svc.Config().Restore)
					if err != nil {
						return err
					}
					if len(ids) == 0 {
						return usageError{fmt.Errorf("--decrypt needs --identity FILE or REDBACK_IDENTITY_FILE (--passphrase-file FILE or REDBACK_PASSPHRASE_FILE for a passphrase)")}
					}
					if src, err = svc.OpenDecrypted(ctx, name, ids); err != nil {
						return err
					}
					outName = strings.TrimSuffix(name, ".age")
				} else {
					rc, _, err := svc.Open(ctx, name)
					if err != nil {
						return err
					}
					src = rc
				}
				defer src.Close()
				if out == "-" {
					_, err := io.Copy(g.stdout, src)
					return err
				}
				if out == "" {
					out = outName
				}
				return writeFileAtomic(out, src)
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "where to write (a path, or - for stdout; default ./FILENAME)")
	c.Flags().BoolVar(&decrypt, "decrypt", false, "remove the age layer (needs --identity)")
	c.Flags().StringArrayVar(&identities, "identity", nil, "age identity file (repeatable; default $REDBACK_IDENTITY_FILE)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", passphraseUsage)
	return c
}

// writeFileAtomic writes r to path through a temporary file in the same
// folder, so that path never holds a partial copy. It refuses to replace an
// existing file.
func writeFileAtomic(path string, r io.Reader) error {
	return writeFileAtomicWith(path, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// writeFileAtomicWith is writeFileAtomic for a producer that writes.
func writeFileAtomicWith(path string, write func(io.Writer) error) error {
	if _, err := os.Lstat(path); err == nil {
		return usageError{fmt.Errorf("%s exists; choose another --output", path)}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".redback-download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
