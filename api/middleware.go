package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/redback-dev/redback/agent"
)

var errNoRoute = fmt.Errorf("%w: no such route", errNotFound)

// recoverer turns a panic in a handler into a 500 without details (the
// panic is logged), and lets http.ErrAbortHandler through.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panicked", "route", routeName(r), "panic", fmt.Sprint(p))
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush passes on to the underlying writer.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// audited logs who did what from where, once the request is answered: the
// principal (set by guard, which runs inside), the route, the archive name
// when it is a valid one, the job started, the status and the client. It
// never logs a token or a code.
func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var who principal
		next.ServeHTTP(rec, r.WithContext(withPrincipalSink(r.Context(), &who)))
		code := rec.code
		if code == 0 {
			code = http.StatusOK // the handler wrote nothing (its client left)
		}
		attrs := []any{"route", routeName(r), "method", r.Method, "status", code, "remote", s.clientIP(r),
			"ms", time.Since(start).Milliseconds()}
		if who.name != "" {
			kind := "admin"
			if !who.admin {
				kind = "read_token"
			}
			attrs = append(attrs, kind, who.name)
		}
		if _, ok := mux.Vars(r)["filename"]; ok {
			if n, err := pathName(r); err == nil {
				attrs = append(attrs, "file", n)
			} else {
				attrs = append(attrs, "file", "(invalid)")
			}
		}
		if r.URL.Query().Has(targetParam) {
			attrs = append(attrs, "target", truncate(r.URL.Query().Get(targetParam), 64))
		}
		if id := rec.Header().Get(jobHeader); id != "" {
			attrs = append(attrs, "job", id)
		}
		if code >= 400 && who.name == "" {
			// Anyone can cause these at will: sampled.
			s.sample.log(s.audit, slog.LevelWarn, "api request refused", attrs...)
			return
		}
		if code >= 400 {
			s.audit.Warn("api request refused", attrs...)
			return
		}
		s.audit.Info("api request", attrs...)
	})
}

// pathName returns the {filename} of the request's path, unescaped and
// checked: anything that is not an archive name is a 400 error.
func pathName(r *http.Request) (string, error) {
	name, err := url.PathUnescape(mux.Vars(r)["filename"])
	if err != nil {
		return "", badRequest("malformed escape in the file name")
	}
	return checkName(name)
}

// checkRef is checkName that also takes agent.Latest.
func checkRef(name string) (string, error) {
	if name == agent.Latest {
		return name, nil
	}
	return checkName(name)
}

// pathRef is pathName that also takes agent.Latest.
func pathRef(r *http.Request) (string, error) {
	name, err := url.PathUnescape(mux.Vars(r)["filename"])
	if err != nil {
		return "", badRequest("malformed escape in the file name")
	}
	return checkRef(name)
}

// checkName refuses anything that is not a valid archive name (from a path
// or a JSON body) before any storage call.
func checkName(name string) (string, error) {
	if name == "" {
		return "", badRequest("filename is required")
	}
	if err := agent.ValidateName(name); err != nil {
		return "", fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return name, nil
}
