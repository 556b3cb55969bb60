package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"

	"github.com/redback-dev/redback/agent/config"
)

// DefaultAdmin is the name of the admin whose secret is api.totp_secret.
const DefaultAdmin = "admin"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// OptionsFromConfig turns agent.yaml's api section into Options: it reads
// the secret files and checks every secret (base32, at least 20 bytes),
// every read token hash and every trusted proxy. Error messages name the
// setting, never a secret. Log, Now and Identities are left for the
// caller.
func OptionsFromConfig(c config.API) (Options, error) {
	o := Options{
		TokenTTL:            c.TokenTTL,
		FreshAuthWindow:     c.FreshAuthWindow,
		ReadyMaxAge:         c.ReadyMaxAge,
		LoginMaxFailures:    c.LoginMaxFailures,
		LoginWindow:         c.LoginWindow,
		LoginClientDailyCap: c.LoginClientDailyCap,
		LoginDailyCap:       c.LoginDailyCap,
		StateFile:           c.StateFile,
		TokensFile:          c.TokensFile,
		MaxConns:            c.MaxConnections,
		HeaderTimeout:       c.HeaderTimeout,
		BodyTimeout:         c.BodyTimeout,
		MaxUploadBytes:      c.MaxUploadBytes,
	}
	if c.TokenTTL < 0 || c.FreshAuthWindow < 0 || c.ReadyMaxAge < 0 || c.LoginWindow < 0 || c.LoginMaxFailures < 0 || c.LoginDailyCap < 0 ||
		c.LoginClientDailyCap < 0 || c.MaxConnections < 0 || c.HeaderTimeout < 0 || c.BodyTimeout < 0 || c.MaxUploadBytes < 0 {
		return o, errors.New("api: token_ttl, fresh_auth_window, ready_max_age, login_*, max_connections and *_timeout must not be negative")
	}
	var errs []error
	main, err := secretFrom("api.totp_secret", c.TOTPSecret, c.TOTPSecretFile)
	if err != nil {
		errs = append(errs, err)
	} else if main != "" {
		o.Admins = append(o.Admins, Admin{Name: DefaultAdmin, Secret: main})
	}
	for i, a := range c.Admins {
		where := fmt.Sprintf("api.admins[%d]", i)
		sec, err := secretFrom(where+".totp_secret", a.TOTPSecret, a.TOTPSecretFile)
		if err == nil && sec == "" {
			err = fmt.Errorf("%s: no totp_secret or totp_secret_file", where)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.Admins = append(o.Admins, Admin{Name: a.Name, Secret: sec})
	}
	if len(o.Admins) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("api: no TOTP secret: run `redback totp init` and set REDBACK_TOTP_SECRET, api.totp_secret_file or api.totp_secret"))
	}
	if err := checkAdmins(o.Admins); err != nil {
		errs = append(errs, err)
	}
	for i, t := range c.ReadTokens {
		rt, err := parseReadToken(t.Name, t.SHA256)
		if err != nil {
			errs = append(errs, fmt.Errorf("api.read_tokens[%d]: %w", i, err))
			continue
		}
		o.ReadTokens = append(o.ReadTokens, rt)
	}
	for _, p := range c.TrustedProxies {
		pfx, err := parseProxy(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.TrustedProxies = append(o.TrustedProxies, pfx)
	}
	return o, errors.Join(errs...)
}

// secretFrom returns the checked, normalised secret given inline or in a
// file ("" when neither is set).
func secretFrom(where, inline, file string) (string, error) {
	if inline != "" && file != "" {
		return "", fmt.Errorf("%s: give the secret or a file, not both", where)
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: cannot read the file", where)
		}
		inline = strings.TrimSpace(string(data))
		if inline == "" {
			return "", fmt.Errorf("%s_file: the file is empty", where)
		}
	}
	if inline == "" {
		return "", nil
	}
	sec, err := ParseSecret(inline)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	return sec, nil
}

// CheckAdminName checks the name of an admin or of a read token: 1 to 64
// letters, digits, '.', '_', '@' or '-', starting with a letter or digit.
func CheckAdminName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q: want 1-64 letters, digits, '.', '_', '@' or '-'", truncate(name, 64))
	}
	return nil
}

// checkAdmins refuses unnamed, badly named, duplicate or secretless admins.
func checkAdmins(admins []Admin) error {
	seen := map[string]bool{}
	for _, a := range admins {
		if err := CheckAdminName(a.Name); err != nil {
			return fmt.Errorf("api: admin %w", err)
		}
		if seen[a.Name] {
			return fmt.Errorf("api: admin %q is configured twice", a.Name)
		}
		seen[a.Name] = true
		if _, err := ParseSecret(a.Secret); err != nil {
			return fmt.Errorf("api: admin %q: %w", a.Name, err)
		}
	}
	return nil
}

func parseReadToken(name, sum string) (ReadToken, error) {
	if err := CheckAdminName(name); err != nil {
		return ReadToken{}, err
	}
	b, err := hex.DecodeString(strings.TrimSpace(sum))
	if err != nil || len(b) != 32 {
		return ReadToken{}, fmt.Errorf("%s: sha256 must be 64 hex digits (printf %%s TOKEN | sha256sum)", name)
	}
	rt := ReadToken{Name: name}
	copy(rt.SHA256[:], b)
	return rt, nil
}

func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("api.trusted_proxies: %q is no IP or CIDR", truncate(s, 64))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("api.trusted_proxies: %q is no IP or CIDR", truncate(s, 64))
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
