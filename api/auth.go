package api

import (
	"context"
	"fmt"
	"log/slog"
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
	// token is the SHA-256 of an admin's bearer token; authAt is when its
	// session last presented a code (the login, or a fresh code since).
	token  [32]byte
	authAt time.Time
	// machine is set for a machine token (admin false): its scopes say
	// which admin routes it may call, and it needs no fresh code.
	machine *MachineToken
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
	if se, h, ok := s.sessions.Lookup(tok); ok {
		return principal{name: se.admin, admin: true, token: h, authAt: se.authAt}, nil
	}
	if name, ok := matchReadToken(s.readers, tok); ok {
		return principal{name: name}, nil
	}
	mt, ok, err := s.machines.lookup(tok, s.opt.Now())
	if err != nil {
		s.log.Error("cannot read api.tokens_file: every machine token is refused", "err", err)
		return principal{}, fmt.Errorf("%w: machine tokens cannot be checked now (see the server log)", errUnavailable)
	}
	if ok {
		return principal{name: "token:" + mt.Name, machine: &mt}, nil
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
		switch {
		case err != nil, a != adminOnly, p.admin:
		case p.machine != nil && !p.machine.allows(routeName(r)):
			err = fmt.Errorf("%w: the scopes of machine token %q (%s) do not allow this call", errForbidden, p.machine.Name, strings.Join(p.machine.Scopes, ", "))
		case p.machine == nil:
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
// the admin who holds the token, and restarts the session's fresh
// authentication window when it is accepted. Within FreshAuthWindow of the
// session's last code (off by default), no code is needed. Failures count
// against the login limits; a right code already used does not.
func (s *Server) requireFreshCode(r *http.Request) error {
	p, ok := principalOf(r)
	if ok && p.machine != nil && p.machine.allows(routeName(r)) {
		return nil // its scope is the authorisation: automation has no codes
	}
	if !ok || !p.admin {
		return fmt.Errorf("%w: a read-only token cannot do this", errForbidden)
	}
	if w := s.opt.FreshAuthWindow; w > 0 && s.opt.Now().Sub(p.authAt) < w {
		s.audit.Info("fresh code waived: within api.fresh_auth_window", "admin", p.name, "remote", s.clientIP(r),
			"route", routeName(r), "authenticated_at", p.authAt.UTC().Format(time.RFC3339))
		return nil
	}
	code := r.Header.Get(freshCodeHeader)
	if code == "" {
		return fmt.Errorf("%w: this call needs a fresh TOTP code in the %s header (a code not used before: the one after the login's)", errForbidden, freshCodeHeader)
	}
	invalid := fmt.Errorf("%w: the %s code is invalid or already used", errForbidden, freshCodeHeader)
	ip := s.clientIP(r)
	if !isCode(code) { // never a code: not an attempt
		s.audit.Warn("fresh code rejected", "admin", p.name, "remote", ip, "route", routeName(r), "why", "malformed")
		return invalid
	}
	key := clientKey(ip)
	if wait := s.admit(key, true); wait > 0 {
		s.audit.Warn("fresh code refused: rate limited", "admin", p.name, "remote", ip)
		return &limitedError{wait: wait}
	}
	_, ok, used, err := s.totp.Verify(code, p.name)
	s.endAttempt(key, ok || used != nil || err != nil)
	if err != nil {
		s.log.Error("cannot record a used TOTP code in api.state_file", "admin", p.name, "err", err)
		return errStateWrite
	}
	if used != nil {
		s.audit.Warn("fresh code rejected", "admin", p.name, "remote", ip, "route", routeName(r), "why", "already used")
		return s.totp.usedError(errForbidden, used)
	}
	if !ok {
		s.audit.Warn("fresh code rejected", "admin", p.name, "remote", ip, "route", routeName(r))
		return invalid
	}
	s.sessions.Reauthenticated(p.token)
	return nil
}

// admit checks the failed-code limits for client key: with begin, it
// admits an attempt (to be ended by endAttempt). When a limit refuses and
// `redback totp unlock` has asked since, every failure is forgotten first.
func (s *Server) admit(key string, begin bool) time.Duration {
	check := s.limiter.Check
	if begin {
		check = s.limiter.Begin
	}
	wait := check(key)
	if wait > 0 && s.unlock != nil && s.unlock.poll() {
		s.limiter.Reset()
		s.audit.Warn("logins unlocked: every failed code counted so far is forgotten (redback totp unlock)")
		wait = check(key)
	}
	return wait
}

// endAttempt ends an attempt admitted by admit, and says so loudly when it
// locked every login.
func (s *Server) endAttempt(key string, ok bool) {
	if s.limiter.End(key, ok) {
		s.audit.Error("logins locked for everyone: too many failed codes in 24 hours; `redback totp unlock` lifts the lock",
			"login_daily_cap", s.opt.LoginDailyCap)
	}
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

// login exchanges a TOTP code for a bearer token. Only MaxLogins run at
// once (MaxLoginsPerClient per client). A locked client is refused before
// its body is read; the body must arrive within BodyTimeout. Only a well
// formed code that was checked counts as an attempt: a body that never
// arrives, or holds no six digits, is refused without counting. Every
// failed code gets the same answer. The log lines of refusals are sampled.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	ip := s.clientIP(r)
	key := clientKey(ip)
	if err := s.logins.enter(key); err != nil {
		s.sample.log(s.audit, slog.LevelWarn, "login refused: too many in progress", "remote", ip)
		return err
	}
	defer s.logins.leave(key)
	if wait := s.admit(key, false); wait > 0 {
		s.sample.log(s.audit, slog.LevelWarn, "login refused: rate limited", "remote", ip)
		return &limitedError{wait: wait}
	}
	var req loginRequest
	if err := decodeBody(w, r, &req); err != nil {
		s.sample.log(s.audit, slog.LevelWarn, "login failed", "remote", ip, "why", "bad body")
		return err
	}
	invalid := fmt.Errorf("%w: invalid code", errUnauthorized)
	if !isCode(req.Code) {
		s.sample.log(s.audit, slog.LevelWarn, "login failed", "remote", ip, "why", "malformed code")
		return invalid
	}
	if wait := s.admit(key, true); wait > 0 {
		s.sample.log(s.audit, slog.LevelWarn, "login refused: rate limited", "remote", ip)
		return &limitedError{wait: wait}
	}
	name, ok, used, err := s.totp.Verify(req.Code, "")
	s.endAttempt(key, ok || used != nil || err != nil)
	if err != nil {
		s.log.Error("cannot record a used TOTP code in api.state_file", "admin", name, "err", err)
		return errStateWrite
	}
	if used != nil {
		s.sample.log(s.audit, slog.LevelWarn, "login failed", "remote", ip, "why", "code already used")
		return s.totp.usedError(errUnauthorized, used)
	}
	if !ok {
		s.sample.log(s.audit, slog.LevelWarn, "login failed", "remote", ip)
		return invalid
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
