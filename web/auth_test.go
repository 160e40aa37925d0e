package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/builder"
)

// liveServer serves a test server on a real loopback listener, with the
// real artifact store and signer behind /artifacts/ holding hello's v1.
func liveServer(t *testing.T, edit func(*Config)) (*httptest.Server, *builder.Signer) {
	t.Helper()
	b, err := builder.New(builder.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	slug, err := b.Path("hello", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(slug), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slug, []byte("slug of hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	sg, err := builder.NewSigner(testToken, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newTestServer(t, func(c *Config) {
		c.Artifacts, c.Signed = b.Handler(), sg.Verify
		if edit != nil {
			edit(c)
		}
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, sg
}

// get sends a GET with a real client; token and host are optional.
func get(t *testing.T, client *http.Client, u, token, host string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		r.Host = host
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(r)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, resp.Header, string(body)
}

// fromAddr is a client whose connections come from ip (any of 127/8 works
// on Linux loopback), to play several machines.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestNothingTrustsLoopback(t *testing.T) {
	srv, _ := liveServer(t, nil)
	client := fromAddr("127.0.0.1")
	for _, path := range []string{
		"/api/v1/apps", "/api/v1/apps/hello", "/api/v1/apps/hello/logs", "/api/v1/apps/hello/releases",
		"/api/v1/deploys/hello-1", "/api/v1/events", "/metrics", "/ui/apps/hello/row", "/artifacts/hello/v1.tar.gz",
	} {
		t.Run(path, func(t *testing.T) {
			code, h, body := get(t, client, srv.URL+path, "", "")
			if code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) || h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s from loopback without token = %d %s, want 401 with a JSON error", path, code, body)
			}
			if path == "/api/v1/events" || strings.HasPrefix(path, "/ui/") {
				return // a stream; a dashboard fragment (session only)
			}
			if code, _, body := get(t, client, srv.URL+path, testToken, ""); code != http.StatusOK {
				t.Errorf("GET %s with the token = %d %s, want 200", path, code, body)
			}
		})
	}
	t.Run("dashboard sends to login", func(t *testing.T) {
		if code, h, _ := get(t, client, srv.URL+"/", "", ""); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
			t.Errorf("GET / without session = %d to %q, want 303 to /login", code, h.Get("Location"))
		}
	})
	t.Run("login page, static assets and healthz need nothing", func(t *testing.T) {
		for _, p := range []string{"/login", "/healthz", "/static/app.css"} {
			if code, _, _ := get(t, client, srv.URL+p, "", ""); code != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", p, code)
			}
		}
	})
}

func TestSignedArtifactURLs(t *testing.T) {
	srv, sg := liveServer(t, nil)
	client := fromAddr("127.0.0.1")
	fresh := sg.SignURL(srv.URL + "/artifacts/hello/v1.tar.gz")
	expired := sg.SignUntil(srv.URL+"/artifacts/hello/v1.tar.gz", time.Now().Add(-time.Minute))
	other, _ := builder.NewSigner("not the token", time.Hour)
	tests := []struct {
		name, url, token string
		want             int
	}{
		{"fresh signed URL", fresh, "", 200},
		{"expired signed URL", expired, "", 403},
		{"signature of another release", strings.Replace(fresh, "v1.tar.gz", "v2.tar.gz", 1), "", 403},
		{"signed with another key", other.SignURL(srv.URL + "/artifacts/hello/v1.tar.gz"), "", 403},
		{"plain URL, no token", srv.URL + "/artifacts/hello/v1.tar.gz", "", 401},
		{"plain URL, wrong token", srv.URL + "/artifacts/hello/v1.tar.gz", "nope", 401},
		{"plain URL, token", srv.URL + "/artifacts/hello/v1.tar.gz", testToken, 200},
		{"plain URL, token, unknown release", srv.URL + "/artifacts/hello/v9.tar.gz", testToken, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := get(t, client, tt.url, tt.token, "")
			if code != tt.want {
				t.Fatalf("GET %s = %d %s, want %d", tt.url, code, body, tt.want)
			}
			if code == 200 && body != "slug of hello" {
				t.Errorf("body = %q, want the slug", body)
			}
			if code != 200 && !strings.Contains(body, `"error"`) {
				t.Errorf("body = %q, want a JSON error", body)
			}
		})
	}
	t.Run("a session is not enough", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		sc, _ := login(t, s.Handler())
		r, _ := http.NewRequest(http.MethodGet, srv.URL+"/artifacts/hello/v1.tar.gz", nil)
		r.AddCookie(sc)
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("slug with a dashboard session = %d, want 401", resp.StatusCode)
		}
	})
}

func TestHostCheck(t *testing.T) {
	srv, _ := liveServer(t, func(c *Config) { c.Hosts = []string{"127.0.0.1:8080", "https://flock.example.com/"} })
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	client := fromAddr("127.0.0.1")
	tests := []struct {
		name, host, path string
		want             int
	}{
		{"rebinding name", "rebind.attacker.example:" + port, "/api/v1/apps", 421},
		{"rebinding name, login page", "rebind.attacker.example:" + port, "/login", 421},
		{"rebinding name, dashboard", "rebind.attacker.example", "/", 421},
		{"a subdomain of localhost", "app.localhost:" + port, "/api/v1/apps", 421},
		{"public URL's host", "flock.example.com", "/api/v1/apps", 200},
		{"public URL's host, any case, trailing dot", "FLOCK.example.com.:443", "/api/v1/apps", 200},
		{"localhost", "localhost:" + port, "/api/v1/apps", 200},
		{"IPv6 loopback", "[::1]:" + port, "/api/v1/apps", 200},
		{"an IP literal", "192.0.2.7:" + port, "/api/v1/apps", 200},
		{"healthz answers any host", "rebind.attacker.example", "/healthz", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := get(t, client, srv.URL+tt.path, testToken, tt.host)
			if code != tt.want {
				t.Fatalf("GET %s with Host %s = %d %s, want %d", tt.path, tt.host, code, body, tt.want)
			}
			if code == 421 && !strings.Contains(body, `"error":"misdirected request`) {
				t.Errorf("body = %s, want a JSON error", body)
			}
		})
	}
}

func TestWrongTokenLimit(t *testing.T) {
	srv, _ := liveServer(t, nil)
	guesser, owner := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	for i := 0; i < loginLimit; i++ {
		if code, _, _ := get(t, guesser, srv.URL+"/api/v1/apps", "guess"+strconv.Itoa(i), ""); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d = %d, want 401", i+1, code)
		}
	}
	code, h, body := get(t, guesser, srv.URL+"/api/v1/apps", "one more guess", "")
	if code != http.StatusTooManyRequests || !strings.Contains(body, `"error"`) {
		t.Fatalf("wrong token %d = %d %s, want 429 with a JSON error", loginLimit+1, code, body)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > int(loginWindow/time.Second) {
		t.Errorf("Retry-After = %q, want 1 to 60 seconds", h.Get("Retry-After"))
	}
	for _, path := range []string{"/api/v1/apps", "/artifacts/hello/v1.tar.gz"} {
		if code, _, _ := get(t, guesser, srv.URL+path, testToken, ""); code != http.StatusTooManyRequests {
			t.Errorf("right token from the blocked address to %s = %d, want 429 (no guess is checked)", path, code)
		}
	}
	if code, _, body := get(t, owner, srv.URL+"/api/v1/apps", testToken, ""); code != http.StatusOK {
		t.Errorf("right token from another address = %d %s, want 200", code, body)
	}

	t.Run("login form", func(t *testing.T) {
		client := fromAddr("127.0.0.3")
		jar := loginForm(t, client, srv.URL)
		for i := 0; i <= loginLimit; i++ {
			code, h := postLogin(t, client, srv.URL, jar, "guess"+strconv.Itoa(i))
			want := http.StatusUnauthorized
			if i == loginLimit {
				want = http.StatusTooManyRequests
				if h.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
			}
			if code != want {
				t.Fatalf("wrong login %d = %d, want %d", i+1, code, want)
			}
		}
		if code, _, _ := get(t, client, srv.URL+"/api/v1/apps", testToken, ""); code != http.StatusTooManyRequests {
			t.Errorf("bearer after the login form's limit = %d, want 429: one count per address", code)
		}
	})
}

// loginForm fetches the login page and returns its form token (also set
// as a cookie, double-submit).
func loginForm(t *testing.T, client *http.Client, base string) string {
	t.Helper()
	resp, err := client.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == loginCookie {
			return c.Value
		}
	}
	t.Fatal("login page set no form cookie")
	return ""
}

func postLogin(t *testing.T, client *http.Client, base, csrf, token string) (int, http.Header) {
	t.Helper()
	form := url.Values{"csrf": {csrf}, "token": {token}, "next": {"/"}}
	r, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", formType)
	r.AddCookie(&http.Cookie{Name: loginCookie, Value: csrf})
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestFailuresBounded(t *testing.T) {
	f, now := newFailures(), time.Now()
	for i := 0; i < 3*maxTracked; i++ {
		f.add(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), now)
	}
	if n := f.tracked(); n > maxTracked {
		t.Errorf("a flood from %d addresses left %d tracked, want at most %d", 3*maxTracked, n, maxTracked)
	}

	t.Run("an IPv6 host counts by its /64", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		h := s.Handler()
		for i := 0; i < loginLimit; i++ {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
			r.Host, r.RemoteAddr = "flock.example.com", "[2001:db8:1:2::"+strconv.FormatInt(int64(i+1), 16)+"]:4000"
			r.Header.Set("Authorization", "Bearer wrong")
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
		r.Host, r.RemoteAddr = "flock.example.com", "[2001:db8:1:2:ffff::1]:4000"
		r.Header.Set("Authorization", "Bearer wrong")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusTooManyRequests {
			t.Errorf("another address of the same /64 = %d, want 429", w.Code)
		}
	})
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/apps/hello", "/apps/hello"},
		{"/apps/hello?tab=logs#x", "/apps/hello?tab=logs#x"},
		{"/", "/"},
		{"", "/"},
		{"//evil.com", "/"},
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/\r/evil.com", "/"},
		{"\t//evil.com", "/"},
		{"/\\evil.com", "/"},
		{"\\\\evil.com", "/"},
		{"/apps\\..\\..\\evil.com", "/"},
		{"https://evil.com", "/"},
		{"http:evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.com", "/"},
		{"/ /evil.com", "/"},
		{"/\x00/evil.com", "/"},
		{"/\x7f/evil.com", "/"},
		{"/\u3000/evil.com", "/"},
		{"/%2F%2Fevil.com", "/%2F%2Fevil.com"}, // a path on this site: "%2F" is not a separator to a browser
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoginRedirectStaysOnSite(t *testing.T) {
	srv, _ := liveServer(t, nil)
	for _, next := range []string{"/%09/evil.com", "//evil.com", "/%5Cevil.com", "https://evil.com/", "/%0d%0a/evil.com", "/%00/evil.com", "/apps/hello"} {
		t.Run(next, func(t *testing.T) {
			client := fromAddr("127.0.0.4")
			csrf := loginForm(t, client, srv.URL)
			// As a browser sends it: the query of /login?next=... is carried
			// into the form's hidden field, decoded.
			raw, _ := url.QueryUnescape(next)
			form := url.Values{"csrf": {csrf}, "token": {testToken}, "next": {raw}}
			r, _ := http.NewRequest(http.MethodPost, srv.URL+"/login?next="+next, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", formType)
			r.AddCookie(&http.Cookie{Name: loginCookie, Value: csrf})
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "/"
			if next == "/apps/hello" {
				want = next
			}
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
				t.Errorf("login with next=%s = %d to %q, want 303 to %q", next, resp.StatusCode, loc, want)
			}
			// Logged in already, GET /login?next=... redirects at once.
			sc := resp.Cookies()
			r, _ = http.NewRequest(http.MethodGet, srv.URL+"/login?next="+next, nil)
			for _, c := range sc {
				r.AddCookie(c)
			}
			resp, err = client.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); loc != want {
				t.Errorf("GET /login?next=%s with a session redirects to %q, want %q", next, loc, want)
			}
		})
	}
}

// BenchmarkWrongTokenFlood sends wrong tokens from ever new addresses, as
// a flood from a large network would: the count of tracked addresses and
// the heap they hold stay bounded.
func BenchmarkWrongTokenFlood(b *testing.B) {
	s, _ := newTestServer(b, nil)
	h := s.Handler()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
		r.Host, r.RemoteAddr = "flock.example.com", net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String()+":4000"
		r.Header.Set("Authorization", "Bearer wrong")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(s.failed.tracked()), "tracked")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
}
