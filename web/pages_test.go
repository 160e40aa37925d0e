package web

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

const formType = "application/x-www-form-urlencoded"

func TestLogin(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()

	w := do(t, h, req{path: "/apps/hello"})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fapps%2Fhello" {
		t.Fatalf("page without login = %d to %q, want 303 to the login page", w.Code, w.Header().Get("Location"))
	}
	w = do(t, h, req{path: "/login"})
	lc := cookie(w, loginCookie)
	if w.Code != 200 || lc == nil || !strings.Contains(w.Body.String(), `name="token"`) {
		t.Fatalf("login page = %d, cookie %v", w.Code, lc)
	}

	tests := []struct {
		name    string
		body    string
		cookies []*http.Cookie
		want    int
	}{
		{"no form token", "token=" + testToken, []*http.Cookie{lc}, 403},
		{"form token without its cookie", "csrf=" + lc.Value + "&token=" + testToken, nil, 403},
		{"wrong Flock token", "csrf=" + lc.Value + "&token=wrong", []*http.Cookie{lc}, 401},
		{"right token", "csrf=" + lc.Value + "&token=" + testToken + "&next=/apps/hello", []*http.Cookie{lc}, 303},
		{"right token, foreign next", "csrf=" + lc.Value + "&token=" + testToken + "&next=//evil.example", []*http.Cookie{lc}, 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, req{method: "POST", path: "/login", body: tt.body, cookies: tt.cookies, header: map[string]string{"Content-Type": formType}})
			if w.Code != tt.want {
				t.Fatalf("POST /login = %d, want %d", w.Code, tt.want)
			}
			sc := cookie(w, sessionCookie)
			if tt.want != 303 {
				if sc != nil {
					t.Error("a failed login set a session cookie")
				}
				return
			}
			if loc := w.Header().Get("Location"); loc != "/apps/hello" && loc != "/" {
				t.Errorf("redirect to %q, want a path on this site", loc)
			}
			if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || len(sc.Value) < 32 {
				t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, a long random value", sc)
			}
			if w := do(t, h, req{path: "/apps/hello", cookies: []*http.Cookie{sc}}); w.Code != 200 {
				t.Errorf("app page with the session = %d", w.Code)
			}
		})
	}

	t.Run("logout ends the session", func(t *testing.T) {
		sc, csrf := login(t, h)
		w := do(t, h, req{method: "POST", path: "/logout", body: "csrf=" + csrf, cookies: []*http.Cookie{sc}, header: map[string]string{"Content-Type": formType}})
		if w.Code != 303 {
			t.Fatalf("logout = %d", w.Code)
		}
		if w := do(t, h, req{path: "/", cookies: []*http.Cookie{sc}}); w.Code != 303 {
			t.Errorf("page after logout = %d, want 303 to login", w.Code)
		}
	})
}

func TestAppsPage(t *testing.T) {
	s, f := newTestServer(t, nil)
	h := s.Handler()
	if err := f.Sleep(t.Context(), "world"); err != nil {
		t.Fatal(err)
	}
	s.sample(t.Context())
	sc, _ := login(t, h)
	w := do(t, h, req{path: "/", cookies: []*http.Cookie{sc}})
	body := w.Body.String()
	for _, want := range []string{
		`<tr id="app-hello" data-app="hello" data-state="running"`,
		`<tr id="app-world" data-app="world" data-state="sleeping"`,
		`<span class="state s-running">running</span>`,
		`<span class="state s-sleeping">sleeping</span>`,
		`href="http://hello.localhost:8000"`,
		`>2/2<`, `0123456`, `3 min ago`, `2.0 h`, `<polyline points="`,
		`action="/apps/hello/scale"`, `action="/apps/world/wake"`,
		`<script src="/static/app.js" defer></script>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("apps page lacks %q", want)
		}
	}
	if strings.Contains(body, "http://") && strings.Contains(body, "<script src=\"http") {
		t.Error("apps page loads a script from elsewhere")
	}
}

func TestAppPage(t *testing.T) {
	s, f := newTestServer(t, nil)
	h := s.Handler()
	if _, err := f.Rollback(t.Context(), "hello", "v1", discard{}); err != nil {
		t.Fatal(err)
	}
	s.sample(t.Context())
	sc, _ := login(t, h)
	body := do(t, h, req{path: "/apps/hello", cookies: []*http.Cookie{sc}}).Body.String()
	for _, want := range []string{
		`data-live-app="hello"`,
		`<b>v2</b> <span class="tag">live</span>`,
		`Roll back to v1`,
		`rollback to v1`,
		`succeeded`, `took 30s`,
		`<details id="log-hello-1"><summary>Build log</summary>`,
		`-----&gt; v1 live`,
		`<td data-label="Host">127.0.0.1</td>`, `<td data-label="Port">20000</td>`, `healthy`,
		`<svg class="chart"`,
		`data-stream="/api/v1/apps/hello/logs?follow=1"`,
		`data-confirm-name="hello"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
	if strings.Contains(body, "Roll back to v2") {
		t.Error("app page offers to roll back to the live release")
	}
	if w := do(t, h, req{path: "/apps/nope", cookies: []*http.Cookie{sc}}); w.Code != 404 {
		t.Errorf("page of unknown app = %d, want 404", w.Code)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestDeployPage(t *testing.T) {
	s, f := newTestServer(t, nil)
	h := s.Handler()
	sc, _ := login(t, h)
	body := do(t, h, req{path: "/deploys/hello-1", cookies: []*http.Cookie{sc}}).Body.String()
	if !strings.Contains(body, "-----&gt; v1 live") || strings.Contains(body, "data-stream") {
		t.Errorf("finished deploy page should show its log, not stream it:\n%s", body)
	}
	f.mu.Lock()
	f.deploys["hello"][0].Status, f.deploys["hello"][0].FinishedAt = deploy.RolloutRunning, nil
	f.mu.Unlock()
	body = do(t, h, req{path: "/deploys/hello-1", cookies: []*http.Cookie{sc}}).Body.String()
	if !strings.Contains(body, `data-stream="/api/v1/deploys/hello-1?follow=1"`) {
		t.Errorf("running deploy page does not stream its log")
	}
}

func TestForms(t *testing.T) {
	s, f := newTestServer(t, nil)
	h := s.Handler()
	sc, csrf := login(t, h)
	form := map[string]string{"Content-Type": formType}
	jsonForm := map[string]string{"Content-Type": formType, "Accept": "application/json"}
	tests := []struct {
		name   string
		path   string
		body   string
		header map[string]string
		want   int
		check  func(a deploy.App) bool
	}{
		{"scale without CSRF token", "/apps/hello/scale", "instances=3", form, 403, nil},
		{"scale with a wrong CSRF token", "/apps/hello/scale", "instances=3&csrf=forged", form, 403, nil},
		{"scale", "/apps/hello/scale", "instances=3&back=/&csrf=" + csrf, form, 303, func(a deploy.App) bool { return a.Desired == 3 }},
		{"scale from script", "/apps/hello/scale", "instances=1&csrf=" + csrf, jsonForm, 200, func(a deploy.App) bool { return a.Desired == 1 }},
		{"scale to nonsense", "/apps/hello/scale", "instances=-2&csrf=" + csrf, form, 400, nil},
		{"sleep", "/apps/hello/sleep", "csrf=" + csrf, jsonForm, 200, func(a deploy.App) bool { return a.State == deploy.StateSleeping }},
		{"wake", "/apps/hello/wake", "csrf=" + csrf, jsonForm, 200, func(a deploy.App) bool { return a.State == deploy.StateRunning }},
		{"destroy without the name", "/apps/hello/destroy", "confirm=hell&csrf=" + csrf, jsonForm, 400, nil},
		{"rollback", "/apps/hello/rollback", "release=v1&csrf=" + csrf, map[string]string{"Content-Type": formType, "Accept": "text/plain"}, 200, func(a deploy.App) bool { return a.Release == "v2" }},
		{"destroy", "/apps/hello/destroy", "confirm=hello&csrf=" + csrf, form, 303, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, req{method: "POST", path: tt.path, body: tt.body, cookies: []*http.Cookie{sc}, header: tt.header})
			if w.Code != tt.want {
				t.Fatalf("POST %s = %d, want %d: %s", tt.path, w.Code, tt.want, w.Body.String())
			}
			if tt.want >= 400 {
				errorOf(t, w)
			}
			if tt.check != nil {
				a, err := f.App(t.Context(), "hello")
				if err != nil || !tt.check(a) {
					t.Errorf("after %s: app = %+v (%v)", tt.name, a, err)
				}
			}
		})
	}
	if _, err := f.App(t.Context(), "hello"); err == nil {
		t.Error("hello survived destroy")
	}
}

func TestFragments(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	sc, _ := login(t, h)
	tests := []struct {
		name    string
		path    string
		cookies []*http.Cookie
		want    int
		has     string
	}{
		{"row", "/ui/apps/hello/row", []*http.Cookie{sc}, 200, `<tr id="app-hello"`},
		{"live", "/ui/apps/hello/live", []*http.Cookie{sc}, 200, `<span class="state s-running" id="app-state">`},
		{"releases", "/ui/apps/hello/releases", []*http.Cookie{sc}, 200, `<ol class="releases">`},
		{"unknown app", "/ui/apps/nope/row", []*http.Cookie{sc}, 404, ""},
		{"no session", "/ui/apps/hello/row", nil, 401, ""},
		{"stylesheet", "/static/app.css", nil, 200, ".s-running"},
		{"script", "/static/app.js", nil, 200, "EventSource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, h, req{path: tt.path, cookies: tt.cookies})
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.has) {
				t.Errorf("GET %s = %d, want %d with %q: %.300s", tt.path, w.Code, tt.want, tt.has, w.Body.String())
			}
		})
	}
}

func TestReadOnlyDashboard(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.ReadOnly = true })
	body := do(t, s.Handler(), req{path: "/"}).Body.String()
	if !strings.Contains(body, `id="app-hello"`) {
		t.Error("read-only dashboard does not list apps")
	}
	if strings.Contains(body, `action="/apps/`) {
		t.Error("read-only dashboard offers actions")
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		t    *time.Time
		want string
	}{
		{nil, "never"},
		{at(2 * time.Second), "just now"},
		{at(40 * time.Second), "40 s ago"},
		{at(3*time.Minute + 10*time.Second), "3 min ago"},
		{at(5 * time.Hour), "5 h ago"},
		{at(72 * time.Hour), "3 days ago"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := ago(tt.t, now); got != tt.want {
				t.Errorf("ago = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoginLimit(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	try := func(token string) int {
		lc := cookie(do(t, h, req{path: "/login"}), loginCookie)
		return do(t, h, req{method: "POST", path: "/login", body: "csrf=" + lc.Value + "&token=" + token,
			cookies: []*http.Cookie{lc}, header: map[string]string{"Content-Type": formType}}).Code
	}
	for i := range loginLimit {
		if got := try("guess"); got != 401 {
			t.Fatalf("wrong token #%d = %d, want 401", i+1, got)
		}
	}
	if got := try(testToken); got != 429 {
		t.Errorf("after %d wrong tokens, the right one = %d, want 429 until the window passes", loginLimit, got)
	}
}

func TestAppsPageGzip(t *testing.T) {
	s, f := newTestServer(t, nil)
	for i := range 50 {
		f.add(fmt.Sprintf("app-%02d", i), 1)
	}
	sc, _ := login(t, s.Handler())
	w := do(t, s.Handler(), req{path: "/", cookies: []*http.Cookie{sc}, header: map[string]string{"Accept-Encoding": "gzip"}})
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("a large page was not gzipped")
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(body), `id="app-app-49"`) {
		t.Errorf("gzipped page does not hold the last app (%v)", err)
	}
}
