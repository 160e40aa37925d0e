package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestStaticSite deploys a folder of files (index.html, style.css, a
// descriptor, a Procfile with no process and a .env) with `flock deploy`:
// Flock serves it through HAProxy with its content types, without a
// runtime of its own, and does not show its other files.
func TestStaticSite(t *testing.T) {
	// Apps may run under a uid of their own: the binary that serves
	// static sites must be theirs to execute, as it is in /usr/local/bin.
	if err := os.Chmod(filepath.Dir(flockBin), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFlock(t)
	f.start()

	dir := filepath.Join(t.TempDir(), "site")
	writeFiles(t, dir, map[string]string{
		"index.html":      "<!doctype html><title>Site</title><link rel=stylesheet href=style.css><h1>Hello static</h1>",
		"style.css":       "h1 { color: teal }",
		"docs/index.html": "<h1>docs</h1>",
		"flock.json":      `{"env": {"SECRET": "s3cret-in-env"}}`,
		"Procfile":        "# no processes: Flock serves this folder\n",
		".env":            "SECRET=s3cret-in-dotenv",
	})
	out := f.mustCLI("deploy", dir)
	if !strings.Contains(out, "Static site detected: served by Flock") {
		t.Errorf("flock deploy does not say the site is static:\n%s", out)
	}

	for _, tt := range []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", "<h1>Hello static</h1>"},
		{"/style.css", "text/css; charset=utf-8", "h1 { color: teal }"},
		{"/docs/", "text/html; charset=utf-8", "<h1>docs</h1>"},
	} {
		code, h, body := f.getHeaders("site.localhost", tt.path)
		if code != 200 || !strings.Contains(body, tt.body) || h.Get("Content-Type") != tt.ctype {
			t.Errorf("GET %s = %d %q %q, want 200 %q with %q", tt.path, code, h.Get("Content-Type"), body, tt.ctype, tt.body)
		}
	}
	for _, p := range []string{"/Procfile", "/flock.json", "/.env", "/../flock.json", "/%2e%2e/flock.json", "/docs/../.env"} {
		code, _, body := f.getHeaders("site.localhost", p)
		if code != 404 || strings.Contains(body, "s3cret") || strings.Contains(body, "no processes") {
			t.Errorf("GET %s = %d %q, want 404", p, code, body)
		}
	}

	// Asleep, the site wakes on a request like any app.
	f.mustCLI("sleep", "site")
	if n := len(f.apps()["site"].Instances); n != 0 {
		t.Fatalf("site has %d instances asleep", n)
	}
	if code, _, body := f.getHeaders("site.localhost", "/"); code != 200 || !strings.Contains(body, "Hello static") {
		t.Errorf("GET / of the sleeping site = %d %q, want the page", code, body)
	}
}

// TestStaticServer: the builder is given this binary's `flock static`
// with the embedded scheduler only (Marathon's agents have no flock).
func TestStaticServer(t *testing.T) {
	got := staticServer("local")
	if len(got) != 2 || !filepath.IsAbs(got[0]) || got[1] != "static" {
		t.Errorf("staticServer(local) = %q, want [<absolute path> static]", got)
	}
	if fi, err := os.Stat(got[0]); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("staticServer(local)[0] is not an executable: %v", err)
	}
	if got := staticServer("marathon"); got != nil {
		t.Errorf("staticServer(marathon) = %q, want none", got)
	}
}

// getHeaders sends a GET of path for host through HAProxy and returns the
// status, headers and body.
func (f *flock) getHeaders(host, path string) (int, http.Header, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+f.http+"/", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.URL.Opaque = path // sent as written: "/../x" stays "/../x"
	req.Host = host
	resp, err := (&http.Client{Timeout: 70 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// BenchmarkStaticColdStart: from the start of `flock static` (as a static
// site's instance runs it) to its first 200 for /, and the server's RSS
// once it answered; medians of N.
func BenchmarkStaticColdStart(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	var rss []float64
	for i := 0; i < b.N; i++ {
		port := testkit.FreePort(b)
		cmd := exec.Command(flockBin, "static", "--dir", dir)
		cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port))
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		testkit.WaitFor(b, 10*time.Second, "flock static to answer", func() bool {
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		ds = append(ds, time.Since(start))
		rss = append(rss, rssKiB(b, cmd.Process.Pid)/1024)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("flock static did not exit cleanly on SIGTERM: %v", err)
		}
	}
	sort.Float64s(rss)
	b.ReportMetric(medianMS(ds), "cold-start-ms")
	b.ReportMetric(rss[len(rss)/2], "rss-MiB")
}
