package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redback-dev/redback/agent"
	"github.com/redback-dev/redback/agent/jobs"
)

// The API's own error kinds. Handlers return them (wrapped or not); the
// adapter below turns every error into a status code.
var (
	errBadRequest   = errors.New("bad request")
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
	errNotFound     = errors.New("not found")
	errTooLarge     = errors.New("request body too large")
	errUnavailable  = errors.New("unavailable")
	// errTimeout: the request's body did not arrive within BodyTimeout.
	errTimeout = errors.New("request timeout")
	// errRangeNotSatisfiable: a download's Range lies beyond the archive.
	errRangeNotSatisfiable = errors.New("range not satisfiable")
)

// limitedError is a request refused by a limit, to retry after wait: by
// default the failed-code limits (429).
type limitedError struct {
	wait time.Duration
	// status is the answer's status (0: 429).
	status int
	// msg is the answer's message ("": too many failed codes).
	msg string
}

func (e *limitedError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return "too many failed codes: try again later"
}

// statusOf maps an error to its HTTP status code: the one place where the
// agent's and the API's error kinds meet status codes.
func statusOf(err error) int {
	var lim *limitedError
	switch {
	case errors.As(err, &lim):
		if lim.status != 0 {
			return lim.status
		}
		return http.StatusTooManyRequests
	case errors.Is(err, errTimeout):
		return http.StatusRequestTimeout
	case errors.Is(err, errRangeNotSatisfiable):
		return http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, agent.ErrDrillFailed):
		return http.StatusUnprocessableEntity // the archive does not restore to what it records
	case errors.Is(err, errBadRequest), errors.Is(err, agent.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNotFound), errors.Is(err, agent.ErrNotFound),
		errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, agent.ErrBusy), errors.Is(err, jobs.ErrBusy), errors.Is(err, agent.ErrExists):
		return http.StatusConflict
	case errors.Is(err, errUnavailable), errors.Is(err, jobs.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// errorBody is every error's JSON body.
type errorBody struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	// JobID names the running job of a 409.
	JobID string `json:"job_id,omitempty"`
	// NextCodeIn is, for a TOTP code that was right but already used, the
	// seconds until the authenticator shows the next one.
	NextCodeIn *int `json:"next_code_in_seconds,omitempty"`
}

// absPath matches what looks like an absolute file path after a blank,
// quote, bracket or the start of the text ("redis://h/0" is not one).
var absPath = regexp.MustCompile(`(^|[\s"'(\[=])(/[^\s"'()\[\],;]*)`)

// apiPath matches the API's own routes, which messages name as hints
// ("POST /api/auth/login gives one") and which are no file paths.
var apiPath = regexp.MustCompile(`^/(api/[a-z]+(/[a-z]+)?|healthz|readyz|metrics)$`)

// publicMessage is the text of err that a client may see: its message with
// anything that looks like a file system path replaced (the API's own
// routes excepted). The errors of the packages below already hold no
// secret and no path; this is the backstop.
func publicMessage(err error) string {
	var lim *limitedError
	if errors.As(err, &lim) {
		return lim.Error()
	}
	return absPath.ReplaceAllStringFunc(err.Error(), func(m string) string {
		i := strings.IndexByte(m, '/')
		if apiPath.MatchString(strings.TrimSuffix(m[i:], ":")) {
			return m
		}
		tail := ""
		if strings.HasSuffix(m, ":") { // "open /x/y: denied" keeps its colon
			tail = ":"
		}
		return m[:i] + "<path>" + tail
	})
}

// writeError answers with the error's status and {"success": false, ...}.
// A 409 names the running job; a 429 says when to retry; a 401 asks for a
// bearer token. Server errors are logged whole.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	body := errorBody{Error: publicMessage(err)}
	var busy *jobs.BusyError
	if errors.As(err, &busy) {
		body.JobID = busy.ID
	}
	var used *codeUsedError
	if errors.As(err, &used) {
		body.NextCodeIn = &used.wait
	}
	var lim *limitedError
	if errors.As(err, &lim) {
		w.Header().Set("Retry-After", strconv.Itoa(int((lim.wait+time.Second-1)/time.Second)))
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="redback"`)
	}
	switch {
	case code == http.StatusServiceUnavailable:
		// Floods cause these (busy connections, logins): sampled.
		s.sample.log(s.log, slog.LevelWarn, "request refused", "route", routeName(r), "status", code, "err", err)
	case code >= 500:
		s.log.Error("request failed", "route", routeName(r), "status", code, "err", err)
	}
	writeJSON(w, code, body)
}

// badRequest wraps a message as a 400 error.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}
