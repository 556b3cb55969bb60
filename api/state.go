package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The API's state file (Options.StateFile) holds what must outlive a
// restart: each admin's last accepted TOTP step, so that a code accepted
// before a restart is refused after it. It is small JSON, written whole to
// a temporary file in the same folder, synced and renamed over the old one
// before the login that changed it is answered.
//
// `redback totp unlock` (RequestUnlock) writes a second file beside it,
// StateFile+".unlock", holding a random id. The running API reads that
// file when a login is about to be refused by a limit (at most once a
// second) and, when the id is new, forgets every failed code counted so
// far. Each file has one writer, so neither needs a lock, and unlock works
// the same whether the API runs or not (a stopped API starts with empty
// counters anyway).

// stateVersion is the state file's format version.
const stateVersion = 1

// maxStateFile bounds what is read of the state and unlock files.
const maxStateFile = 1 << 20

// apiState is the state file's content.
type apiState struct {
	Version int `json:"version"`
	// LastStep maps an admin's name to the last TOTP time step (Unix
	// seconds / 30) accepted for them.
	LastStep map[string]int64 `json:"totp_last_step"`
}

// loadState reads the state file; a missing file is an empty state.
func loadState(path string) (apiState, error) {
	st := apiState{Version: stateVersion, LastStep: map[string]int64{}}
	data, err := readSmall(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("api.state_file %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Version != stateVersion {
		return st, fmt.Errorf("api.state_file %s: not a redback API state file (version %d); move it away to start afresh", path, stateVersion)
	}
	if st.LastStep == nil {
		st.LastStep = map[string]int64{}
	}
	return st, nil
}

// saveState replaces the state file atomically (and durably: the file and
// its folder are synced).
func saveState(path string, st apiState) error {
	st.Version = stateVersion
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(data, '\n'), 0o600)
}

// writeAtomic writes data to path through a synced temporary file in the
// same folder (created 0700 when missing) and a rename.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readSmall reads at most maxStateFile bytes of a regular file.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, maxStateFile))
}

// unlockPath is the unlock file of a state file.
func unlockPath(stateFile string) string { return stateFile + ".unlock" }

// unlockRequest is the unlock file's content.
type unlockRequest struct {
	ID          string `json:"id"`
	RequestedAt string `json:"requested_at"`
}

// RequestUnlock asks the API whose state file is stateFile to forget every
// failed code it has counted (the global lock and the per-client ones): it
// writes a new request id to stateFile+".unlock", which the API reads when
// it next refuses a login for a limit. It returns the unlock file's path.
func RequestUnlock(stateFile string, now time.Time) (string, error) {
	if stateFile == "" {
		return "", errors.New("no api.state_file: the API keeps its counters in memory; restart `redback serve` to clear them, or set api.state_file")
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	data, err := json.Marshal(unlockRequest{ID: hex.EncodeToString(id[:]), RequestedAt: now.UTC().Format(time.RFC3339)})
	if err != nil {
		return "", err
	}
	path := unlockPath(stateFile)
	// 0644: the file holds no secret, and the API may run as another user
	// than the admin who unlocks.
	if err := writeAtomic(path, append(data, '\n'), 0o644); err != nil {
		return path, err
	}
	return path, nil
}

// unlockWatcher notices new unlock requests.
type unlockWatcher struct {
	path string

	mu   sync.Mutex
	seen []byte    // the content last acted on (or found at start)
	next time.Time // no look before then (real time)
}

func newUnlockWatcher(path string) *unlockWatcher {
	w := &unlockWatcher{path: path}
	w.seen, _ = readSmall(path) // a request older than this API is moot
	return w
}

// poll reports whether a new unlock request has arrived since the last
// poll that found one. It reads the file at most once a second.
func (w *unlockWatcher) poll() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if now.Before(w.next) {
		return false
	}
	w.next = now.Add(time.Second)
	data, err := readSmall(w.path)
	if err != nil || len(bytes.TrimSpace(data)) == 0 || bytes.Equal(data, w.seen) {
		return false
	}
	w.seen = data
	return true
}
