package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/redback-dev/redback/api/console"
)

// TestConsoleRoutes: the router serves the console's page and assets
// without a token, under its policy, and nothing else under their paths.
func TestConsoleRoutes(t *testing.T) {
	h := newHarness(t)
	res := h.do("GET", "/", "", nil)
	if res.code != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") ||
		res.header.Get("Content-Security-Policy") != console.Policy || !strings.Contains(string(res.body), `src="/console/app.js"`) {
		t.Fatalf("GET /: %d %v", res.code, res.header)
	}
	if res := h.do("GET", "/console/app.js", "", nil); res.code != http.StatusOK || !strings.Contains(string(res.body), "/api/auth/login") {
		t.Fatalf("GET /console/app.js: %d", res.code)
	}
	if res := h.do("HEAD", "/console/app.css", "", nil); res.code != http.StatusOK || len(res.body) != 0 {
		t.Fatalf("HEAD /console/app.css: %d %d bytes", res.code, len(res.body))
	}
	for path, code := range map[string]int{"/console/nope.js": 404, "/console/..%2fapi.go": 404, "/index.html": 404} {
		if res := h.do("GET", path, "", nil); res.code != code {
			t.Errorf("GET %s: %d, want %d", path, res.code, code)
		}
	}
	if res := h.do("POST", "/", "{}", nil); res.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", res.code)
	}
	// The API's answers are untouched by the console.
	if res := h.do("GET", "/api/backup/list", "", nil); res.code != http.StatusUnauthorized || res.header.Get("Content-Security-Policy") != "" {
		t.Errorf("GET /api/backup/list without a token: %d", res.code)
	}
}
