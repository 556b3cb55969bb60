package api

import (
	"encoding/base32"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// TOTP parameters (RFC 6238 as authenticator apps use it).
const (
	totpPeriod     = 30 // seconds per time step
	totpSkew       = 1  // steps accepted either side of now
	minSecretBytes = 20 // RFC 4226 asks for 160 bits
)

// Admin is one administrator: a name (for the audit log) and a TOTP secret.
type Admin struct {
	Name string
	// Secret is base32, as ParseSecret returns it.
	Secret string
}

// ParseSecret checks a base32 TOTP secret (case, spaces and padding do not
// matter) and returns it normalised: upper case, no spaces, no padding. It
// refuses an empty, malformed or short (< 20 bytes decoded) secret; the
// error never repeats the secret.
func ParseSecret(s string) (string, error) {
	s = strings.ToUpper(strings.Join(strings.Fields(s), ""))
	s = strings.TrimRight(s, "=")
	if s == "" {
		return "", errors.New("TOTP secret is empty")
	}
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return "", errors.New("TOTP secret is not valid base32")
	}
	if len(b) < minSecretBytes {
		return "", errors.New("TOTP secret is too short: it must hold at least 20 bytes (32 base32 characters); make one with `redback totp init`")
	}
	return s, nil
}

// isCode reports whether s is exactly six ASCII digits. Anything else (spaces
// the library would trim, other scripts' digits) is never a code.
func isCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// totpVerifier checks codes and remembers, per admin, the last time step
// it accepted: a code is accepted once, and no code of an earlier or equal
// step after it. One lock covers the check and the record, so of two
// concurrent requests with one code exactly one succeeds. With a state
// file the record is written there before a code is reported accepted, so
// a restart forgets nothing; without one, the steps up to one ahead of the
// clock at start count as used (no code that the previous process might
// have accepted is accepted again).
type totpVerifier struct {
	admins []Admin
	now    func() time.Time
	// stateFile, when set, is where last is persisted.
	stateFile string

	mu   sync.Mutex
	last map[string]int64 // admin name -> last accepted step
}

// errStateWrite is a valid code that could not be recorded in the state
// file: refused, since a restart could otherwise accept it again.
var errStateWrite = fmt.Errorf("%w: the code cannot be recorded as used, so it is refused (see the server log)", errUnavailable)

func newTOTPVerifier(admins []Admin, now func() time.Time, stateFile string) (*totpVerifier, error) {
	v := &totpVerifier{admins: admins, now: now, stateFile: stateFile, last: map[string]int64{}}
	if stateFile == "" {
		start := now().Unix()/totpPeriod + totpSkew
		for _, a := range admins {
			v.last[a.Name] = start
		}
		return v, nil
	}
	st, err := loadState(stateFile)
	if err != nil {
		return nil, err
	}
	for _, a := range admins {
		if step, ok := st.LastStep[a.Name]; ok {
			v.last[a.Name] = step
		}
	}
	// Write it back now: a state file that cannot be written stops the
	// API at start, not at the first login.
	if err := v.saveLocked(); err != nil {
		return nil, fmt.Errorf("api.state_file %s: %w", stateFile, err)
	}
	return v, nil
}

// saveLocked writes the last steps to the state file (v.mu held).
func (v *totpVerifier) saveLocked() error {
	if v.stateFile == "" {
		return nil
	}
	return saveState(v.stateFile, apiState{LastStep: maps.Clone(v.last)})
}

// usedCode is a code refused because it was accepted already (or one of
// a later step was): the admin knows the secret and has only to wait for
// the next code, which their device shows at next.
type usedCode struct{ next time.Time }

// Verify returns the admin whose secret gives code at a time step within
// one step of now that is newer than that admin's last accepted step, and
// records the step. When only is not empty, only that admin's secret is
// tried (a fresh code for an action must be the token owner's). used is
// set, with ok false, when the code is right for a step already spent. err
// is set when the code was right but could not be recorded (errStateWrite,
// wrapping the cause): the caller refuses it.
func (v *totpVerifier) Verify(code, only string) (name string, ok bool, used *usedCode, err error) {
	if !isCode(code) {
		return "", false, nil, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now().Unix() / totpPeriod
	for _, a := range v.admins {
		if only != "" && a.Name != only {
			continue
		}
		last, seen := v.last[a.Name]
		for step := now - totpSkew; step <= now+totpSkew; step++ {
			if step < 0 {
				continue
			}
			ok, err := hotp.ValidateCustom(code, uint64(step), a.Secret, hotp.ValidateOpts{
				Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
			})
			if err != nil || !ok {
				continue
			}
			if seen && step <= last {
				used = &usedCode{next: time.Unix((last+1)*totpPeriod, 0)}
				continue
			}
			// Used from now on, whether or not the file takes it.
			v.last[a.Name] = step
			if err := v.saveLocked(); err != nil {
				return a.Name, false, nil, fmt.Errorf("%w: %w", errStateWrite, err)
			}
			return a.Name, true, nil, nil
		}
	}
	return "", false, used, nil
}

// usedError is the answer to a used code: which status, and when the next
// code comes (next_code_in_seconds in the body).
func (v *totpVerifier) usedError(kind error, u *usedCode) error {
	wait := max(0, int(math.Ceil(u.next.Sub(v.now()).Seconds())))
	return &codeUsedError{kind: kind, wait: wait, next: u.next}
}

// codeUsedError says that a code was right but already used.
type codeUsedError struct {
	kind error // errUnauthorized or errForbidden
	wait int   // seconds until the next code
	next time.Time
}

func (e *codeUsedError) Error() string {
	return fmt.Sprintf("%v: this code was already used (each code works once): wait for the next one, in %d s (at %s)",
		e.kind, e.wait, e.next.UTC().Format("15:04:05Z"))
}

func (e *codeUsedError) Unwrap() error { return e.kind }
