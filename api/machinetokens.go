package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Machine tokens let automation make admin calls without TOTP codes: each
// is created from the command line (`redback token create`), carries
// scopes that name the admin calls it may make, may expire, and is revoked
// by removing it from the tokens file, which the API re-reads when it
// changes. Only the SHA-256 of a token is stored.

// The scopes of machine tokens: the admin routes each allows. Every
// machine token may also call the read-only routes.
var scopeRoutes = map[string][]string{
	"backup":  {"backup_create"},
	"restore": {"backup_restore"},
	"delete":  {"backup_delete"},
	"upload":  {"backup_upload"},
	"verify":  {"backup_verify"},
	"drill":   {"backup_drill"},
}

// Scopes lists the scopes a machine token may carry, sorted.
func Scopes() []string {
	out := make([]string, 0, len(scopeRoutes))
	for s := range scopeRoutes {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// MachineToken is one entry of the tokens file.
type MachineToken struct {
	Name      string     `json:"name"`
	SHA256    string     `json:"sha256"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// allows reports whether the token's scopes cover the admin route.
func (m MachineToken) allows(route string) bool {
	for _, s := range m.Scopes {
		if slices.Contains(scopeRoutes[s], route) {
			return true
		}
	}
	return false
}

// tokensFile is the file's content.
type tokensFile struct {
	Tokens []MachineToken `json:"tokens"`
}

// machinePrefix starts every machine token, so that a leaked one is
// recognisable (and secret scanners can look for it).
const machinePrefix = "rbm_"

func readTokens(path string) (tokensFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokensFile{}, nil
	}
	if err != nil {
		return tokensFile{}, err
	}
	var tf tokensFile
	if err := json.Unmarshal(data, &tf); err != nil {
		return tokensFile{}, fmt.Errorf("%s: not a tokens file: %v", path, err)
	}
	for i, t := range tf.Tokens {
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return tokensFile{}, fmt.Errorf("%s: token %d (%q): sha256 is not 64 hex digits", path, i, t.Name)
		}
	}
	return tf, nil
}

func writeTokens(path string, tf tokensFile) error {
	if tf.Tokens == nil {
		tf.Tokens = []MachineToken{}
	}
	data, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'), 0o600)
}

// CreateMachineToken adds a token named name with scopes to the tokens
// file at path (created 0600 when missing), expiring after ttl (never when
// ttl is 0), and returns the token, which is shown once and stored only as
// its SHA-256. Names are unique; scopes must be known (Scopes).
func CreateMachineToken(path, name string, scopes []string, ttl time.Duration, now time.Time) (string, MachineToken, error) {
	if !nameRE.MatchString(name) {
		return "", MachineToken{}, fmt.Errorf("token name %q: use letters, digits and . _ @ - (at most 64)", name)
	}
	if len(scopes) == 0 {
		return "", MachineToken{}, fmt.Errorf("a token needs at least one scope (%s)", strings.Join(Scopes(), ", "))
	}
	for _, s := range scopes {
		if _, ok := scopeRoutes[s]; !ok {
			return "", MachineToken{}, fmt.Errorf("unknown scope %q (known: %s)", s, strings.Join(Scopes(), ", "))
		}
	}
	if ttl < 0 {
		return "", MachineToken{}, errors.New("the expiry must not be negative")
	}
	tf, err := readTokens(path)
	if err != nil {
		return "", MachineToken{}, err
	}
	for _, t := range tf.Tokens {
		if t.Name == name {
			return "", MachineToken{}, fmt.Errorf("a token named %q exists: revoke it first, or choose another name", name)
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", MachineToken{}, fmt.Errorf("new token: %w", err)
	}
	tok := machinePrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(tok))
	mt := MachineToken{Name: name, SHA256: hex.EncodeToString(sum[:]), Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), CreatedAt: now.UTC()}
	if ttl > 0 {
		exp := now.Add(ttl).UTC()
		mt.ExpiresAt = &exp
	}
	tf.Tokens = append(tf.Tokens, mt)
	if err := writeTokens(path, tf); err != nil {
		return "", MachineToken{}, err
	}
	return tok, mt, nil
}

// ListMachineTokens returns the tokens of the file at path (none when it
// does not exist).
func ListMachineTokens(path string) ([]MachineToken, error) {
	tf, err := readTokens(path)
	return tf.Tokens, err
}

// RevokeMachineToken removes the token named name; the running API stops
// taking it at its next request. A name that is not there is an error.
func RevokeMachineToken(path, name string) error {
	tf, err := readTokens(path)
	if err != nil {
		return err
	}
	n := len(tf.Tokens)
	tf.Tokens = slices.DeleteFunc(tf.Tokens, func(t MachineToken) bool { return t.Name == name })
	if len(tf.Tokens) == n {
		return fmt.Errorf("no token named %q in %s", name, path)
	}
	return writeTokens(path, tf)
}

// machineTokens is the API's view of the tokens file: read again whenever
// its size or modification time changes (a stat per machine-token
// request), so revocations take effect at once.
type machineTokens struct {
	path string

	mu     sync.Mutex
	stamp  string // size and mtime of the file last read ("" before)
	tokens []machineEntry
	err    error // of the last read: every machine token is refused then
}

type machineEntry struct {
	MachineToken
	sum [32]byte
}

// lookup returns the live (unexpired) token tok is, comparing every hash
// in constant time. A tokens file that cannot be read refuses them all.
func (m *machineTokens) lookup(tok string, now time.Time) (MachineToken, bool, error) {
	if m == nil || m.path == "" || !strings.HasPrefix(tok, machinePrefix) {
		return MachineToken{}, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reloadLocked()
	if m.err != nil {
		return MachineToken{}, false, m.err
	}
	h := sha256.Sum256([]byte(tok))
	var found MachineToken
	ok := false
	for _, e := range m.tokens {
		if subtle.ConstantTimeCompare(h[:], e.sum[:]) == 1 && !ok {
			found, ok = e.MachineToken, true
		}
	}
	if ok && found.ExpiresAt != nil && !now.Before(*found.ExpiresAt) {
		return MachineToken{}, false, nil
	}
	return found, ok, nil
}

func (m *machineTokens) reloadLocked() {
	st, err := os.Stat(m.path)
	stamp := "absent"
	if err == nil {
		stamp = fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
	} else if !errors.Is(err, fs.ErrNotExist) {
		m.err, m.stamp = err, ""
		return
	}
	if stamp == m.stamp {
		return
	}
	tf, err := readTokens(m.path)
	m.err, m.stamp = err, stamp
	m.tokens = m.tokens[:0]
	for _, t := range tf.Tokens {
		b, _ := hex.DecodeString(t.SHA256)
		var e machineEntry
		e.MachineToken = t
		copy(e.sum[:], b)
		m.tokens = append(m.tokens, e)
	}
}
