package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent/config"
)

// loadRecipients turns backup.encrypt into age recipients. Any recipient
// that does not parse is an error: redback never falls back to plaintext.
func loadRecipients(e config.Encrypt) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, r := range e.Recipients {
		rc, err := age.ParseX25519Recipient(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %v", truncate(r, 80), err)
		}
		out = append(out, rc)
	}
	if e.RecipientsFile != "" {
		data, err := os.ReadFile(e.RecipientsFile)
		if err != nil {
			return nil, fmt.Errorf("recipients_file: %w", err)
		}
		rcs, err := age.ParseRecipients(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("recipients_file: %v", err)
		}
		out = append(out, rcs...)
	}
	if e.PassphraseFile != "" {
		data, err := os.ReadFile(e.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase_file: %w", err)
		}
		pass := strings.TrimRight(string(data), "\r\n")
		if len(pass) < 8 {
			return nil, errors.New("passphrase_file: the passphrase is shorter than 8 characters")
		}
		r, err := age.NewScryptRecipient(pass)
		if err != nil {
			return nil, fmt.Errorf("passphrase_file: %v", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// recipientNames returns what the manifest records of each recipient: the
// public key for X25519 (it is public), "scrypt" for a passphrase.
func recipientNames(rs []age.Recipient) []string {
	var out []string
	for _, r := range rs {
		switch v := r.(type) {
		case *age.X25519Recipient:
			out = append(out, v.String())
		case *age.ScryptRecipient:
			out = append(out, "scrypt")
		default:
			out = append(out, fmt.Sprintf("%T", r))
		}
	}
	return out
}

// LoadIdentities reads age identity files (AGE-SECRET-KEY-1... lines). The
// error names the file, never its content.
func LoadIdentities(paths []string) ([]age.Identity, error) {
	var out []age.Identity
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: identity file: %v", ErrInvalid, err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: identity file %s holds no age identity", ErrInvalid, p)
		}
		out = append(out, ids...)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
