package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// rawRequest sends a request line exactly as given (no client-side
// cleaning or escaping) and returns the status and body.
func rawRequest(t *testing.T, addr, method, target string, headers map[string]string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, target)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// hostileNames are archive names, as they appear in a request path.
var hostileNames = []string{
	"..%2f..%2fetc%2fpasswd",
	"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
	"%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
	"..%2F.redback%2Fredis_backup_20240101_000000.json.gz.json",
	"../../etc/passwd",
	"..%252f..%252fetc%252fpasswd",
	`..\..\etc\passwd`,
	"..%5c..%5cetc%5cpasswd",
	"%2Fetc%2Fpasswd",
	"/etc/passwd",
	"redis_backup_20240101_000000.json.gz%00",
	"redis_backup_20240101_000000.json.gz%00.txt",
	"redis_backup_20240101_000000.json.gz%2f..",
	"redis_backup_20240101_000000.json.gz/",
	"redis_backup_20240101_000000.json.gz%0d%0aX-Injected:%201",
	"%20redis_backup_20240101_000000.json.gz",
	"redis_backup_%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%94%EF%BC%90%EF%BC%91%EF%BC%90%EF%BC%91_000000.json.gz", // fullwidth digits
	"redis_backup_%D9%A2%D9%A0%D9%A2%D9%A4%D9%A0%D9%A1%D9%A0%D9%A1_000000.json.gz",                         // Arabic-Indic digits
	"redis_backup_20241301_000000.json.gz",                                                                 // no such month
	"redis_backup_20240101_000000.json.zip",
	".redback",
	"..",
	".",
	"%2e",
	"%ff%fe%fd",
	strings.Repeat("a", 300),
	"redis_backup_20240101_000000.json.gz" + strings.Repeat("%2e", 3000),
}

func TestHostileNamesInPaths(t *testing.T) {
	h := newHarness(t)
	h.fill(10)
	tok := h.login(secretAdmin)
	h.backup(tok)
	// A real archive at the name the NUL variants start with, so that a
	// name cut at the NUL would find something.
	h.writeFile("redis_backup_20240101_000000.json.gz", []byte("not really gzip"))
	srv := httptest.NewServer(h.api.Handler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	storage, digest := h.storageState(), h.redisState()
	fresh := h.code(secretAdmin, 1)

	for _, name := range hostileNames {
		for _, method := range []string{"GET", "DELETE"} {
			route := "/api/backup/download/"
			if method == "DELETE" {
				route = "/api/backup/delete/"
			}
			hdr := map[string]string{"Authorization": "Bearer " + tok, "X-TOTP-Code": fresh}
			code, body := rawRequest(t, addr, method, route+name, hdr)
			if code != http.StatusBadRequest {
				t.Errorf("%s %s%s: %d %s", method, route, truncate(name, 80), code, truncate(body, 200))
				continue
			}
			var eb errorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Success || eb.Error == "" {
				t.Errorf("%s %s: body %q", method, truncate(name, 80), body)
			}
			if strings.Contains(body, h.storage) || strings.Contains(body, "/etc/") && !strings.Contains(body, `\"`) {
				t.Errorf("%s %s: body reveals a path: %s", method, truncate(name, 80), body)
			}
		}
	}
	// A raw NUL or a malformed escape never reaches a handler: net/http
	// refuses the request line itself, with 400 too.
	for _, target := range []string{"/api/backup/download/redis_backup_20240101_000000.json.gz\x00",
		"/api/backup/download/%zz", "/api/backup/delete/%zz"} {
		if code, _ := rawRequest(t, addr, "GET", target, map[string]string{"Authorization": "Bearer " + tok}); code != http.StatusBadRequest {
			t.Errorf("raw %q: %d", target, code)
		}
	}
	if got := h.storageState(); got != storage {
		t.Fatalf("hostile paths changed the storage:\nbefore %s\nafter  %s", storage, got)
	}
	if h.redisState() != digest {
		t.Fatal("hostile paths changed Redis")
	}
	// The fresh code was never used: names are refused before codes are.
	res := h.do("DELETE", "/api/backup/delete/redis_backup_20240101_000000.json.gz", "", with(auth(tok), "X-TOTP-Code", fresh))
	if res.code != http.StatusOK {
		t.Fatalf("delete with the unused fresh code: %d %s", res.code, res.body)
	}
}

func TestHostileBodies(t *testing.T) {
	h := newHarness(t)
	h.fill(10)
	tok := h.login(secretAdmin)
	name := h.backup(tok)
	storage, digest := h.storageState(), h.redisState()
	fresh := with(auth(tok), "X-TOTP-Code", h.code(secretAdmin, 1))
	long := strings.Repeat("x", 10000)
	cases := []struct {
		route, body string
		want        int
	}{
		{"restore", `{"filename": "../../etc/passwd"}`, 400},
		{"restore", `{"filename": "..\\..\\etc\\passwd"}`, 400},
		{"restore", `{"filename": "/etc/passwd"}`, 400},
		{"restore", `{"filename": "` + name + `\u0000"}`, 400},
		{"restore", `{"filename": "` + name + `/.."}`, 400},
		{"restore", `{"filename": "..%2f` + name + `"}`, 400},
		{"restore", `{"filename": " ` + name + `"}`, 400},
		{"restore", `{"filename": "redis_backup_２０２４０１０１_000000.json.gz"}`, 400},
		{"restore", `{"filename": "` + long + `"}`, 400},
		{"restore", `{"filename": ""}`, 400},
		{"restore", `{}`, 400},
		{"restore", ``, 400},
		{"restore", `{"filename": "` + name + `", "filename": "../x"}`, 400},
		{"restore", `{"filename": "../x", "filename": "` + name + `"}`, 400},
		{"restore", `{"FILENAME": "` + name + `"}`, 400},
		{"restore", `{"filename": "` + name + `", "path": "/etc"}`, 400},
		{"restore", `{"filename": "` + name + `"} {"overwrite": true}`, 400},
		{"restore", `{"filename": "` + name + `"}x`, 400},
		{"restore", `{"filename": ["` + name + `"]}`, 400},
		{"restore", `{"filename": "` + name + `", "overwrite": "true"}`, 400},
		{"restore", `{"filename": "` + name + `", "ttl": "forever"}`, 400},
		{"restore", `["` + name + `"]`, 400},
		{"restore", `"` + name + `"`, 400},
		{"restore", `{"filename": "` + name + `"`, 400},
		{"restore", `{"filename": "redis_backup_20200101_000000.json.gz"}`, 404},
		{"restore", `{"filename": "` + name + `", "dry_run": true, "pad": "` + strings.Repeat("x", 70<<10) + `"}`, 413},
		{"create", `{"compress": "yes"}`, 400},
		{"create", `{"compress": true, "compress": false}`, 400},
		{"create", `{"filename": "x"}`, 400},
		{"create", `[]`, 400},
		{"create", `{"pad": "` + strings.Repeat("x", 70<<10) + `"}`, 413},
	}
	for _, c := range cases {
		res := h.do("POST", "/api/backup/"+c.route, c.body, fresh)
		if res.code != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.route, truncate(c.body, 100), res.code, c.want, res.body)
			continue
		}
		if m := res.json(); m["success"] != false || m["error"] == "" {
			t.Errorf("%s %s: body %s", c.route, truncate(c.body, 100), res.body)
		}
		if strings.Contains(string(res.body), h.storage) {
			t.Errorf("%s: the body reveals the storage path: %s", c.route, res.body)
		}
	}
	if h.storageState() != storage || h.redisState() != digest {
		t.Fatal("a refused request changed something")
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	h := newHarness(t)
	tok := h.login(secretAdmin)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/backup/nothing", 404},
		{"GET", "/api/backup/create", 405},
		{"PUT", "/api/backup/list", 405},
		{"GET", "/api/jobs/../backup/list", 404},
		{"GET", "/api/jobs/xyz", 404},
		{"GET", "/api/jobs/0123456789abcdef0123456789abcdef", 404},
		{"GET", "/api//backup/list", 404},
	} {
		res := h.do(c.method, c.path, "", auth(tok))
		if res.code != c.want || res.json()["success"] != false {
			t.Errorf("%s %s: %d (want %d) %s", c.method, c.path, res.code, c.want, res.body)
		}
	}
}

func TestPublicMessageHidesPaths(t *testing.T) {
	for in, want := range map[string]string{
		"open /var/lib/redback/x: permission denied":     "open <path>: permission denied",
		`read "/tmp/a b": eof`:                           `read "<path> b": eof`,
		"redis INFO: dial tcp 127.0.0.1:6379: refused":   "redis INFO: dial tcp 127.0.0.1:6379: refused",
		"redis://host:6379/0 is down":                    "redis://host:6379/0 is down",
		"dial unix /tmp/rt1/redis.sock: connect: denied": "dial unix <path>: connect: denied",
	} {
		if got := publicMessage(fmt.Errorf("%s", in)); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}
