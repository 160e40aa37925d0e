package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// getPath sends a GET of path for host through HAProxy.
func (f *flock) getPath(host, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 70 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunEnvironment: apps run with NODE_ENV=production (Express answers
// an error without a stack trace or server paths) and PYTHONUNBUFFERED=1
// (a Python app's print() reaches flock logs at once), unless the app's
// env says otherwise.
func TestRunEnvironment(t *testing.T) {
	testkit.RequireTools(t, "python3")
	f := newFlock(t)
	f.start()

	dir := copyExample(t, "express")
	server := filepath.Join(dir, "server.js")
	src, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	boom := "app.get('/boom', () => { throw new Error('boom: secret detail'); });\napp.get('/env', (req, res) => res.send(process.env.NODE_ENV));\n"
	src = []byte(strings.Replace(string(src), "const server = app.listen", boom+"const server = app.listen", 1))
	if err := os.WriteFile(server, src, 0o644); err != nil {
		t.Fatal(err)
	}
	f.mustCLI("deploy", dir)
	if code, body := f.getPath("hello-express.localhost", "/env"); code != 200 || body != "production" {
		t.Errorf("NODE_ENV = %d %q, want production", code, body)
	}
	code, body := f.getPath("hello-express.localhost", "/boom")
	if code != 500 || strings.Contains(body, "secret detail") || strings.Contains(body, "server.js") || strings.Contains(body, "    at ") {
		t.Errorf("GET /boom = %d, body shows the error's details:\n%s", code, body)
	}

	py := filepath.Join(t.TempDir(), "printer")
	writeFiles(t, py, map[string]string{
		"Procfile": "web: python3 app.py\n",
		"app.py": `import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("handled", self.path)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
print("printer starting")
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`,
	})
	f.mustCLI("deploy", py)
	if code, _ := f.getPath("printer.localhost", "/hello-log"); code != 200 {
		t.Fatalf("printer: %d", code)
	}
	testkit.WaitFor(t, 10*time.Second, "print() in flock logs", func() bool {
		out, _ := f.cli("logs", "printer")
		return strings.Contains(out, "printer starting") && strings.Contains(out, "handled /hello-log")
	})
}

// writeFiles writes a tree of files under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
