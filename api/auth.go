package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// access is what a route requires.
type access int

const (
	public    access = iota // no token
	readOnly                // an admin's token or a read token
	adminOnly               // an admin's token
)

// principal is who made a request.
type principal struct {
	name  string
	admin bool // false: a read token
}

type principalKey struct{}

// principalSinkKey holds a *principal that guard fills in, so that the
// audit log, which wraps guard, learns who made the request.
type principalSinkKey struct{}

func principalOf(r *http.Request) (principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(principal)
	return p, ok
}

func withPrincipalSink(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalSinkKey{}, p)
}

// maxTokenLen bounds what is hashed of an Authorization header.
const maxTokenLen = 512

// bearer returns the token of an "Authorization: Bearer ..." header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > maxTokenLen {
		return "", false
	}
	return tok, true
}

// authenticate finds who holds the request's bearer token: an admin with
// a live login, or a read token.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	tok, ok := bearer(r)
	if !ok {
		return principal{}, fmt.Errorf("%w: send Authorization: Bearer TOKEN (POST /api/auth/login gives one)", errUnauthorized)
	}
	if name, ok := s.sessions.Lookup(tok); ok {
		return principal{name: name, admin: true}, nil
	}
	if name, ok := matchReadToken(s.readers, tok); ok {
		return principal{name: name}, nil
	}
	return principal{}, fmt.Errorf("%w: the token is unknown or expired", errUnauthorized)
}

// guard wraps h with the check that a requires, putting the principal in
// the request's context.
func (s *Server) guard(a access, h http.Handler) http.Handler {
	if a == public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil && a == adminOnly && !p.admin {
			err = fmt.Errorf("%w: a read-only token cannot do this", errForbidden)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if sink, ok := r.Context().Value(principalSinkKey{}).(*principal); ok {
			*sink = p
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// freshCodeHeader carries the extra code destructive calls need.
const freshCodeHeader = "X-TOTP-Code"

// requireFreshCode checks the request's X-TOTP-Code against the secret of
// the admin who holds the token. Failures count against the login limits.
func (s *Server) requireFreshCode(r *http.Request) error {
	p, ok := principalOf(r)
	if !ok || !p.admin {
		return fmt.Errorf("%w: a read-only token cannot do this", errForbidden)
	}
	code := r.Header.Get(freshCodeHeader)
	if code == "" {
		return fmt.Errorf("%w: this call needs a fresh TOTP code in the %s header", errForbidden, freshCodeHeader)
	}
	ip := s.clientIP(r)
	if wait := s.limiter.Begin(ip); wait > 0 {
		s.audit.Warn("fresh code refused: rate limited", "admin", p.name, "remote", ip)
		return &limitedError{wait: wait}
	}
	_, ok = s.totp.Verify(code, p.name)
	s.limiter.End(ip, ok)
	if !ok {
		s.audit.Warn("fresh code rejected", "admin", p.name, "remote", ip, "route", routeName(r))
		return fmt.Errorf("%w: the %s code is invalid or already used", errForbidden, freshCodeHeader)
	}
	return nil
}

// loginRequest is POST /api/auth/login's body.
type loginRequest struct {
	Code string `json:"code"`
}

// loginResponse answers a login.
type loginResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// login exchanges a TOTP code for a bearer token. The limits are checked
// before the code; every failed code gets the same answer.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	ip := s.clientIP(r)
	if wait := s.limiter.Begin(ip); wait > 0 {
		s.audit.Warn("login refused: rate limited", "remote", ip)
		return &limitedError{wait: wait}
	}
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.limiter.End(ip, false)
		s.audit.Warn("login failed", "remote", ip, "why", "bad body")
		return err
	}
	name, ok := s.totp.Verify(req.Code, "")
	s.limiter.End(ip, ok)
	if !ok {
		s.audit.Warn("login failed", "remote", ip)
		return fmt.Errorf("%w: invalid code", errUnauthorized)
	}
	tok, exp, err := s.sessions.Issue(name)
	if err != nil {
		return err
	}
	s.audit.Info("login", "admin", name, "remote", ip, "expires_at", exp.UTC().Format(time.RFC3339))
	writeJSON(w, http.StatusOK, loginResponse{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339)})
	return nil
}

// logout revokes the request's token.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	tok, _ := bearer(r)
	s.sessions.Revoke(tok)
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return nil
}
