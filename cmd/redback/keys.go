package main

import (
	"fmt"
	"os"
	"strings"

	"filippo.io/age"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/config"
)

// identityFiles returns the --identity files, or REDBACK_IDENTITY_FILE.
func identityFiles(flag []string) []string {
	if len(flag) > 0 {
		return flag
	}
	if v := os.Getenv("REDBACK_IDENTITY_FILE"); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// passphraseFile returns --passphrase-file, or REDBACK_PASSPHRASE_FILE.
func passphraseFile(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("REDBACK_PASSPHRASE_FILE")
}

// loadKeys reads the identities of the command line (--identity,
// --passphrase-file, or their environment variables) and of the
// configuration (restore.identities, restore.passphrase_file).
func loadKeys(identities []string, passFile string, cfg config.Restore) ([]age.Identity, error) {
	k := agent.Keys{IdentityFiles: append(identityFiles(identities), cfg.Identities...)}
	if k.PassphraseFile = passphraseFile(passFile); k.PassphraseFile == "" {
		k.PassphraseFile = cfg.PassphraseFile
	}
	return k.Load()
}

// errNoKey is the error for an encrypted archive and no identity.
// archiveKeys loads the keys for archive name; an encrypted archive with no
// key at all is refused at once, naming the flags that give one.
func archiveKeys(name string, identities []string, passFile string, cfg config.Restore) ([]age.Identity, error) {
	ids, err := loadKeys(identities, passFile, cfg)
	if err == nil && len(ids) == 0 && strings.HasSuffix(name, ".age") {
		err = errNoKey(name)
	}
	return ids, err
}

func errNoKey(name string) error {
	return fmt.Errorf("%w: %s is encrypted: give --identity FILE (or REDBACK_IDENTITY_FILE), or --passphrase-file FILE (or REDBACK_PASSPHRASE_FILE) for a passphrase", agent.ErrInvalid, name)
}

const passphraseUsage = "file holding the passphrase of a passphrase-encrypted archive (default $REDBACK_PASSPHRASE_FILE)"
