package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/api"
)

func totpCmd(_ context.Context, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "totp",
		Short: "Make the API's credentials (init, read-token), or lift the lock after failed codes (unlock)",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(totpInitCmd(g), readTokenCmd(g), totpUnlockCmd(g))
	return c
}

func totpInitCmd(g *globals) *cobra.Command {
	var account, pngPath string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a TOTP secret; print its otpauth:// URL and a QR code for an authenticator app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := api.CheckAdminName(account); err != nil {
				return usageError{fmt.Errorf("--account: %w", err)}
			}
			key, err := totp.Generate(totp.GenerateOpts{
				Issuer: "redback", AccountName: account, SecretSize: 20,
				Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
			})
			if err != nil {
				return fmt.Errorf("generate secret: %w", err)
			}
			qr, err := qrcode.New(key.URL(), qrcode.Medium)
			if err != nil {
				return fmt.Errorf("qr code: %w", err)
			}
			if pngPath != "" {
				if err := writePNG(pngPath, qr); err != nil {
					return err
				}
			}
			printTOTPInit(g.stdout, key, qr.ToSmallString(false), account, pngPath)
			return nil
		},
	}
	c.Flags().StringVar(&account, "account", api.DefaultAdmin, "admin name (the account shown in the app and in the audit log)")
	c.Flags().StringVar(&pngPath, "png", "", "also write the QR code to this PNG file (mode 0600; it holds the secret)")
	return c
}

// writePNG writes the QR code to a new file only the owner can read.
func writePNG(path string, qr *qrcode.QRCode) error {
	data, err := qr.PNG(256)
	if err != nil {
		return fmt.Errorf("qr code: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usageError{fmt.Errorf("--png: %w", err)}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printTOTPInit(w io.Writer, key *otp.Key, qr, account, pngPath string) {
	sec := key.Secret()
	fmt.Fprintf(w, "TOTP secret for %q (base32, 20 bytes): %s\n\n", account, sec)
	fmt.Fprintf(w, "otpauth URL: %s\n\n", key.URL())
	fmt.Fprintf(w, "Scan this with an authenticator app (or add the secret by hand: SHA1, 6 digits, 30 s):\n\n%s\n", qr)
	if pngPath != "" {
		fmt.Fprintf(w, "The QR code is also in %s (delete it once scanned).\n\n", pngPath)
	}
	fmt.Fprintln(w, "Give the secret to the agent in ONE of these ways, then restart `redback serve`:")
	if account == api.DefaultAdmin {
		fmt.Fprintf(w, "  1. environment:  REDBACK_TOTP_SECRET=%s\n", sec)
		fmt.Fprintf(w, "  2. a file only the agent can read:\n")
		fmt.Fprintf(w, "       umask 077; echo %s > /etc/redback/totp.secret\n", sec)
		fmt.Fprintf(w, "     and in agent.yaml:  api:\n                           totp_secret_file: /etc/redback/totp.secret\n")
		fmt.Fprintf(w, "  3. agent.yaml:  api:\n                  totp_secret: \"%s\"\n", sec)
	} else {
		fmt.Fprintf(w, "  in agent.yaml, as one more admin:\n")
		fmt.Fprintf(w, "    api:\n      admins:\n        - name: %s\n          totp_secret: \"%s\"\n", account, sec)
		fmt.Fprintf(w, "  (or totp_secret_file: a file only the agent can read, holding the secret)\n")
	}
	fmt.Fprintln(w, "\nKeep the secret out of version control: anyone who has it can log in.")
}

func readTokenCmd(g *globals) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "read-token",
		Short: "Create a read-only API token for a machine (list, stats, download, jobs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := api.CheckAdminName(name); err != nil {
				return usageError{fmt.Errorf("--name: %w", err)}
			}
			var raw [32]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return err
			}
			tok := "rbr_" + base64.RawURLEncoding.EncodeToString(raw[:])
			sum := sha256.Sum256([]byte(tok))
			w := g.stdout
			fmt.Fprintf(w, "Read-only token for %q (shown once; give it to the machine):\n\n  %s\n\n", name, tok)
			fmt.Fprintf(w, "Add its hash (not the token) to agent.yaml and restart `redback serve`:\n\n")
			fmt.Fprintf(w, "api:\n  read_tokens:\n    - name: %s\n      sha256: %s\n", name, hex.EncodeToString(sum[:]))
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "monitoring", "the token's name (in the audit log)")
	return c
}
