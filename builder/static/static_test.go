package static

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSite serves a site made of files (path → content; "@target" makes
// a symbolic link) from a folder "site" inside a fresh folder, whose other
// entries (outside: path → content) lie outside the site. It returns the
// server's address.
func startSite(t *testing.T, files, outside map[string]string) string {
	t.Helper()
	parent := t.TempDir()
	write := func(dir string, tree map[string]string) {
		for name, body := range tree {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if target, ok := strings.CutPrefix(body, "@"); ok {
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(parent, outside)
	dir := filepath.Join(parent, "site")
	write(dir, files)
	site, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- site.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		site.Close()
	})
	return ln.Addr().String()
}

// rawGet sends path exactly as given, as `curl --path-as-is` does (Go's
// client would not send "/../x" unchanged), and returns the status, the
// headers and the body.
func rawGet(t *testing.T, addr, method, path string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: site.localhost\r\nConnection: close\r\n\r\n", method, path)
	req, _ := http.NewRequest(method, "http://"+addr, nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

var site = map[string]string{
	"index.html":          "<h1>home</h1>",
	"style.css":           "body{}",
	"app.js":              "console.log(1)",
	"logo.svg":            "<svg xmlns='http://www.w3.org/2000/svg'/>",
	"data.json":           `{"a":1}`,
	"sub/index.html":      "<h1>sub</h1>",
	"empty/note.txt":      "no index here",
	"Procfile":            "worker: x\n",
	"flock.json":          `{"env":{"SECRET":"s3cret"}}`,
	"package.json":        `{"name":"site"}`,
	"package-lock.json":   `{}`,
	"sub/package.json":    `{}`,
	".env":                "SECRET=s3cret",
	".flockignore":        "*.log",
	".git/config":         "[core]",
	".well-known/sec.txt": "Contact: a@b.c",
	"inside.html":         "@index.html",
	"escape.txt":          "@../secret.txt",
	"escape-abs.txt":      "@/etc/passwd",
	"up":                  "@..",
	"node_modules/x/a.js": "x",
}

func TestContentTypes(t *testing.T) {
	addr := startSite(t, site, nil)
	tests := []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", "<h1>home</h1>"},
		{"/index.html", "text/html; charset=utf-8", "<h1>home</h1>"},
		{"/sub/", "text/html; charset=utf-8", "<h1>sub</h1>"},
		{"/style.css", "text/css; charset=utf-8", "body{}"},
		{"/app.js", "text/javascript; charset=utf-8", "console.log(1)"},
		{"/logo.svg", "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'/>"},
		{"/data.json", "application/json", `{"a":1}`},
		{"/.well-known/sec.txt", "text/plain; charset=utf-8", "Contact: a@b.c"},
		{"/inside.html", "text/html; charset=utf-8", "<h1>home</h1>"}, // a link within the site
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get("http://" + addr + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != tt.body {
				t.Fatalf("GET %s = %d %q, want 200 %q", tt.path, resp.StatusCode, body, tt.body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
			}
			if got := resp.Header.Get("Cache-Control"); got != cacheControl {
				t.Errorf("Cache-Control = %q", got)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no X-Content-Type-Options: nosniff")
			}
		})
	}
}

// TestNotServed: build files, dotfiles, folders without index.html and
// anything outside the folder are 404, however the path is spelled.
func TestNotServed(t *testing.T) {
	addr := startSite(t, site, map[string]string{"secret.txt": "outside secret"})
	for _, p := range []string{
		"/Procfile", "/procfile", "/PROCFILE", "/flock.json", "/package.json", "/package-lock.json",
		"/sub/package.json", "/.env", "/.flockignore", "/.git/config", "/.git/", "/.git",
		"/node_modules/x/a.js", "/empty/", "/nope.html",
		"/../secret.txt", "/../etc/passwd", "/%2e%2e/secret.txt", "/%2e%2e/%2e%2e/etc/passwd",
		"/sub/..%2f..%2fsecret.txt", "/sub/%2e%2e/Procfile", "/./Procfile", "//etc/passwd",
		"/escape.txt", "/escape-abs.txt", "/up/secret.txt", "/up/site/index.html",
		"/%2eenv", "/style.css/", "/index.html%00.css",
	} {
		t.Run(p, func(t *testing.T) {
			code, _, body := rawGet(t, addr, "GET", p)
			if code != 404 {
				t.Errorf("GET %s = %d %q, want 404", p, code, body)
			}
			for _, leak := range []string{"s3cret", "outside secret", "root:", "worker:", "[core]"} {
				if strings.Contains(body, leak) {
					t.Errorf("GET %s leaks %q: %q", p, leak, body)
				}
			}
		})
	}
}

func TestFoldersAndMethods(t *testing.T) {
	addr := startSite(t, map[string]string{"index.html": "home", "sub/index.html": "sub", "404.html": "<p>lost</p>"}, nil)

	code, h, _ := rawGet(t, addr, "GET", "/sub?x=1")
	if code != http.StatusMovedPermanently || h.Get("Location") != "sub/?x=1" {
		t.Errorf("GET /sub = %d Location %q, want 301 to sub/?x=1", code, h.Get("Location"))
	}
	code, h, body := rawGet(t, addr, "GET", "/missing")
	if code != 404 || body != "<p>lost</p>" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET /missing = %d %q %q, want the site's 404.html", code, h.Get("Content-Type"), body)
	}
	code, h, body = rawGet(t, addr, "HEAD", "/")
	if code != 200 || body != "" || h.Get("Content-Length") != "4" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD / = %d %v %q", code, h, body)
	}
	code, h, _ = rawGet(t, addr, "POST", "/")
	if code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d Allow %q, want 405", code, h.Get("Allow"))
	}

	// A revalidation with the ETag is a 304.
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with If-None-Match %q = %d, want 304", etag, resp.StatusCode)
	}
}

// TestShutdown: Serve returns once its context ends, after a request in
// flight is answered.
func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644)
	s, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	if code, _, _ := rawGet(t, ln.Addr().String(), "GET", "/"); code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of cancel")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still listening after shutdown")
	}
}

func TestNewMissingFolder(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Fatal("New of a missing folder succeeded")
	}
}
