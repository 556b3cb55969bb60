package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// maxSessions bounds the live bearer tokens; the oldest go first.
const maxSessions = 1000

// ReadToken is a read-only machine token, known only by its SHA-256.
type ReadToken struct {
	Name   string
	SHA256 [32]byte
}

// sessions holds the bearer tokens given out by logins, by their SHA-256
// only: the tokens themselves are never stored.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	byHash map[[32]byte]session
}

type session struct {
	admin   string
	expires time.Time
	authAt  time.Time // the login, or the last fresh code accepted since
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byHash: map[[32]byte]session{}}
}

// Issue returns a new random 256-bit token for admin and when it expires.
func (s *sessions) Issue(admin string) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("new token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	exp := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(now)
	s.byHash[sha256.Sum256([]byte(tok))] = session{admin: admin, expires: exp, authAt: now}
	return tok, exp, nil
}

// purgeLocked drops expired sessions, and the oldest beyond maxSessions-1.
func (s *sessions) purgeLocked(now time.Time) {
	for h, se := range s.byHash {
		if !now.Before(se.expires) {
			delete(s.byHash, h)
		}
	}
	for len(s.byHash) >= maxSessions {
		var oldest [32]byte
		var first time.Time
		for h, se := range s.byHash {
			if first.IsZero() || se.expires.Before(first) {
				oldest, first = h, se.expires
			}
		}
		delete(s.byHash, oldest)
	}
}

// Lookup returns the session of a live token, and the token's SHA-256.
func (s *sessions) Lookup(tok string) (session, [32]byte, bool) {
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byHash[h]
	if !ok {
		return session{}, h, false
	}
	if !s.now().Before(se.expires) {
		delete(s.byHash, h)
		return session{}, h, false
	}
	return se, h, true
}

// Reauthenticated records that the session of the token whose SHA-256 is
// h presented a code now (its fresh authentication window starts again).
func (s *sessions) Reauthenticated(h [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se, ok := s.byHash[h]; ok {
		se.authAt = s.now()
		s.byHash[h] = se
	}
}

// Revoke forgets a token; it reports whether the token was live.
func (s *sessions) Revoke(tok string) bool {
	h := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byHash[h]
	delete(s.byHash, h)
	return ok
}

// matchReadToken returns the name of the read token tok is, comparing
// every configured hash in constant time.
func matchReadToken(tokens []ReadToken, tok string) (string, bool) {
	h := sha256.Sum256([]byte(tok))
	name, found := "", false
	for _, t := range tokens {
		if subtle.ConstantTimeCompare(h[:], t.SHA256[:]) == 1 && !found {
			name, found = t.Name, true
		}
	}
	return name, found
}
