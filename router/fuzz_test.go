package router

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// FuzzRender feeds arbitrary names, domains, check paths and instances to
// the model and renderer: whatever comes in, every line of a backend is
// one the router writes, and every map line is "host backend".
func FuzzRender(f *testing.F) {
	f.Add("hello", "www.example.com", "/health", "hello.v1.1", "127.0.0.1", 31000)
	f.Add("evil", "x.com\n  server pwn 1.2.3.4:80", "/h #c", "a b", "::1", 70000)
	f.Add("a", "A.B.", "/?x=1&y=%20", "i\"d", "127.0.0.1\nbind :1", 1)
	f.Fuzz(func(t *testing.T, name, domain, path, id, host string, port int) {
		s := settings{Dir: "/run/flock", HTTPAddr: "127.0.0.1:8000", StatsAddr: "127.0.0.1:9090", WakerAddr: "127.0.0.1:8001", HardStopAfter: time.Minute}
		rend, err := newRenderer(s)
		if err != nil {
			t.Fatal(err)
		}
		apps := []deploy.App{{
			Name: name, Domains: []string{domain},
			Descriptor: deploy.Descriptor{Checks: []deploy.Check{{Path: path, IntervalSeconds: 1}}},
			Instances:  []deploy.Instance{{ID: id, Host: host, Port: port, Healthy: true}},
		}}
		m := build(apps, "localhost", nil, nil)
		cfg, err := rend.render(m)
		if err != nil {
			t.Fatal(err)
		}
		_, backends, _ := strings.Cut(string(cfg), "\nbackend be_default from flock\n")
		allowed := []string{"  http-request return status 404 ", "backend app_", "  option httpchk GET /", "  timeout check ",
			"  http-error status 503 ", "  server "}
		servers := 0
		for _, l := range strings.Split(backends, "\n") {
			if l == "" {
				continue
			}
			ok := false
			for _, a := range allowed {
				if strings.HasPrefix(l, a) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("unexpected line %q in\n%s", l, backends)
			}
			if strings.HasPrefix(l, "  server ") {
				servers++
				if f := strings.Fields(l); len(f) != 10 && len(f) != 4 {
					t.Fatalf("server line with %d words: %q", len(f), l)
				}
			}
		}
		if servers > 2 {
			t.Fatalf("%d server lines from one instance", servers)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(renderMap(m))), "\n") {
			if l != "" && len(strings.Fields(l)) != 2 {
				t.Fatalf("map line %q", l)
			}
		}
	})
}
