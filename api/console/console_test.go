package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestServesPageAndAssets: the page and every asset it names are served
// with their types, the strict policy and an ETag that revalidates.
func TestServesPageAndAssets(t *testing.T) {
	h := Handler()
	res := get(t, h, "/")
	page, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("/: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	refs := regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(refs) != 2 {
		t.Fatalf("the page names %d assets: %v", len(refs), refs)
	}
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	for _, m := range refs {
		res := get(t, h, m[1])
		ext := m[1][strings.LastIndex(m[1], "."):]
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != want[ext] {
			t.Errorf("%s: %d %s", m[1], res.StatusCode, res.Header.Get("Content-Type"))
		}
		for k, v := range map[string]string{"Content-Security-Policy": Policy, "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"} {
			if res.Header.Get(k) != v {
				t.Errorf("%s: %s is %q", m[1], k, res.Header.Get(k))
			}
		}
		etag := res.Header.Get("ETag")
		if again := get(t, h, m[1], "If-None-Match", etag); etag == "" || again.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation with ETag %q: %d", m[1], etag, again.StatusCode)
		}
	}
	for _, p := range []string{"/console/", "/console/index.html", "/console/../console.go", "/console/nope.js", "/x"} {
		if res := get(t, h, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
}

// TestPolicyIsStrict: no inline code, no eval, no other origin.
func TestPolicyIsStrict(t *testing.T) {
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"} {
		if strings.Contains(Policy, bad) {
			t.Errorf("the policy allows %s", bad)
		}
	}
	for _, need := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(Policy, need) {
			t.Errorf("the policy lacks %s", need)
		}
	}
}

// TestAssetsFetchNothingElsewhere: no asset names another origin (the
// SVG namespace is a name, not a fetch), and the page has no inline
// script or style the policy would block.
func TestAssetsFetchNothingElsewhere(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	entries, err := assets.ReadDir("assets")
	if err != nil || len(entries) < 3 {
		t.Fatalf("assets: %v %v", entries, err)
	}
	for _, e := range entries {
		b, _ := assets.ReadFile("assets/" + e.Name())
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names %s", e.Name(), m)
			}
		}
	}
	page, _ := assets.ReadFile("assets/index.html")
	for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", " onsubmit="} {
		if strings.Contains(string(page), bad) {
			t.Errorf("the page holds %q, which the policy blocks", bad)
		}
	}
}
