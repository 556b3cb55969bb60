package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte(`{"status":"ok"}`))
		case "/readyz":
			http.Error(w, `{"error":"redis down"}`, http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{srv.URL + "/healthz"}, exitOK, ""},
		{[]string{srv.URL + "/readyz"}, exitFailure, "503"},
		{[]string{srv.URL + "/moved"}, exitFailure, "302"}, // a redirect is no answer
		{[]string{"--timeout", "200ms", srv.URL + "/slow"}, exitFailure, "deadline"},
		{[]string{closed.URL + "/healthz"}, exitFailure, "refused"},
		{[]string{"127.0.0.1:8080/healthz"}, exitUsage, "want an http"},
		{[]string{"ftp://127.0.0.1/x"}, exitUsage, "want an http"},
		{[]string{"--timeout", "0s", srv.URL}, exitUsage, "--timeout"},
		{[]string{}, exitUsage, "arg"},
	} {
		var out, errb bytes.Buffer
		start := time.Now()
		code := run(context.Background(), append([]string{"probe"}, c.args...), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.err) {
			t.Errorf("probe %q: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), c.code, c.err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("probe %q took %s", c.args, took)
		}
		if out.Len() != 0 {
			t.Errorf("probe %q printed %q", c.args, out.String())
		}
	}
}
