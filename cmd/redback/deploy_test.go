package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/redback-dev/redback/agent/config"
)

// The deployment files of configs/ run redback commands that exist, with
// flags it takes, and say what their comments promise.
func TestDeploymentFiles(t *testing.T) {
	t.Run("systemd", testUnits)
	t.Run("docker", testDockerfile)
	t.Run("kubernetes", testKubernetes)
}

// unit is a systemd unit file: each section's keys, each with its values
// in order (a key may repeat).
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, section := unit{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: %q is no key=value in a section", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: %d values %q, want one", section, key, len(v), v)
	}
	return v[0]
}

func testUnits(t *testing.T) {
	units, err := filepath.Glob("../../configs/*.service")
	if err != nil || len(units) < 2 {
		t.Fatalf("units: %v %v", units, err)
	}
	commands := map[string]bool{}
	for _, path := range units {
		t.Run(filepath.Base(path), func(t *testing.T) {
			u := readUnit(t, path)
			// A configuration error (exit 2) stops the unit instead of a
			// restart every RestartSec.
			if u.one(t, "Service", "Restart") != "no" {
				codes := strings.Fields(strings.Join(u["Service"]["RestartPreventExitStatus"], " "))
				if !slices.Contains(codes, "2") || exitUsage != 2 {
					t.Errorf("RestartPreventExitStatus %q does not hold the usage error's %d", codes, exitUsage)
				}
			}
			// The credentials systemd hands over, by name.
			creds := map[string]string{}
			for _, c := range u["Service"]["LoadCredential"] {
				name, src, ok := strings.Cut(c, ":")
				if !ok || !filepath.IsAbs(src) {
					t.Errorf("LoadCredential=%s: want NAME:/absolute/path", c)
				}
				creds[name] = src
			}
			argv := strings.Fields(u.one(t, "Service", "ExecStart"))
			if argv[0] != "/usr/local/bin/redback" {
				t.Fatalf("ExecStart runs %s", argv[0])
			}
			args := argv[1:]
			i := slices.Index(args, "--config")
			if i < 0 || i+1 >= len(args) {
				t.Fatalf("ExecStart %q names no --config", args)
			}
			cfg := args[i+1]
			if u.one(t, "Service", "DynamicUser") == "yes" {
				// A dynamic user reads no file of root's: the config must
				// be a credential's copy.
				name, ok := strings.CutPrefix(cfg, "${CREDENTIALS_DIRECTORY}/")
				if !ok || creds[name] == "" {
					t.Errorf("--config %s: with DynamicUser=yes, want ${CREDENTIALS_DIRECTORY}/NAME of a LoadCredential=NAME:... (have %v)", cfg, creds)
				}
				if u["Service"]["ConfigurationDirectory"] != nil {
					t.Errorf("ConfigurationDirectory= is root's: the dynamic user cannot read it")
				}
			}
			if creds["agent.yaml"] != "/etc/redback/agent.yaml" {
				t.Errorf("agent.yaml credential %q, want /etc/redback/agent.yaml (the install lines)", creds["agent.yaml"])
			}
			args[i+1] = filepath.Join(t.TempDir(), "agent.yaml")
			commands[checkCommand(t, args)] = true
		})
	}
	for _, c := range []string{"schedule", "serve"} {
		if !commands[c] {
			t.Errorf("no unit runs redback %s (have %v)", c, commands)
		}
	}
}

// checkCommand checks that args is a redback command line, its flags
// known, and returns the command's name.
func checkCommand(t *testing.T, args []string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(slices.Clone(args), "--help"), &out, &errb); code != exitOK {
		t.Fatalf("redback %q: exit %d: %s", args, code, errb.String())
	}
	var name string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") && !strings.Contains(a, "/") {
			name = a
			break
		}
	}
	// --help of an unknown command prints the root's help instead.
	if name == "" || !strings.Contains(out.String(), "\n  redback "+name) {
		t.Fatalf("redback %q is no redback command:\n%s", args, out.String())
	}
	if name == "schedule" {
		rest := args[slices.Index(args, "schedule")+1:]
		cfg := config.Default()
		if err := applyScheduleArgs(&cfg, rest); err != nil {
			t.Fatalf("redback %q: %v", args, err)
		}
	}
	return name
}

var dockerInstr = regexp.MustCompile(`(?m)^([A-Z]+)\s+((?:.*\\\n)*.*)$`)

func testDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../configs/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	final := string(data[bytes.LastIndex(data, []byte("\nFROM ")):])
	in := map[string][]string{}
	for _, m := range dockerInstr.FindAllStringSubmatch(final, -1) {
		in[m[1]] = append(in[m[1]], strings.ReplaceAll(m[2], "\\\n", " "))
	}
	last := func(k string) string {
		if len(in[k]) == 0 {
			t.Fatalf("the final stage has no %s", k)
		}
		return in[k][len(in[k])-1]
	}
	user := strings.Fields(last("USER"))[0]
	// The volume's folder belongs to the image's user.
	vol := last("VOLUME")
	owned := false
	for _, c := range in["COPY"] {
		if strings.Contains(c, "--chown="+user) && strings.Contains(vol, strings.Fields(c)[len(strings.Fields(c))-1]) {
			owned = true
		}
	}
	if !owned {
		t.Errorf("VOLUME %s: no COPY --chown=%s makes it the user's: %q", vol, user, in["COPY"])
	}
	// serve listens on every address, on the exposed port.
	var listen string
	for _, e := range in["ENV"] {
		if v, ok := strings.CutPrefix(e, "REDBACK_LISTEN="); ok {
			listen = v
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host != "0.0.0.0" || !slices.Contains(strings.Fields(last("EXPOSE")), port) {
		t.Errorf("REDBACK_LISTEN=%q, EXPOSE %s: want 0.0.0.0 on the exposed port", listen, last("EXPOSE"))
	}
	// The health check runs redback probe on that port.
	hc := last("HEALTHCHECK")
	_, js, ok := strings.Cut(hc, "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(js), &argv) != nil || len(argv) < 3 {
		t.Fatalf("HEALTHCHECK %q: want CMD [\"/usr/local/bin/redback\", \"probe\", ..., URL]", hc)
	}
	if argv[0] != "/usr/local/bin/redback" {
		t.Errorf("HEALTHCHECK runs %s", argv[0])
	}
	checkProbe(t, argv[1:], port)
	var cmd []string
	if err := json.Unmarshal([]byte(last("CMD")), &cmd); err != nil {
		t.Fatalf("CMD: %v", err)
	}
	checkCommand(t, cmd)
}

// checkProbe checks a `redback probe ... URL` command line: a real probe
// of /healthz on the loopback port.
func checkProbe(t *testing.T, args []string, port string) {
	t.Helper()
	if checkCommand(t, args) != "probe" {
		t.Fatalf("%q is no probe", args)
	}
	u, err := url.Parse(args[len(args)-1])
	if err != nil || u.Hostname() != "127.0.0.1" || u.Port() != port || u.Path != "/healthz" {
		t.Errorf("probe of %q: want http://127.0.0.1:%s/healthz (/readyz fails while Redis is down)", args[len(args)-1], port)
	}
}

func testKubernetes(t *testing.T) {
	files, _ := filepath.Glob("../../configs/kubernetes*.yaml")
	if len(files) < 2 {
		t.Fatalf("kubernetes files: %v", files)
	}
	kinds := map[string]bool{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			kind, _ := doc["kind"].(string)
			kinds[kind] = true
			var pod map[string]any
			switch kind {
			case "Deployment":
				pod = dig(doc, "spec", "template", "spec")
			case "CronJob":
				pod = dig(doc, "spec", "jobTemplate", "spec", "template", "spec")
			default:
				continue
			}
			var containers []any
			for _, k := range []string{"initContainers", "containers"} {
				cs, _ := pod[k].([]any)
				containers = append(containers, cs...)
			}
			for _, c := range containers {
				c := c.(map[string]any)
				image, _ := c["image"].(string)
				if i := strings.LastIndex(image, ":"); i < 0 || strings.Contains(image[i:], "/") || strings.HasSuffix(image, ":latest") {
					t.Errorf("%s %s: image %q: want an explicit tag, not :latest", path, kind, image)
				}
				checkCommand(t, strs(c["args"]))
				if kind == "Deployment" {
					for _, p := range []string{"livenessProbe", "readinessProbe"} {
						argv := strs(dig(c, p, "exec")["command"])
						if len(argv) < 3 || argv[0] != "/usr/local/bin/redback" {
							t.Fatalf("%s: %s %q: want an exec of redback probe", path, p, argv)
						}
						checkProbe(t, argv[1:], "8080")
					}
				}
			}
		}
		f.Close()
	}
	for _, k := range []string{"Deployment", "CronJob", "NetworkPolicy"} {
		if !kinds[k] {
			t.Errorf("no %s in %v", k, files)
		}
	}
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
