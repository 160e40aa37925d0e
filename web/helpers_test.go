package web

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "s3cret-token"

// newTestServer builds a server over a fake with two apps, hello (2
// instances) and world (1).
func newTestServer(t testing.TB, edit func(*Config)) (*Server, *fakePlatform) {
	t.Helper()
	f := newFake()
	f.add("hello", 2)
	f.add("world", 1)
	cfg := Config{Token: testToken, Unpack: untar, TempDir: t.TempDir(), Hosts: []string{"flock.example.com"}}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, f)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, f
}

// req describes one request to the handler.
type req struct {
	method, path, body string
	token              string // bearer token
	cookies            []*http.Cookie
	header             map[string]string
	loopback           bool // from 127.0.0.1 with Host 127.0.0.1
}

func do(t testing.TB, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	hr.RemoteAddr = "192.0.2.10:4000"
	hr.Host = "flock.example.com"
	if r.loopback {
		hr.RemoteAddr, hr.Host = "127.0.0.1:4000", "127.0.0.1:8080"
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if strings.HasPrefix(r.body, "{") {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

// errorOf decodes a JSON error body, failing when it is not one.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %q", w.Body.String())
	}
	msg, ok := body["error"].(string)
	if !ok || msg == "" || len(body) != 1 {
		t.Fatalf("error body = %q, want {\"error\": \"...\"}", w.Body.String())
	}
	return msg
}

// login runs the login form and returns the session cookie and its CSRF token.
func login(t testing.TB, h http.Handler) (*http.Cookie, string) {
	t.Helper()
	w := do(t, h, req{path: "/login"})
	lc := cookie(w, loginCookie)
	if lc == nil {
		t.Fatalf("GET /login set no %s cookie", loginCookie)
	}
	w = do(t, h, req{method: "POST", path: "/login", body: "csrf=" + lc.Value + "&token=" + testToken + "&next=/",
		cookies: []*http.Cookie{lc}, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST /login = %d %s", w.Code, w.Body.String())
	}
	sc := cookie(w, sessionCookie)
	if sc == nil {
		t.Fatal("no session cookie after login")
	}
	w = do(t, h, req{path: "/", cookies: []*http.Cookie{sc}})
	m := csrfMetaRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("apps page has no csrf meta: %s", w.Body.String())
	}
	return sc, m[1]
}

func cookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// tarGz packs files (name → content) as a .tar.gz.
func tarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// untar is a small stand-in for builder.Unpack: regular files only, no
// path may leave dir.
func untar(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
}
