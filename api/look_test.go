package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent/config"
)

// TestLookRoutes: keys (paged), show and diff with a read-only token; a
// selective restore as an admin.
func TestLookRoutes(t *testing.T) {
	h := newHarness(t)
	h.fill(300)
	c := h.redis.Client(t, 0)
	ctx := context.Background()
	c.HSet(ctx, "user:42:p", "name", "Ann")
	c.Set(ctx, "user:42:\xff", "bin", 0)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	ro := auth(readToken)

	// Pages of 100 cover the archive; the last cursor is "0".
	seen, cursor, pages := 0, "0", 0
	for {
		res := h.do("GET", "/api/backup/keys/latest?limit=100&cursor="+cursor, "", ro)
		var kr struct {
			Keys     []map[string]any
			Cursor   string
			Filename string
			Success  bool
		}
		if res.code != http.StatusOK || json.Unmarshal(res.body, &kr) != nil || !kr.Success || kr.Filename != name {
			t.Fatalf("keys page: %d %s", res.code, res.body)
		}
		seen += len(kr.Keys)
		pages++
		if kr.Cursor == "0" {
			break
		}
		cursor = kr.Cursor
		if pages > 10 {
			t.Fatal("too many pages")
		}
	}
	if seen != 302 || pages != 4 {
		t.Fatalf("%d keys in %d pages", seen, pages)
	}
	res := h.do("GET", "/api/backup/keys/"+name+"?match="+url.QueryEscape(`user:42:\xff`)+"&type=string", "", ro)
	if res.code != http.StatusOK || !strings.Contains(string(res.body), `"escaped": "user:42:\\xff"`) || !strings.Contains(string(res.body), `"count": 1`) {
		t.Fatalf("keys match: %d %s", res.code, res.body)
	}
	res = h.do("GET", "/api/backup/show/latest?key=user:42:p", "", ro)
	if res.code != http.StatusOK || !strings.Contains(string(res.body), `"Ann"`) || res.json()["type"] != "hash" {
		t.Fatalf("show: %d %s", res.code, res.body)
	}
	if res = h.do("GET", "/api/backup/show/latest?key=nope", "", ro); res.code != http.StatusNotFound {
		t.Fatalf("show of a missing key: %d %s", res.code, res.body)
	}
	for _, bad := range []string{"/api/backup/keys/..%2F..%2Fetc%2Fpasswd", "/api/backup/keys/x.json", "/api/backup/show/latest",
		"/api/backup/keys/latest?limit=0", "/api/backup/keys/latest?db=-1", "/api/backup/diff?a=latest", "/api/backup/diff?a=latest&b=latest&live=true",
		"/api/backup/diff?a=%2Fetc%2Fpasswd&live=true"} {
		if res := h.do("GET", bad, "", ro); res.code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, res.code, res.body)
		}
	}

	// The bad deploy: diff against the live server, then restore.
	c.HSet(ctx, "user:42:p", "name", "CORRUPT")
	c.Set(ctx, "other", "since", 0)
	res = h.do("GET", "/api/backup/diff?a=latest&live=true&match=user:42:*", "", ro)
	if res.code != http.StatusOK || res.json()["changed"] != float64(1) || res.json()["equal"] != false {
		t.Fatalf("diff: %d %s", res.code, res.body)
	}
	if res = h.do("POST", "/api/backup/restore", `{"filename":"latest","match":["user:42:*"]}`, ro); res.code != http.StatusForbidden {
		t.Fatalf("restore with a read token: %d", res.code)
	}
	res = h.do("POST", "/api/backup/restore", `{"filename":"latest","match":["user:42:*"],"overwrite":true}`, with(auth(tok), freshCodeHeader, h.code(secretAdmin, 1)))
	if res.code != http.StatusOK || res.json()["restored_count"] != float64(2) || res.json()["filtered_count"] != float64(300) {
		t.Fatalf("selective restore: %d %s", res.code, res.body)
	}
	if v := c.HGet(ctx, "user:42:p", "name").Val(); v != "Ann" {
		t.Fatalf("user:42:p %q", v)
	}
	if v := c.Get(ctx, "other").Val(); v != "since" {
		t.Fatal("a key outside the selection was touched")
	}
}

// TestUpload: a good archive is stored with its SHA-256 and listed; a
// truncated one, a hostile name, a taken name, a read token and an
// oversized body are refused, and nothing is listed for them.
func TestUpload(t *testing.T) {
	h := newHarness(t, func(_ *config.Config, o *Options) { o.MaxUploadBytes = 1 << 20 })
	h.fill(200)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	data, err := os.ReadFile(filepath.Join(h.storage, name))
	if err != nil {
		t.Fatal(err)
	}
	other := "redis_backup_20200101_000000.json.gz"
	listed := func() string { return string(h.do("GET", "/api/backup/list", "", auth(tok)).body) }
	// The folder's own time moves (a temporary file came and went): the
	// files are what must not change.
	files := func() string {
		lines := strings.Split(h.storageState(), "\n")
		return strings.Join(lines[1:], "\n")
	}
	before := files()
	for _, tc := range []struct {
		target string
		body   string
		hdr    map[string]string
		code   int
	}{
		{"/api/backup/upload?filename=" + other, string(data[:len(data)/2]), auth(tok), http.StatusBadRequest},
		{"/api/backup/upload?filename=" + other, string(data[:len(data)-3]), auth(tok), http.StatusBadRequest},
		{"/api/backup/upload?filename=" + other, "not an archive", auth(tok), http.StatusBadRequest},
		{"/api/backup/upload?filename=..%2Fx.json.gz", string(data), auth(tok), http.StatusBadRequest},
		{"/api/backup/upload?filename=redis_backup_20200101_000000.json", string(data), auth(tok), http.StatusBadRequest}, // gzip under a plain name
		{"/api/backup/upload?filename=" + name, string(data), auth(tok), http.StatusConflict},
		{"/api/backup/upload?filename=" + other, string(data), auth(readToken), http.StatusForbidden},
		{"/api/backup/upload?filename=" + other, strings.Repeat("x", 2<<20), auth(tok), http.StatusRequestEntityTooLarge},
	} {
		res := h.do("POST", tc.target, tc.body, tc.hdr)
		if res.code != tc.code || res.json()["success"] != false {
			t.Fatalf("%s (%d bytes): %d %s; want %d", tc.target, len(tc.body), res.code, res.body, tc.code)
		}
		if strings.Contains(listed(), other) {
			t.Fatalf("%s: listed after a refusal", tc.target)
		}
	}
	if after := files(); after != before {
		t.Fatalf("the refusals left something in storage:\n%s\nbefore:\n%s", after, before)
	}
	res := h.do("POST", "/api/backup/upload?filename="+other, string(data), auth(tok))
	if res.code != http.StatusCreated || res.json()["keys_count"] != float64(200) || res.json()["sha256"] == "" || res.json()["integrity"] != "archive" {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if !strings.Contains(listed(), other) {
		t.Fatal("the upload is not listed")
	}
	// It restores like any archive.
	if res := h.do("POST", "/api/backup/restore", `{"filename":"`+other+`","dry_run":true}`, auth(tok)); res.code != http.StatusOK || res.json()["skipped_count"] != float64(200) {
		t.Fatalf("restore of the upload: %d %s", res.code, res.body)
	}
}
