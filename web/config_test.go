package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/engine"
)

// serviceServer is the API over the real engine.Service (memScheduler,
// slugBuilder from e2e_test.go).
func serviceServer(t *testing.T, edit func(*Config)) http.Handler {
	t.Helper()
	store, err := engine.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := engine.New(engine.Config{Domain: "localhost", URLPort: ":8000", APIHosts: []string{"flock.example.com"}},
		store, newMemScheduler(), slugBuilder{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	cfg := Config{Token: testToken, Unpack: untar, TempDir: t.TempDir(), Hosts: []string{"flock.example.com"}}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

// TestConfigAPI: create, PATCH and GET config, what reads show, and the
// statuses of bad requests.
func TestConfigAPI(t *testing.T) {
	h := serviceServer(t, func(c *Config) { c.ReadOnly = true })
	const secret = "v3ry-secret"
	steps := []apiStep{
		{"create", req{method: "POST", path: "/api/v1/apps", body: `{"name":"demo"}`}, 201, `"state":"stopped"`},
		{"create again", req{method: "POST", path: "/api/v1/apps", body: `{"name":"demo"}`}, 409, "exists already"},
		{"create a bad name", req{method: "POST", path: "/api/v1/apps", body: `{"name":"Demo_1"}`}, 400, "DNS label"},
		{"create without a body", req{method: "POST", path: "/api/v1/apps", body: `{}`}, 400, `{\"name\": \"APP\"}`},
		{"create without the token", req{method: "POST", path: "/api/v1/apps", body: `{"name":"other"}`, token: "-"}, 401, "unauthorized"},
		{"set before the first deploy", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"SECRET":"` + secret + `","GONE":"x"}`}, 200, `"configKeys":["GONE","SECRET"]`},
		{"unset", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"GONE":null}`}, 200, `"configKeys":["SECRET"]`},
		{"a reserved key", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"PORT":"1"}`}, 400, `\"PORT\" is reserved`},
		{"FLOCK_", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"FLOCK_X":"1"}`}, 400, `\"FLOCK_X\" is reserved`},
		{"not a shell name", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"A-B":"1"}`}, 400, "not a shell variable name"},
		{"NUL", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"A":"x\u0000y"}`}, 400, "NUL"},
		{"a number", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"A":1}`}, 400, "must be a string"},
		{"not an object", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `["A"]`}, 400, "one JSON object"},
		{"empty", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{}`}, 400, "nothing to set"},
		{"unknown app", req{method: "PATCH", path: "/api/v1/apps/nope/config", body: `{"A":"1"}`}, 404, "not found"},
		{"patch without the token", req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"A":"1"}`, token: "-"}, 401, "unauthorized"},
		{"get", req{path: "/api/v1/apps/demo/config"}, 200, `{"SECRET":"` + secret + `"}`},
		{"get without the token, read-only dashboard", req{path: "/api/v1/apps/demo/config", token: "-"}, 401, "unauthorized"},
	}
	runSteps(t, h, steps)

	// The first deploy runs with the config; a change makes a release.
	src := tarGz(t, map[string]string{"package.json": `{"name":"demo","scripts":{"start":"node server.js"},"flock":{"env":{"A":"desc"}}}`})
	if w := do(t, h, req{method: "POST", path: "/api/v1/deploys", body: string(src), token: testToken}); !strings.Contains(lastLine(w.Body.String()), "deploy succeeded") {
		t.Fatalf("deploy: %s", w.Body.String())
	}
	w := do(t, h, req{method: "PATCH", path: "/api/v1/apps/demo/config", body: `{"A":"config"}`, token: testToken})
	var v configView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.Release != "v2" || strings.Join(v.ConfigKeys, ",") != "A,SECRET" {
		t.Fatalf("config set after a deploy = %d %s", w.Code, w.Body.String())
	}
	// Reads of the app and its releases show keys, not values, to
	// anyone; GET config shows values to token holders.
	for _, path := range []string{"/api/v1/apps", "/api/v1/apps/demo", "/api/v1/apps/demo/releases?log=1"} {
		body := do(t, h, req{path: path, token: testToken}).Body.String()
		if strings.Contains(body, secret) || strings.Contains(body, `"config"`) {
			t.Errorf("%s shows a config value: %s", path, body)
		}
		if !strings.Contains(body, `"configKeys":["A","SECRET"]`) {
			t.Errorf("%s lacks configKeys: %s", path, body)
		}
	}
	if body := do(t, h, req{path: "/api/v1/apps/demo/config", token: testToken}).Body.String(); body != `{"A":"config","SECRET":"`+secret+`"}` {
		t.Errorf("GET config = %s", body)
	}
	// The dashboard's form sets and unsets with a session and CSRF.
	sc, csrf := login(t, h)
	form := func(path string, vals url.Values) int {
		vals.Set("csrf", csrf)
		return do(t, h, req{method: "POST", path: path, body: vals.Encode(), cookies: []*http.Cookie{sc},
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}}).Code
	}
	if code := form("/apps/demo/config", url.Values{"key": {"FORM"}, "value": {"x"}}); code != 200 {
		t.Errorf("config form = %d", code)
	}
	if code := form("/apps/demo/config", url.Values{"key": {"A"}, "op": {"unset"}}); code != 200 {
		t.Errorf("unset form = %d", code)
	}
	page := do(t, h, req{path: "/apps/demo", cookies: []*http.Cookie{sc}}).Body.String()
	if !strings.Contains(page, "<code>FORM</code>") || !strings.Contains(page, "<code>SECRET</code>") || strings.Contains(page, "<code>A</code>") || strings.Contains(page, secret) {
		t.Errorf("app page's config keys are wrong, or show a value:\n%s", page)
	}
}

// TestDomainsAPI adds, lists and removes domains over the API and the
// dashboard's forms; another app's host is refused naming it.
func TestDomainsAPI(t *testing.T) {
	h := serviceServer(t, nil)
	for _, name := range []string{"a", "b"} {
		if w := do(t, h, req{method: "POST", path: "/api/v1/apps", body: `{"name":"` + name + `"}`, token: testToken}); w.Code != 201 {
			t.Fatalf("create %s = %d %s", name, w.Code, w.Body.String())
		}
	}
	steps := []apiStep{
		{"add", req{method: "POST", path: "/api/v1/apps/a/domains", body: `{"host":"WWW.Example.test"}`}, 201, `{"app":"a","domains":[{"host":"www.example.test","source":"added"}]}`},
		{"list", req{path: "/api/v1/apps/a/domains"}, 200, `"host":"www.example.test"`},
		{"another app's", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"www.example.test"}`}, 409, "app a's domain"},
		{"another app's host", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"a.localhost"}`}, 409, "app a's host"},
		{"the API's host", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"flock.example.com"}`}, 409, "the API's host"},
		{"an IP", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"10.0.0.1"}`}, 400, "not an IP address"},
		{"localhost", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"localhost"}`}, 400, "localhost"},
		{"no host", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{}`}, 400, `{\"host\"`},
		{"without the token", req{method: "POST", path: "/api/v1/apps/b/domains", body: `{"host":"x.test"}`, token: "-"}, 401, "unauthorized"},
		{"in the app", req{path: "/api/v1/apps/a"}, 200, `"domains":["www.example.test"]`},
		{"remove one it lacks", req{method: "DELETE", path: "/api/v1/apps/b/domains/www.example.test"}, 404, "not one of its domains"},
		{"remove", req{method: "DELETE", path: "/api/v1/apps/a/domains/www.example.test"}, 200, `{"app":"a","domains":[]}`},
	}
	runSteps(t, h, steps)
	sc, csrf := login(t, h)
	form := func(vals url.Values) int {
		vals.Set("csrf", csrf)
		return do(t, h, req{method: "POST", path: "/apps/b/domains", body: vals.Encode(), cookies: []*http.Cookie{sc},
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}}).Code
	}
	if code := form(url.Values{"host": {"shop.example.test"}}); code != 200 {
		t.Errorf("add form = %d", code)
	}
	if page := do(t, h, req{path: "/apps/b", cookies: []*http.Cookie{sc}}).Body.String(); !strings.Contains(page, `href="http://shop.example.test"`) {
		t.Errorf("app page lacks the added domain")
	}
	if code := form(url.Values{"host": {"shop.example.test"}, "op": {"remove"}}); code != 200 {
		t.Errorf("remove form = %d", code)
	}
	var ds domainsView
	json.Unmarshal(do(t, h, req{path: "/api/v1/apps/b/domains", token: testToken}).Body.Bytes(), &ds)
	if len(ds.Domains) != 0 {
		t.Errorf("domains after the remove form: %+v", ds.Domains)
	}
}

// apiStep is one request of an API walk-through and what it must answer: the
// status and a part of the body. An empty token is the API token, "-" none.
type apiStep struct {
	name string
	r    req
	code int
	want string // in the body
}

// runSteps sends the steps in order, each as a subtest.
func runSteps(t *testing.T, h http.Handler, steps []apiStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.r.token == "" {
				st.r.token = testToken
			} else if st.r.token == "-" {
				st.r.token = ""
			}
			w := do(t, h, st.r)
			if w.Code != st.code || !strings.Contains(w.Body.String(), st.want) {
				t.Fatalf("%s %s = %d %s\nwant %d with %q", st.r.method, st.r.path, w.Code, w.Body.String(), st.code, st.want)
			}
		})
	}
}
