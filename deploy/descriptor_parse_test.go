package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func intp(v int) *int { return &v }

func boolp(v bool) *bool { return &v }

func TestParseDescriptorOriginalFixture(t *testing.T) {
	data, err := os.ReadFile("marathon/testdata/marathon/original-flock/flock-demo-package-json-with-flock-descriptor.json")
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	got, err := ParseDescriptor("package.json", data)
	if err != nil {
		t.Fatalf("ParseDescriptor: %v", err)
	}
	want := Descriptor{Name: "flock-demo", Instances: 2, CPUs: 0.1, Mem: 32, Ports: 1, File: "package.json",
		Checks: []Check{{Path: "/", IntervalSeconds: 15, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("descriptor (-want +got):\n%s", diff)
	}
}

func TestParseDescriptorValid(t *testing.T) {
	tcp := defaultCheck()
	tests := []struct {
		name string
		file string
		data string
		want Descriptor
	}{
		{"package.json without flock gets defaults", "package.json", `{"name":"Web"}`,
			Descriptor{Name: "web", Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, Checks: []Check{tcp}, File: "package.json"}},
		{"no name at all", "package.json", `{}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, Checks: []Check{tcp}, File: "package.json"}},
		{"checks inside flock", "package.json", `{"name":"a","flock":{"instances":0,"checks":[{"path":"/health?x=1","timeoutSeconds":2,"gracePeriodSeconds":0}]}}`,
			Descriptor{Name: "a", Instances: 0, CPUs: 0.1, Mem: 128, Ports: 1, File: "package.json",
				Checks: []Check{{Path: "/health?x=1", IntervalSeconds: 10, TimeoutSeconds: 2, GracePeriodSeconds: 0, MaxConsecutiveFailures: 3}}}},
		{"every extension", "package.json", `{"name":"api","flock":{"cpus":2.5,"mem":512,"ports":3,"cmd":"node x.js",
			"env":{"NODE_ENV":"production","_X1":""},"idle":"1h30m","minInstances":0,"maxInstances":5,
			"domains":["api.example.com","example.org"],"image":"registry.example.com:5000/team/app:1.2",
			"branch":"release/v1"}}`,
			Descriptor{Name: "api", Instances: 1, CPUs: 2.5, Mem: 512, Ports: 3, Cmd: "node x.js",
				Env: map[string]string{"NODE_ENV": "production", "_X1": ""}, Idle: "1h30m", MinInstances: intp(0), MaxInstances: intp(5),
				Domains: []string{"api.example.com", "example.org"}, Image: "registry.example.com:5000/team/app:1.2",
				Branch: "release/v1", Checks: []Check{tcp}, File: "package.json"}},
		{"idle never", "package.json", `{"flock":{"idle":"never"}}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, Idle: "never", Checks: []Check{tcp}, File: "package.json"}},
		{"empty checks means the default", "package.json", `{"flock":{},"checks":[]}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, Checks: []Check{tcp}, File: "package.json"}},
		{"short interval shrinks the default timeout", "package.json", `{"flock":{"ports":2},"checks":[{"intervalSeconds":2,"portIndex":1}]}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 2, File: "package.json",
				Checks: []Check{{PortIndex: 1, IntervalSeconds: 2, TimeoutSeconds: 2, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}}}},
		{"marathon protocol keys", "package.json", `{"flock":{"checks":[{"protocol":"HTTP"},{"protocol":"TCP"}]}}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, File: "package.json",
				Checks: []Check{{Path: "/", IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}, tcp}}},
		{"flock.json keys at the root", "flock.json", `{"name":"py","instances":3,"checks":[{"path":"/"}]}`,
			Descriptor{Name: "py", Instances: 3, CPUs: 0.1, Mem: 128, Ports: 1, File: "flock.json",
				Checks: []Check{{Path: "/", IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}}}},
		{"https redirect off", "flock.json", `{"https":{"redirect":false}}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, HTTPS: &HTTPSOptions{Redirect: boolp(false)}, Checks: []Check{tcp}, File: "flock.json"}},
		{"image by digest", "flock.json", `{"image":"redis@sha256:` + strings.Repeat("a", 64) + `"}`,
			Descriptor{Instances: 1, CPUs: 0.1, Mem: 128, Ports: 1, Image: "redis@sha256:" + strings.Repeat("a", 64), Checks: []Check{tcp}, File: "flock.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDescriptor(tt.file, []byte(tt.data))
			if err != nil {
				t.Fatalf("ParseDescriptor: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("descriptor (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDescriptorErrors(t *testing.T) {
	pj := func(flock string) string { return `{"name":"app","flock":` + flock + `}` }
	tests := []struct {
		name, file, data, want string
	}{
		{"invalid json", "package.json", "{\n  \"name\": \"a\",\n  \"flock\": {,}\n}",
			`package.json: is not valid JSON: line 3, column 13 (offset 30): invalid character ',' looking for beginning of object key string`},
		{"truncated json", "package.json", `{"name":`, `package.json: is not valid JSON: line 1, column 8 (offset 8): unexpected end of JSON input`},
		{"not an object", "package.json", `[1]`, `package.json: must hold a JSON object`},
		{"null", "flock.json", `null`, `flock.json: must hold a JSON object`},
		{"too large", "package.json", `{"x":"` + strings.Repeat("a", maxDescriptorBytes) + `"}`, `package.json: is larger than 1 MiB`},
		{"name not a string", "package.json", `{"name":5}`, `package.json: name must be a string`},
		{"scoped name", "package.json", `{"name":"@org/x"}`, `package.json: name "@org/x" is a scoped npm name: Flock does not guess an app name from it; use a plain name that is a DNS label (lower-case letters, digits and '-', at most 63 characters)`},
		{"bad name", "package.json", `{"name":"my_app"}`, `package.json: name "my_app" must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
		{"empty name", "flock.json", `{"name":""}`, `flock.json: name "" must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`},
		{"long name", "package.json", `{"name":"` + strings.Repeat("a", 64) + `"}`, "package.json: name \"" + strings.Repeat("a", 64) + "\" must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"},
		{"flock not an object", "package.json", pj(`[]`), `package.json: flock must be an object`},
		{"unknown key", "package.json", pj(`{"instance":2}`), `package.json: flock.instance is not a known key (known: instances, cpus, mem, ports, cmd, env, idle, minInstances, maxInstances, domains, checks, image, branch, stableSeconds, https, constraints, network, portMappings, forcePullImage)`},
		{"unknown key in flock.json", "flock.json", `{"flock":{}}`, `flock.json: flock is not a known key (known: instances, cpus, mem, ports, cmd, env, idle, minInstances, maxInstances, domains, checks, image, branch, stableSeconds, https, constraints, network, portMappings, forcePullImage)`},
		{"instances string", "package.json", pj(`{"instances":"2"}`), `package.json: flock.instances must be an integer between 0 and 100`},
		{"instances negative", "package.json", pj(`{"instances":-1}`), `package.json: flock.instances must be an integer between 0 and 100`},
		{"instances absurd", "package.json", pj(`{"instances":1000000000000000000000}`), `package.json: flock.instances must be an integer between 0 and 100`},
		{"instances fraction", "package.json", pj(`{"instances":1.5}`), `package.json: flock.instances must be an integer between 0 and 100`},
		{"instances null", "package.json", pj(`{"instances":null}`), `package.json: flock.instances must be an integer between 0 and 100`},
		{"cpus zero", "package.json", pj(`{"cpus":0}`), `package.json: flock.cpus must be a number greater than 0 and at most 64`},
		{"cpus absurd", "package.json", pj(`{"cpus":65}`), `package.json: flock.cpus must be a number greater than 0 and at most 64`},
		{"cpus string", "package.json", pj(`{"cpus":"1"}`), `package.json: flock.cpus must be a number greater than 0 and at most 64`},
		{"mem zero", "package.json", pj(`{"mem":0}`), `package.json: flock.mem must be an integer between 1 and 65536`},
		{"mem absurd", "package.json", pj(`{"mem":65537}`), `package.json: flock.mem must be an integer between 1 and 65536`},
		{"ports zero", "package.json", pj(`{"ports":0}`), `package.json: flock.ports must be an integer between 1 and 10`},
		{"ports many", "package.json", pj(`{"ports":11}`), `package.json: flock.ports must be an integer between 1 and 10`},
		{"cmd not string", "package.json", pj(`{"cmd":["node"]}`), `package.json: flock.cmd must be a string`},
		{"cmd empty", "package.json", pj(`{"cmd":" "}`), `package.json: flock.cmd must be a non-empty command of at most 4096 characters`},
		{"env not object", "package.json", pj(`{"env":"A=1"}`), `package.json: flock.env must be an object`},
		{"env bad name", "package.json", pj(`{"env":{"1A":"x"}}`), `package.json: flock.env.1A is not a valid variable name (letters, digits and '_', not starting with a digit)`},
		{"env reserved", "package.json", pj(`{"env":{"PORT":"80"}}`), `package.json: flock.env.PORT is set by Flock for every instance and cannot be overridden`},
		{"env number value", "package.json", pj(`{"env":{"A":1}}`), `package.json: flock.env.A must be a string`},
		{"idle number", "package.json", pj(`{"idle":900}`), `package.json: flock.idle must be "never" or a duration of at least 1s such as "15m" or "1h30m"`},
		{"idle bad", "package.json", pj(`{"idle":"15 minutes"}`), `package.json: flock.idle must be "never" or a duration of at least 1s such as "15m" or "1h30m"`},
		{"idle short", "package.json", pj(`{"idle":"500ms"}`), `package.json: flock.idle must be "never" or a duration of at least 1s such as "15m" or "1h30m"`},
		{"min over max", "package.json", pj(`{"minInstances":3,"maxInstances":2}`), `package.json: flock.minInstances must not be greater than flock.maxInstances`},
		{"max absurd", "package.json", pj(`{"maxInstances":101}`), `package.json: flock.maxInstances must be an integer between 0 and 100`},
		{"min negative", "flock.json", `{"minInstances":-1}`, `flock.json: minInstances must be an integer between 0 and 100`},
		{"domains not array", "package.json", pj(`{"domains":"a.com"}`), `package.json: flock.domains must be an array of host names`},
		{"domain port", "package.json", pj(`{"domains":["a.com:80"]}`), `package.json: flock.domains[0] "a.com:80" must not include a port`},
		{"domain wildcard", "package.json", pj(`{"domains":["ok.com","*.a.com"]}`), `package.json: flock.domains[1] "*.a.com" must not be a wildcard`},
		{"domain upper", "package.json", pj(`{"domains":["A.com"]}`), `package.json: flock.domains[0] "A.com" must be lower case`},
		{"domain bad", "package.json", pj(`{"domains":["a..com"]}`), `package.json: flock.domains[0] "a..com" must be a host name: dot-separated DNS labels, at most 253 characters`},
		{"domain ipv4", "package.json", pj(`{"domains":["127.0.0.1"]}`), `package.json: flock.domains[0] "127.0.0.1" must be a host name, not an IP address (an address reaches every app and Flock)`},
		{"domain ipv6", "flock.json", `{"domains":["::1"]}`, `flock.json: domains[0] "::1" must be a host name, not an IP address (an address reaches every app and Flock)`},
		{"domain numeric", "package.json", pj(`{"domains":["ok.com","127.1"]}`), `package.json: flock.domains[1] "127.1" must be a host name, not an IP address (an address reaches every app and Flock)`},
		{"domain localhost", "package.json", pj(`{"domains":["localhost"]}`), `package.json: flock.domains[0] "localhost" must not be localhost (it is this machine, not one app)`},
		{"domain twice", "package.json", pj(`{"domains":["a.com","a.com"]}`), `package.json: flock.domains[1] "a.com" is listed twice`},
		{"image bad", "package.json", pj(`{"image":"Redis; rm -rf /"}`), `package.json: flock.image must be a Docker image reference such as "redis:7" or "registry.example.com/team/app:1.2"`},
		{"https not an object", "package.json", pj(`{"https":false}`), `package.json: flock.https must be an object`},
		{"https redirect not a bool", "package.json", pj(`{"https":{"redirect":"no"}}`), `package.json: flock.https.redirect must be true or false`},
		{"https unknown key", "package.json", pj(`{"https":{"redirct":false}}`), `package.json: flock.https.redirct is not a known key (known: redirect)`},
		{"branch bad", "package.json", pj(`{"branch":"feature..x"}`), `package.json: flock.branch must be a valid git branch name (no spaces, "..", "~^:?*[\", leading '-' or '/', trailing ".lock")`},
		{"branch option", "package.json", pj(`{"branch":"-f"}`), `package.json: flock.branch must be a valid git branch name (no spaces, "..", "~^:?*[\", leading '-' or '/', trailing ".lock")`},
		{"checks not array", "package.json", pj(`{"checks":{}}`), `package.json: flock.checks must be an array of checks`},
		{"checks both places", "package.json", `{"flock":{"checks":[]},"checks":[]}`, `package.json: checks must not be given both beside and inside flock`},
		{"check not object", "package.json", `{"flock":{},"checks":[1]}`, `package.json: checks[0] must be an object`},
		{"check unknown key", "package.json", pj(`{"checks":[{"path":"/","interval":3}]}`), `package.json: flock.checks[0].interval is not a known key (known: path, protocol, portIndex, intervalSeconds, timeoutSeconds, gracePeriodSeconds, maxConsecutiveFailures)`},
		{"check path relative", "package.json", pj(`{"checks":[{"path":"health"}]}`), `package.json: flock.checks[0].path must start with "/" and hold only URL characters (no spaces, quotes, '#', '\' or control characters), at most 1024`},
		{"check path space", "package.json", pj(`{"checks":[{"path":"/a b"}]}`), `package.json: flock.checks[0].path must start with "/" and hold only URL characters (no spaces, quotes, '#', '\' or control characters), at most 1024`},
		{"check path newline", "package.json", pj(`{"checks":[{"path":"/a\nserver x 1.2.3.4:80"}]}`), `package.json: flock.checks[0].path must start with "/" and hold only URL characters (no spaces, quotes, '#', '\' or control characters), at most 1024`},
		{"check path comment", "package.json", pj(`{"checks":[{"path":"/#x"}]}`), `package.json: flock.checks[0].path must start with "/" and hold only URL characters (no spaces, quotes, '#', '\' or control characters), at most 1024`},
		{"check interval zero", "package.json", pj(`{"checks":[{"intervalSeconds":0}]}`), `package.json: flock.checks[0].intervalSeconds must be an integer between 1 and 3600`},
		{"check interval absurd", "package.json", `{"flock":{},"checks":[{"intervalSeconds":3601}]}`, `package.json: checks[0].intervalSeconds must be an integer between 1 and 3600`},
		{"check timeout over interval", "package.json", pj(`{"checks":[{"intervalSeconds":3,"timeoutSeconds":4}]}`), `package.json: flock.checks[0].timeoutSeconds must not be greater than intervalSeconds (3)`},
		{"check grace negative", "package.json", pj(`{"checks":[{"gracePeriodSeconds":-1}]}`), `package.json: flock.checks[0].gracePeriodSeconds must be an integer between 0 and 3600`},
		{"check failures zero", "package.json", pj(`{"checks":[{"maxConsecutiveFailures":0}]}`), `package.json: flock.checks[0].maxConsecutiveFailures must be an integer between 1 and 100`},
		{"check port index", "package.json", pj(`{"ports":2,"checks":[{"portIndex":2}]}`), `package.json: flock.checks[0].portIndex must be an integer between 0 and 1`},
		{"check protocol", "package.json", pj(`{"checks":[{"protocol":"COMMAND"}]}`), `package.json: flock.checks[0].protocol must be "HTTP" or "TCP"`},
		{"tcp check with path", "package.json", pj(`{"checks":[{"path":"/","protocol":"TCP"}]}`), `package.json: flock.checks[0].path must not be set on a TCP check`},
		{"too many checks", "package.json", pj(`{"checks":[{},{},{},{},{},{},{},{},{},{},{}]}`), `package.json: flock.checks must hold at most 10 checks`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDescriptor(tt.file, []byte(tt.data))
			var de *DescriptorError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v (%T), want a *DescriptorError", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			if de.File != tt.file {
				t.Errorf("File = %q, want %q", de.File, tt.file)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestReadDescriptor(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantName string
		wantFile string
		wantInst int
		wantErr  string
	}{
		{"package.json with flock", map[string]string{"package.json": `{"name":"web","flock":{"instances":2}}`, "flock.json": `{"name":"other"}`}, "web", "package.json", 2, ""},
		{"flock.json when package.json has no flock", map[string]string{"package.json": `{"name":"web"}`, "flock.json": `{"instances":3}`}, "web", "flock.json", 3, ""},
		{"flock.json names the app", map[string]string{"package.json": `{"name":"web"}`, "flock.json": `{"name":"api"}`}, "api", "flock.json", 1, ""},
		{"flock.json alone", map[string]string{"flock.json": `{"name":"py","instances":0}`}, "py", "flock.json", 0, ""},
		{"package.json alone", map[string]string{"package.json": `{"name":"Web"}`}, "web", "package.json", 1, ""},
		{"nothing", map[string]string{"app.py": "print(1)"}, "", "", 1, ""},
		{"bad flock.json", map[string]string{"flock.json": `{"mem":-1}`}, "", "", 0, "flock.json: mem must be an integer between 1 and 65536"},
		{"bad package.json", map[string]string{"package.json": `{"flock":{"ports":"x"}}`}, "", "", 0, "package.json: flock.ports must be an integer between 1 and 10"},
		{"too large", map[string]string{"flock.json": `{"x":"` + strings.Repeat("a", maxDescriptorBytes) + `"}`}, "", "", 0, "flock.json: is larger than 1 MiB"},
		{"not a file", map[string]string{"package.json/x": "y"}, "", "", 0, "package.json: must be a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := ReadDescriptor(dir)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrInvalid) {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadDescriptor: %v", err)
			}
			if d.Name != tt.wantName || d.File != tt.wantFile || d.Instances != tt.wantInst {
				t.Errorf("got name %q file %q instances %d, want %q %q %d", d.Name, d.File, d.Instances, tt.wantName, tt.wantFile, tt.wantInst)
			}
			if len(d.Checks) == 0 {
				t.Errorf("no checks: the default TCP check is missing")
			}
		})
	}
}

func TestReadDescriptorExamples(t *testing.T) {
	for _, ex := range []string{"hello", "express", "python"} {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join("..", "docs", "examples", ex)
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("example %s: %v", ex, err)
			}
			d, err := ReadDescriptor(dir)
			if err != nil {
				t.Fatalf("ReadDescriptor: %v", err)
			}
			if !ValidName(d.Name) {
				t.Errorf("example %s has no valid name: %q", ex, d.Name)
			}
		})
	}
}

// FuzzParseDescriptor checks that no input panics the parser and that
// every accepted descriptor is within the rules.
func FuzzParseDescriptor(f *testing.F) {
	f.Add("package.json", []byte(`{"name":"a","flock":{"instances":2},"checks":[{"path":"/"}]}`))
	f.Add("flock.json", []byte(`{"name":"b","env":{"A":"1"},"domains":["x.io"],"idle":"1m"}`))
	f.Add("flock.json", []byte(`{"https":{"redirect":false}}`))
	f.Fuzz(func(t *testing.T, file string, data []byte) {
		d, err := ParseDescriptor(file, data)
		if err != nil {
			var de *DescriptorError
			if !errors.As(err, &de) || !errors.Is(err, ErrInvalid) || de.File != file {
				t.Fatalf("error %v (%T) is not a *DescriptorError for %q", err, err, file)
			}
			return
		}
		if d.Name != "" && !ValidName(d.Name) {
			t.Fatalf("accepted invalid name %q", d.Name)
		}
		if d.Instances < 0 || d.Instances > 100 || d.CPUs <= 0 || d.CPUs > 64 || d.Mem < 1 || d.Mem > 65536 || d.Ports < 1 || d.Ports > 10 {
			t.Fatalf("accepted out-of-range values: %+v", d)
		}
		if d.MinInstances != nil && d.MaxInstances != nil && *d.MinInstances > *d.MaxInstances {
			t.Fatalf("accepted min > max: %+v", d)
		}
		if len(d.Checks) == 0 {
			t.Fatalf("no checks in %+v", d)
		}
		for _, c := range d.Checks {
			if c.IntervalSeconds < 1 || c.IntervalSeconds > 3600 || c.TimeoutSeconds < 1 || c.TimeoutSeconds > c.IntervalSeconds ||
				c.GracePeriodSeconds < 0 || c.MaxConsecutiveFailures < 1 || c.PortIndex < 0 || c.PortIndex >= d.Ports {
				t.Fatalf("accepted out-of-range check: %+v", c)
			}
			if c.Path != "" && (c.Path[0] != '/' || strings.ContainsAny(c.Path, " \t\r\n#\"'\\")) {
				t.Fatalf("accepted unsafe check path %q", c.Path)
			}
		}
		for _, h := range d.Domains {
			if !validHost(h) {
				t.Fatalf("accepted bad domain %q", h)
			}
		}
		for _, c := range d.Constraints {
			if _, ok := constraintOps[c[1]]; !ok || len(c) < 2 || len(c) > 3 || !constraintFieldRE.MatchString(c[0]) {
				t.Fatalf("accepted bad constraint %q", c)
			}
		}
		if (d.Network == NetworkBridge) != (len(d.PortMappings) > 0) || (d.Network == NetworkBridge && (d.Image == "" || d.Ports != len(d.PortMappings))) ||
			(d.ForcePullImage && d.Image == "") || (d.Network != "" && d.Network != NetworkHost && d.Network != NetworkBridge) {
			t.Fatalf("accepted inconsistent placement: %+v", d)
		}
		if d.Idle != "" && d.IdleTimeout(0) < 0 {
			t.Fatalf("accepted negative idle %q", d.Idle)
		}
	})
}
