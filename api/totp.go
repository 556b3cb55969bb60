package api

import (
	"encoding/base32"
	"errors"
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
// concurrent requests with one code exactly one succeeds.
type totpVerifier struct {
	admins []Admin
	now    func() time.Time

	mu   sync.Mutex
	last map[string]int64 // admin name -> last accepted step
}

func newTOTPVerifier(admins []Admin, now func() time.Time) *totpVerifier {
	return &totpVerifier{admins: admins, now: now, last: map[string]int64{}}
}

// Verify returns the admin whose secret gives code at a time step within
// one step of now that is newer than that admin's last accepted step, and
// records the step. When only is not empty, only that admin's secret is
// tried (a fresh code for an action must be the token owner's).
func (v *totpVerifier) Verify(code, only string) (string, bool) {
	if !isCode(code) {
		return "", false
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
			if step < 0 || (seen && step <= last) {
				continue
			}
			ok, err := hotp.ValidateCustom(code, uint64(step), a.Secret, hotp.ValidateOpts{
				Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
			})
			if err == nil && ok {
				v.last[a.Name] = step
				return a.Name, true
			}
		}
	}
	return "", false
}
