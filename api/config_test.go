package api

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redback-dev/redback/agent/config"
)

func TestOptionsFromConfig(t *testing.T) {
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good")
	os.WriteFile(goodFile, []byte(secretBob+"\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, nil, 0o600)
	short := "JBSWY3DPEHPK3PXP" // 10 bytes
	cases := []struct {
		name    string
		api     config.API
		wantErr string // "" for success
	}{
		{"no secret at all", config.API{}, "no TOTP secret"},
		{"malformed", config.API{TOTPSecret: "not base32 at all!"}, "not valid base32"},
		{"short", config.API{TOTPSecret: short}, "too short"},
		{"digits only", config.API{TOTPSecret: "12345678901234567890123456789012"}, "not valid base32"},
		{"good", config.API{TOTPSecret: secretAdmin}, ""},
		{"good, lower case with spaces", config.API{TOTPSecret: "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp"}, ""},
		{"file", config.API{TOTPSecretFile: goodFile}, ""},
		{"both", config.API{TOTPSecret: secretAdmin, TOTPSecretFile: goodFile}, "not both"},
		{"missing file", config.API{TOTPSecretFile: filepath.Join(dir, "nope")}, "cannot read"},
		{"empty file", config.API{TOTPSecretFile: emptyFile}, "empty"},
		{"admins only", config.API{Admins: []config.APIAdmin{{Name: "ops", TOTPSecret: secretBob}}}, ""},
		{"admin without secret", config.API{Admins: []config.APIAdmin{{Name: "ops"}}}, "no totp_secret"},
		{"admin short secret", config.API{Admins: []config.APIAdmin{{Name: "ops", TOTPSecret: short}}}, "too short"},
		{"admin bad name", config.API{Admins: []config.APIAdmin{{Name: "a b", TOTPSecret: secretBob}}}, "name"},
		{"admin twice", config.API{TOTPSecret: secretAdmin, Admins: []config.APIAdmin{{Name: "admin", TOTPSecret: secretBob}}}, "twice"},
		{"read token", config.API{TOTPSecret: secretAdmin, ReadTokens: []config.APIReadToken{{Name: "m", SHA256: sha256Hex("x")}}}, ""},
		{"read token not hashed", config.API{TOTPSecret: secretAdmin, ReadTokens: []config.APIReadToken{{Name: "m", SHA256: "x"}}}, "64 hex"},
		{"proxies", config.API{TOTPSecret: secretAdmin, TrustedProxies: []string{"10.0.0.0/8", "::1", "192.0.2.1"}}, ""},
		{"bad proxy", config.API{TOTPSecret: secretAdmin, TrustedProxies: []string{"10.0.0.0/33"}}, "trusted_proxies"},
	}
	for _, c := range cases {
		o, err := OptionsFromConfig(c.api)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		case c.wantErr == "" && len(o.Admins) == 0:
			t.Errorf("%s: no admin", c.name)
		}
		if err != nil {
			for _, s := range []string{secretAdmin, secretBob, short, "not base32 at all!"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("%s: the error repeats the secret: %v", c.name, err)
				}
			}
		}
	}
	// api.New refuses to start without an admin or with a bad secret, too.
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Fatal("New without anything")
	}
}

func TestClientIP(t *testing.T) {
	s := &Server{proxies: mustPrefixes(t, "10.0.0.0/8", "::1")}
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.5:1234", "", "192.0.2.5"},
		{"192.0.2.5:1234", "203.0.113.1", "192.0.2.5"}, // untrusted peer: its header is ignored
		{"10.1.2.3:1234", "203.0.113.1", "203.0.113.1"},
		{"10.1.2.3:1234", "198.51.100.1, 203.0.113.1, 10.9.9.9", "203.0.113.1"},
		{"10.1.2.3:1234", "", "10.1.2.3"},
		{"10.1.2.3:1234", "garbage", "10.1.2.3"},
		{"[::1]:1234", "203.0.113.7", "203.0.113.7"},
		{"[::ffff:192.0.2.5]:1", "", "192.0.2.5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r); got != c.want {
			t.Errorf("%s + %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
