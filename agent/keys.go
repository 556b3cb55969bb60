package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent/config"
)

// MaxScryptWorkFactor is the largest scrypt work factor (log2 N) accepted
// when decrypting a passphrase-encrypted archive: 2^20 needs 1 GiB of memory
// and a few seconds. age itself encrypts with 18; a header that asks for
// more is refused before any work (a hostile archive could ask for 2^40).
const MaxScryptWorkFactor = 20

// minPassphrase is the shortest passphrase accepted for encryption.
const minPassphrase = 8

// loadRecipients turns backup.encrypt into age recipients. Any recipient
// that does not parse, a recipients file that is missing or holds none, and
// recipients that age cannot combine are errors: redback never falls back to
// plaintext. The recipients are tried once on an empty file here, so that a
// combination age refuses stops the agent at start, not a backup later.
func loadRecipients(e config.Encrypt) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, r := range e.Recipients {
		line := strings.TrimSpace(r)
		rcs, err := age.ParseRecipients(strings.NewReader(line))
		if err != nil || len(rcs) != 1 || strings.ContainsAny(line, "\n#") {
			return nil, fmt.Errorf("recipient %s: not an age public key (age1...)", describeRecipient(i, line))
		}
		out = append(out, rcs[0])
	}
	if e.RecipientsFile != "" {
		data, err := os.ReadFile(e.RecipientsFile)
		if err != nil {
			return nil, fmt.Errorf("recipients_file: %w", err)
		}
		rcs, err := age.ParseRecipients(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("recipients_file %s: %v", e.RecipientsFile, err)
		}
		out = append(out, rcs...)
	}
	if e.PassphraseFile != "" {
		if len(out) > 0 {
			return nil, errors.New("a passphrase cannot be combined with recipients")
		}
		pass, err := readPassphrase(e.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase_file: %w", err)
		}
		if len(pass) < minPassphrase {
			return nil, fmt.Errorf("passphrase_file: the passphrase is shorter than %d characters", minPassphrase)
		}
		r, err := age.NewScryptRecipient(pass)
		if err != nil {
			return nil, fmt.Errorf("passphrase_file: %v", err)
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		if _, ok := out[0].(*age.ScryptRecipient); !ok {
			// A trial run (cheap for public keys; scrypt would cost a
			// second and cannot be mixed by construction).
			w, err := age.Encrypt(io.Discard, out...)
			if err == nil {
				err = w.Close()
			}
			if err != nil {
				return nil, fmt.Errorf("recipients cannot be used together: %v", err)
			}
		}
	}
	return out, nil
}

// describeRecipient names a recipient that does not parse. Only what looks
// like a public key is quoted: a secret key pasted by mistake must not
// reach a log.
func describeRecipient(i int, r string) string {
	switch {
	case strings.HasPrefix(strings.ToUpper(r), "AGE-SECRET-KEY-"):
		return fmt.Sprintf("#%d (a secret key! give its public key, and treat this one as exposed)", i+1)
	case strings.HasPrefix(r, "age1") || strings.HasPrefix(r, "ssh-"):
		return fmt.Sprintf("#%d %q", i+1, truncate(r, 80))
	case r == "":
		return fmt.Sprintf("#%d (empty)", i+1)
	}
	return fmt.Sprintf("#%d (%d characters)", i+1, len(r))
}

// readPassphrase reads a passphrase file: its content without the final
// line break. The error names the file, never its content.
func readPassphrase(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pass := strings.TrimRight(string(data), "\r\n")
	if pass == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(pass, "\r\n") {
		return "", fmt.Errorf("%s holds more than one line", path)
	}
	return pass, nil
}

// recipientNames returns what the manifest records of each recipient, its
// fingerprint (see Fingerprint).
func recipientNames(rs []age.Recipient) []string {
	var out []string
	for _, r := range rs {
		out = append(out, Fingerprint(r))
	}
	return out
}

// Fingerprint names a recipient without revealing anything secret: the
// public key itself for X25519 (age1..., short and public), "scrypt" for a
// passphrase, and "sha256:" and the first 32 hex digits of the SHA-256 of
// the public key for others (post-quantum keys are about 2 KB long).
func Fingerprint(r age.Recipient) string {
	switch v := r.(type) {
	case *age.X25519Recipient:
		return v.String()
	case *age.ScryptRecipient:
		return "scrypt"
	case fmt.Stringer:
		sum := sha256.Sum256([]byte(v.String()))
		return "sha256:" + hex.EncodeToString(sum[:16])
	default:
		return fmt.Sprintf("%T", r)
	}
}

// IdentityFingerprints returns the fingerprints (as Fingerprint) of the
// recipients that ids open, for messages and for matching a manifest's
// recipients; a passphrase gives "scrypt".
func IdentityFingerprints(ids []age.Identity) []string {
	var out []string
	for _, id := range ids {
		switch v := id.(type) {
		case *age.X25519Identity:
			out = append(out, Fingerprint(v.Recipient()))
		case *age.HybridIdentity:
			out = append(out, Fingerprint(v.Recipient()))
		case *age.ScryptIdentity:
			out = append(out, "scrypt")
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

// LoadPassphrase reads a passphrase file into an scrypt identity that
// refuses work factors above MaxScryptWorkFactor.
func LoadPassphrase(path string) (age.Identity, error) {
	pass, err := readPassphrase(path)
	if err != nil {
		return nil, fmt.Errorf("%w: passphrase file: %v", ErrInvalid, err)
	}
	return PassphraseIdentity(pass)
}

// PassphraseIdentity returns an scrypt identity for pass that refuses work
// factors above MaxScryptWorkFactor.
func PassphraseIdentity(pass string) (age.Identity, error) {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("%w: passphrase: %v", ErrInvalid, err)
	}
	id.SetMaxWorkFactor(MaxScryptWorkFactor)
	return id, nil
}

// Keys names where identities come from: identity files and a passphrase
// file (either may be empty).
type Keys struct {
	IdentityFiles  []string
	PassphraseFile string
}

// Load reads every identity k names.
func (k Keys) Load() ([]age.Identity, error) {
	ids, err := LoadIdentities(k.IdentityFiles)
	if err != nil {
		return nil, err
	}
	if k.PassphraseFile != "" {
		id, err := LoadPassphrase(k.PassphraseFile)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ConfigKeys returns the identities restore.identities and
// restore.passphrase_file name.
func ConfigKeys(r config.Restore) Keys {
	return Keys{IdentityFiles: r.Identities, PassphraseFile: r.PassphraseFile}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
