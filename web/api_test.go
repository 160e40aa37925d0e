package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
	"github.com/google/go-cmp/cmp"
)

var csrfMetaRE = regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}, newFake()); err == nil {
		t.Error("New without a token: no error")
	}
	if _, err := New(Config{Token: "x"}, nil); err == nil {
		t.Error("New without a platform: no error")
	}
	if _, err := New(Config{Token: "x", Mounts: map[string]http.Handler{"git/": http.NotFoundHandler()}}, newFake()); err == nil {
		t.Error("New with a mount not starting with /: no error")
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name  string
		ready error
		want  int
	}{
		{"ready", nil, 200},
		{"not ready", errors.New("haproxy is down"), 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(c *Config) { c.Ready = func() error { return tt.ready } })
			w := do(t, s.Handler(), req{path: "/healthz"})
			if w.Code != tt.want {
				t.Errorf("GET /healthz = %d, want %d", w.Code, tt.want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name     string
		readOnly bool
		r        req
		want     int
	}{
		{"read without token from afar", false, req{path: "/api/v1/apps"}, 401},
		{"read with token", false, req{path: "/api/v1/apps", token: testToken}, 200},
		{"read with wrong token", false, req{path: "/api/v1/apps", token: "nope"}, 401},
		{"read from loopback without token", false, req{path: "/api/v1/apps", loopback: true}, 401},
		{"logs from loopback without token", false, req{path: "/api/v1/apps/hello/logs", loopback: true}, 401},
		{"deploy record from loopback without token", false, req{path: "/api/v1/deploys/d1", loopback: true}, 401},
		{"events from loopback without token", false, req{path: "/api/v1/events", loopback: true}, 401},
		{"metrics from loopback without token", false, req{path: "/metrics", loopback: true}, 401},
		{"foreign Host (DNS rebinding)", false, req{path: "/api/v1/apps", loopback: true, header: map[string]string{"Host": "evil.example"}}, 421},
		{"foreign Host with token", false, req{path: "/api/v1/apps", token: testToken, header: map[string]string{"Host": "evil.example:8080"}}, 421},
		{"foreign Host: login page", false, req{path: "/login", header: map[string]string{"Host": "evil.example"}}, 421},
		{"foreign Host: healthz", false, req{path: "/healthz", header: map[string]string{"Host": "evil.example"}}, 200},
		{"IP literal Host", false, req{path: "/api/v1/apps", token: testToken, header: map[string]string{"Host": "192.0.2.1:8080"}}, 200},
		{"localhost Host", false, req{path: "/api/v1/apps", token: testToken, header: map[string]string{"Host": "LOCALHOST:8080"}}, 200},
		{"metrics from afar", false, req{path: "/metrics"}, 401},
		{"scale from loopback without token", false, req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":2}`, loopback: true}, 401},
		{"scale with wrong token", false, req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":2}`, token: "nope"}, 401},
		{"scale with token", false, req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":2}`, token: testToken}, 200},
		{"delete without token", false, req{method: "DELETE", path: "/api/v1/apps/hello"}, 401},
		{"deploy without token", false, req{method: "POST", path: "/api/v1/deploys"}, 401},
		{"read-only: read", true, req{path: "/api/v1/apps"}, 200},
		{"read-only: logs", true, req{path: "/api/v1/apps/hello/logs"}, 401},
		{"read-only: mutation", true, req{method: "POST", path: "/api/v1/apps/hello/sleep"}, 401},
		{"read-only: dashboard", true, req{path: "/"}, 200},
		{"dashboard without login", false, req{path: "/"}, 303},
		{"healthz needs nothing", false, req{path: "/healthz"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(c *Config) { c.ReadOnly = tt.readOnly })
			h := s.Handler()
			if host, ok := tt.r.header["Host"]; ok {
				// Host is not a header to httptest; set it through a wrapper.
				delete(tt.r.header, "Host")
				inner := h
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { r.Host = host; inner.ServeHTTP(w, r) })
			}
			w := do(t, h, tt.r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d: %s", tt.r.method, tt.r.path, w.Code, tt.want, w.Body.String())
			}
			if w.Code >= 400 {
				errorOf(t, w)
			}
			if w.Code == 401 {
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		r    req
		want int
	}{
		{"unknown app", req{path: "/api/v1/apps/nope"}, 404},
		{"invalid app name", req{path: "/api/v1/apps/Bad_Name"}, 400},
		{"unknown route", req{path: "/api/v1/nothing"}, 404},
		{"wrong method", req{method: "PUT", path: "/api/v1/apps"}, 405},
		{"scale negative", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":-1}`}, 400},
		{"scale a string", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":"two"}`}, 400},
		{"scale a fraction", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":1.5}`}, 400},
		{"scale without a number", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{}`}, 400},
		{"scale not JSON", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `two`}, 400},
		{"scale absurd", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":101}`}, 400},
		{"scale unknown app", req{method: "POST", path: "/api/v1/apps/nope/scale", body: `{"instances":1}`}, 404},
		{"wake a running app", req{method: "POST", path: "/api/v1/apps/hello/wake"}, 409},
		{"sleep unknown app", req{method: "POST", path: "/api/v1/apps/nope/sleep"}, 404},
		{"releases of unknown app", req{path: "/api/v1/apps/nope/releases"}, 404},
		{"rollback to a bad name", req{method: "POST", path: "/api/v1/apps/hello/rollback", body: `{"release":"../v1"}`}, 400},
		{"rollback unknown app", req{method: "POST", path: "/api/v1/apps/nope/rollback", body: `{"release":"v1"}`}, 404},
		{"rollback unknown release (JSON)", req{method: "POST", path: "/api/v1/apps/hello/rollback", body: `{"release":"v9"}`, header: map[string]string{"Accept": "application/json"}}, 404},
		{"unknown deploy", req{path: "/api/v1/deploys/nope"}, 404},
		{"logs of unknown app", req{path: "/api/v1/apps/nope/logs"}, 404},
		{"deploy with a bad app name", req{method: "POST", path: "/api/v1/deploys?app=a/b", body: "x"}, 400},
		{"deploy with a bad commit", req{method: "POST", path: "/api/v1/deploys?commit=$(rm)", body: "x"}, 400},
		{"deploy not a tar.gz", req{method: "POST", path: "/api/v1/deploys", body: "not gzip"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			tt.r.token = testToken
			w := do(t, s.Handler(), tt.r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d: %s", tt.r.method, tt.r.path, w.Code, tt.want, w.Body.String())
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			errorOf(t, w)
		})
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("app x: %w", deploy.ErrNotFound), 404},
		{fmt.Errorf("scale: %w", deploy.ErrInvalid), 400},
		{&deploy.DescriptorError{File: "package.json", Key: "flock.instances", Rule: "must be a number"}, 400},
		{fmt.Errorf("deploy: %w", deploy.ErrConflict), 409},
		{fmt.Errorf("logs: %w", deploy.ErrUnsupported), 501},
		{errUnauthorized, 401},
		{errors.New("disk full"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := status(tt.err); got != tt.want {
				t.Errorf("status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestAppsAndActions(t *testing.T) {
	s, f := newTestServer(t, nil)
	h := s.Handler()

	w := do(t, h, req{path: "/api/v1/apps", token: testToken})
	var apps []deploy.App
	if err := json.Unmarshal(w.Body.Bytes(), &apps); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"hello", "world"}, names); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}

	steps := []struct {
		name      string
		r         req
		wantState deploy.State
		wantInst  int
	}{
		{"scale to 3", req{method: "POST", path: "/api/v1/apps/hello/scale", body: `{"instances":3}`}, deploy.StateRunning, 3},
		{"sleep", req{method: "POST", path: "/api/v1/apps/hello/sleep"}, deploy.StateSleeping, 0},
		{"wake", req{method: "POST", path: "/api/v1/apps/hello/wake"}, deploy.StateRunning, 3},
		{"get", req{path: "/api/v1/apps/hello"}, deploy.StateRunning, 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.r.token = testToken
			w := do(t, h, st.r)
			if w.Code != 200 {
				t.Fatalf("%s = %d: %s", st.r.path, w.Code, w.Body.String())
			}
			var a deploy.App
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.State != st.wantState || len(a.Instances) != st.wantInst {
				t.Errorf("after %s: state %s with %d instances, want %s with %d", st.name, a.State, len(a.Instances), st.wantState, st.wantInst)
			}
		})
	}

	w = do(t, h, req{method: "DELETE", path: "/api/v1/apps/world", token: testToken})
	if w.Code != 200 {
		t.Fatalf("DELETE = %d %s", w.Code, w.Body.String())
	}
	if _, err := f.App(context.Background(), "world"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("world still exists after DELETE: %v", err)
	}
	if w := do(t, h, req{path: "/api/v1/apps/world", token: testToken}); w.Code != 404 {
		t.Errorf("GET destroyed app = %d, want 404", w.Code)
	}
}

func TestReleases(t *testing.T) {
	s, f := newTestServer(t, func(c *Config) { c.ReadOnly = true })
	f.mu.Lock()
	f.releases["hello"][0].Env = map[string]string{"DB_PASSWORD": "hunter2"}
	f.mu.Unlock()

	tests := []struct {
		name             string
		r                req
		wantLog, wantEnv bool
	}{
		{"with token", req{path: "/api/v1/apps/hello/releases", token: testToken}, false, true},
		{"with log", req{path: "/api/v1/apps/hello/releases?log=1", token: testToken}, true, true},
		{"read-only dashboard hides env values", req{path: "/api/v1/apps/hello/releases"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, s.Handler(), tt.r)
			if w.Code != 200 {
				t.Fatalf("= %d %s", w.Code, w.Body.String())
			}
			var v releasesView
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			if len(v.Releases) != 1 || len(v.Deploys) != 1 {
				t.Fatalf("got %d releases, %d deploys, want 1 and 1", len(v.Releases), len(v.Deploys))
			}
			d := v.Deploys[0]
			if d.Commit == "" || d.Trigger != "cli" || d.Status != deploy.RolloutSucceeded || d.DurationSeconds == nil || *d.DurationSeconds != 30 {
				t.Errorf("deploy record = %+v, want commit, trigger cli, succeeded, 30 s", d)
			}
			if (d.Log != "") != tt.wantLog {
				t.Errorf("log present = %v, want %v", d.Log != "", tt.wantLog)
			}
			if got := v.Releases[0].Env["DB_PASSWORD"] == "hunter2"; got != tt.wantEnv {
				t.Errorf("env value shown = %v, want %v", got, tt.wantEnv)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := do(t, s.Handler(), req{method: "POST", path: "/api/v1/apps/hello/rollback", body: `{"release":"v1"}`, token: testToken})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("rollback = %d %s %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	if got, want := lastLine(w.Body.String()), "rollback succeeded: v2 http://hello.localhost:8000"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	w = do(t, s.Handler(), req{method: "POST", path: "/api/v1/apps/hello/rollback", body: `{"release":"v9"}`, token: testToken})
	if got := lastLine(w.Body.String()); !strings.HasPrefix(got, "rollback failed: ") {
		t.Errorf("last line = %q, want rollback failed", got)
	}
	w = do(t, s.Handler(), req{method: "POST", path: "/api/v1/apps/hello/rollback", body: `{"release":"v1"}`, token: testToken,
		header: map[string]string{"Accept": "application/json"}})
	var out struct {
		Release deploy.Release `json:"release"`
		URL     string         `json:"url"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Release.Name != "v3" {
		t.Errorf("JSON rollback = %s (%v), want release v3", w.Body.String(), err)
	}
}

func TestMounts(t *testing.T) {
	hit := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
	}
	s, _ := newTestServer(t, func(c *Config) {
		c.Mounts = map[string]http.Handler{"/hooks/github": hit("hook"), "/git/": hit("git"), "/artifacts/": hit("artifacts")}
	})
	tests := []struct{ path, want string }{
		{"/hooks/github", "hook"},
		{"/git/hello.git/info/refs", "git"},
		{"/artifacts/hello/v1.tar.gz", "artifacts"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := do(t, s.Handler(), req{path: tt.path}).Body.String(); got != tt.want {
				t.Errorf("%s reached %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	if w := do(t, s.Handler(), req{path: "/hooks/github/x"}); w.Code != 404 {
		t.Errorf("/hooks/github/x = %d, want 404 (exact mount)", w.Code)
	}
}
