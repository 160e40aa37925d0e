package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

const pyApp = `import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from python\n")
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

// TestDeployNamesAppAfterDirectory: `flock deploy` of an app with no
// package.json (a Python app with a Procfile) names it after its
// directory, as Dokku and Piku users expect, and says so; a directory
// whose name is no DNS label gets an error that says how to name the
// app. The build log has no empty "()" and names each release once.
func TestDeployNamesAppAfterDirectory(t *testing.T) {
	testkit.RequireTools(t, "python3")
	f := newFlock(t)
	f.start()
	write := func(dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"app.py": pyApp, "Procfile": "web: python3 app.py\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "pyweb")
	write(dir)
	out := f.mustCLI("deploy", dir)
	for _, want := range []string{"named after its directory, pyweb", "http://pyweb.localhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"()", "v1: v1:", "name is required"} {
		if strings.Contains(out, bad) {
			t.Errorf("deploy output has %q:\n%s", bad, out)
		}
	}
	if code, body, _ := f.get("pyweb.localhost"); code != 200 || !strings.Contains(body, "hello from python") {
		t.Fatalf("pyweb: %d %q", code, body)
	}

	odd := filepath.Join(t.TempDir(), "My_App")
	write(odd)
	out, err := f.cli("deploy", odd)
	if err == nil {
		t.Fatalf("deploy of %s succeeded:\n%s", odd, out)
	}
	for _, want := range []string{`"My_App" is not a DNS label`, "--app NAME"} {
		if !strings.Contains(out, want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
	if out := f.mustCLI("deploy", "--app", "my-app", odd); !strings.Contains(out, "http://my-app.localhost") {
		t.Errorf("deploy --app my-app:\n%s", out)
	}
}
