package router

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/options"
	"github.com/haproxytech/config-parser/v5/types"
)

func TestValidHostAndPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		host bool
		path bool
	}{
		{"app host", "hello.localhost", true, false},
		{"single label", "localhost", true, false},
		{"upper case", "Hello.localhost", false, false},
		{"space", "a b.com", false, false},
		{"newline", "a.com\nserver x", false, false},
		{"trailing dot", "a.com.", false, false},
		{"underscore", "a_b.com", false, false},
		{"label too long", strings.Repeat("a", 64) + ".com", false, false},
		{"root path", "/", false, true},
		{"path with query", "/health?deep=1&x=%20", false, true},
		{"path with space", "/a b", false, false},
		{"path with hash", "/a#b", false, false},
		{"path with quote", `/a"b`, false, false},
		{"path with dollar", "/a$HOME", false, false},
		{"relative path", "health", true, false},
		{"path with parentheses", "/health(deep)", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validHost(tc.s); got != tc.host {
				t.Errorf("validHost(%q) = %v, want %v", tc.s, got, tc.host)
			}
			// The router takes the descriptor's rule: a path the parser
			// accepts is the path HAProxy requests.
			if got := deploy.ValidCheckPath(tc.s); got != tc.path {
				t.Errorf("deploy.ValidCheckPath(%q) = %v, want %v", tc.s, got, tc.path)
			}
		})
	}
}

func TestBuild(t *testing.T) {
	healthy := func(id string, port int) deploy.Instance {
		return deploy.Instance{ID: id, Host: "127.0.0.1", Port: port, Healthy: true}
	}
	apps := []deploy.App{
		{Name: "web", Instances: []deploy.Instance{healthy("web.1", 1001), healthy("web.2", 1002), {ID: "web.3", Host: "127.0.0.1", Port: 1003}}},
		{Name: "api", Domains: []string{"API.example.com", "bad domain"}},
		{Name: "copy", Domains: []string{"api.example.com"}},
		{Name: "NOPE"},
	}
	m := build(apps, "localhost", map[string]map[string]bool{"web": {"web.2_1002": true}}, nil)
	var names []string
	for _, b := range m.backends {
		names = append(names, b.Name)
	}
	if diff := cmp.Diff([]string{"app_api", "app_copy", "app_web"}, names); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	web := m.byName()["app_web"]
	if diff := cmp.Diff([]server{{Name: "web.1_1001", Addr: "127.0.0.1:1001"}}, web.Servers); diff != "" {
		t.Errorf("web servers: drained and unhealthy instances must be left out (-want +got):\n%s", diff)
	}
	wantHosts := map[string]string{
		"api.localhost": "app_api", "api.example.com": "app_api",
		"copy.localhost": "app_copy", "web.localhost": "app_web",
	}
	if diff := cmp.Diff(wantHosts, m.hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if !strings.Contains(m.errs["api"], `"bad domain" refused`) {
		t.Errorf("errs[api] = %q, want the refused domain", m.errs["api"])
	}
	if !strings.Contains(m.errs["copy"], "already routes to api") {
		t.Errorf("errs[copy] = %q, want the taken domain", m.errs["copy"])
	}
	if _, ok := m.errs["web"]; ok {
		t.Errorf("errs[web] = %q, want none", m.errs["web"])
	}
}

func TestServerName(t *testing.T) {
	for _, tc := range []struct {
		id   string
		same bool
	}{
		{"hello.v1.1", true},
		{"hello_v1-1", true},
		{"app.7f3c2b1e-0d9a-11ef-b864-0242ac120002", true},
		{"with space", false},
		{"slash/name", false},
		{"", false},
		{strings.Repeat("x", 80), false},
	} {
		got := serverName(deploy.Instance{ID: tc.id, Host: "127.0.0.1", Port: 1})
		if (got == tc.id+"_1") != tc.same || !serverRE.MatchString(got) {
			t.Errorf("serverName(%q) = %q", tc.id, got)
		}
	}
}

// TestRenderedConfigParses reads the rendered configuration back with
// config-parser: every backend and server is where the model put it.
func TestRenderedConfigParses(t *testing.T) {
	cfg, _ := renderCase(t, "/run/flock", goldenCases[2])
	p, err := parser.New(options.String(string(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	backends, err := p.SectionsGet(parser.Backends)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app_sleepy", "app_web", "be_default"}, slices.Sorted(slices.Values(backends))); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	data, err := p.Get(parser.Backends, "app_web", "server")
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, s := range data.([]types.Server) {
		servers = append(servers, s.Name+" "+s.Address)
	}
	want := []string{"web.v2.1_31001 10.0.0.1:31001", "web.v2.3_31003 10.0.0.3:31003", "waker 127.0.0.1:8001"}
	if diff := cmp.Diff(want, servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
}

func TestNewValidates(t *testing.T) {
	testkit.RequireHAProxy(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing binary", Config{Dir: "/tmp/x", Binary: "/nonexistent/haproxy"}, `Debian package "haproxy"`},
		{"relative dir", Config{Dir: "data"}, "absolute path"},
		{"dir with space", Config{Dir: "/tmp/a b"}, "absolute path"},
		{"dir too long", Config{Dir: "/" + strings.Repeat("d", 120)}, "too long"},
		{"bad http address", Config{Dir: "/tmp/x", HTTPAddr: "127.0.0.1"}, "http address"},
		{"bad waker", Config{Dir: "/tmp/x", WakerAddr: "127.0.0.1:0x50"}, "waker address"},
		{"bad domain", Config{Dir: "/tmp/x", Domain: "Example.COM"}, "domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	r, err := New(Config{Dir: "/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.HTTPAddr != "127.0.0.1:8000" || r.cfg.StatsAddr != "127.0.0.1:9090" || r.cfg.Domain != "localhost" {
		t.Errorf("defaults not applied: %+v", r.cfg)
	}
	if r.Err("nope") != "" {
		t.Error("Err of an unknown app is not empty")
	}
	if err := r.Drain(context.Background(), "Bad Name", deploy.Instance{}); err == nil {
		t.Error("Drain accepted an invalid app name")
	}
}

func TestLiveNeedsReload(t *testing.T) {
	m := build([]deploy.App{{Name: "a"}, {Name: "b"}}, "localhost", nil, nil)
	v := newLive(m)
	for _, tc := range []struct {
		name string
		apps []deploy.App
		want bool
	}{
		{"same apps", []deploy.App{{Name: "a"}, {Name: "b"}}, false},
		{"instances only", []deploy.App{{Name: "a", Instances: []deploy.Instance{{ID: "a.1", Host: "127.0.0.1", Port: 1, Healthy: true}}}, {Name: "b"}}, false},
		{"domains only", []deploy.App{{Name: "a", Domains: []string{"a.example.com"}}, {Name: "b"}}, false},
		{"app added", []deploy.App{{Name: "a"}, {Name: "b"}, {Name: "c"}}, true},
		{"app removed", []deploy.App{{Name: "a"}}, true},
		{"check changed", []deploy.App{{Name: "a", Descriptor: httpCheck("/h", 5, 3)}, {Name: "b"}}, true},
	} {
		if tc.name == "app added" {
			// Too many parked servers call for a reload too.
			parked := newLive(m)
			for i := range maxParked + 1 {
				parked.backends["app_a"].servers[itoa(i)] = &liveServer{parked: true}
			}
			if !parked.needsReload(build([]deploy.App{{Name: "a"}, {Name: "b"}}, "localhost", nil, nil)) {
				t.Errorf("needsReload = false with %d parked servers", maxParked+1)
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			if got := v.needsReload(build(tc.apps, "localhost", nil, nil)); got != tc.want {
				t.Errorf("needsReload = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBuildKeepsEachAppsHost: an app's domains never take another app's
// host (even one whose name sorts later), nor localhost or an address.
func TestBuildKeepsEachAppsHost(t *testing.T) {
	apps := []deploy.App{
		{Name: "a", Domains: []string{"b.localhost", "localhost", "127.0.0.1", "www.a.example"}},
		{Name: "b"},
	}
	m := build(apps, "localhost", nil, nil)
	want := map[string]string{"a.localhost": "app_a", "www.a.example": "app_a", "b.localhost": "app_b"}
	if diff := cmp.Diff(want, m.hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	wantErr := `domain "b.localhost" already routes to b; domain "localhost" refused; domain "127.0.0.1" refused`
	if m.errs["a"] != wantErr {
		t.Errorf("a's routing error %q, want %q", m.errs["a"], wantErr)
	}
	if diff := cmp.Diff([]string{"a.localhost", "www.a.example"}, m.byName()["app_a"].Hosts); diff != "" {
		t.Errorf("a's hosts (-want +got):\n%s", diff)
	}
}
