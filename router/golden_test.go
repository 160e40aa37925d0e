package router

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenDir replaces the test's temp dir in golden files.
const goldenDir = "/var/lib/flock/router"

type goldenCase struct {
	name  string
	waker string
	apps  []deploy.App
	https string // --https; "" for none
	acme  string // Config.ACMEAddr
}

func inst(id, host string, port int, healthy bool, ports ...int) deploy.Instance {
	return deploy.Instance{ID: id, Release: "v1", Host: host, Port: port, Ports: append([]int{port}, ports...), Healthy: healthy}
}

func httpCheck(path string, interval, fails int) deploy.Descriptor {
	return deploy.Descriptor{Checks: []deploy.Check{{Path: path, IntervalSeconds: interval, TimeoutSeconds: 2, MaxConsecutiveFailures: fails}}}
}

var goldenCases = []goldenCase{
	{name: "empty", waker: "127.0.0.1:8001"},
	{name: "one-app", waker: "127.0.0.1:8001", apps: []deploy.App{
		{Name: "hello", Descriptor: httpCheck("/health", 10, 3), Instances: []deploy.Instance{inst("hello.v1.1", "127.0.0.1", 31001, true)}},
	}},
	{name: "scaled-and-sleeping", waker: "127.0.0.1:8001", apps: []deploy.App{
		{Name: "web", Descriptor: httpCheck("/", 2, 5), Instances: []deploy.Instance{
			inst("web.v2.3", "10.0.0.3", 31003, true), inst("web.v2.1", "10.0.0.1", 31001, true),
			inst("web.v2.2", "10.0.0.2", 31002, false), // not healthy yet: not routed
		}},
		{Name: "sleepy", Descriptor: httpCheck("/ping?deep=1", 10, 3)}, // zero instances: the waker answers
	}},
	{name: "domains", waker: "127.0.0.1:8001", apps: []deploy.App{
		{Name: "blog", Domains: []string{"WWW.Example.com", "example.com.", "blog.localhost"}, Instances: []deploy.Instance{inst("blog.v1.1", "127.0.0.1", 31010, true)}},
		{Name: "shop", Domains: []string{"www.example.com", "shop.example.org"}, Instances: []deploy.Instance{inst("shop.v1.1", "127.0.0.1", 31011, true)}},
	}},
	{name: "tcp-check-on-second-port", waker: "127.0.0.1:8001", apps: []deploy.App{
		{Name: "tcp", Descriptor: deploy.Descriptor{Checks: []deploy.Check{{PortIndex: 1, IntervalSeconds: 5, MaxConsecutiveFailures: 2}}},
			Instances: []deploy.Instance{inst("tcp.v1.1", "127.0.0.1", 31020, true, 31021)}},
	}},
	{name: "https", waker: "127.0.0.1:8001", https: "127.0.0.1:8443", acme: "127.0.0.1:8002", apps: []deploy.App{
		{Name: "hello", Instances: []deploy.Instance{inst("hello.v1.1", "127.0.0.1", 31001, true)}},
		{Name: "plain", Domains: []string{"plain.example.com"}, Descriptor: deploy.Descriptor{HTTPS: &deploy.HTTPSOptions{Redirect: new(bool)}}},
	}},
	{name: "https-on-443", waker: "127.0.0.1:8001", https: ":443"},
	{name: "no-waker", apps: []deploy.App{
		{Name: "idle", Descriptor: httpCheck("/health", 10, 3)},
	}},
	{name: "refused-input", waker: "127.0.0.1:8001", apps: []deploy.App{
		{Name: "Bad_Name"}, // not a DNS label: never reaches the config
		{Name: "evil",
			Domains:    []string{"x.com\n  server pwn 1.2.3.4:80", "a b.com", "ok.example.com"},
			Descriptor: httpCheck("/health #comment", 10, 3),
			Instances: []deploy.Instance{
				inst("evil.v1.1 backup", "127.0.0.1", 31030, true),
				inst("evil.v1.2", "127.0.0.1\n", 31031, true),
				inst("evil.v1.3", "::1", 31032, true),
				inst("evil.v1.4", "127.0.0.1", 70000, true),
			}},
	}},
}

func renderCase(t *testing.T, dir string, c goldenCase) (cfg, hostsMap []byte) {
	t.Helper()
	s := settings{Dir: dir, HTTPAddr: "127.0.0.1:8000", HTTPSAddr: c.https, ACMEAddr: c.acme, StatsAddr: "127.0.0.1:9090", WakerAddr: c.waker, HardStopAfter: 2 * time.Minute}
	rend, err := newRenderer(s)
	if err != nil {
		t.Fatal(err)
	}
	m := build(c.apps, "localhost", nil, nil)
	cfg, err = rend.render(m)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, renderMap(m)
}

// TestGolden renders each case, compares it with testdata/<case>.golden
// (the configuration, then hosts.map as comments) and checks that HAProxy
// accepts the configuration.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, hostsMap := renderCase(t, dir, c)
			var got bytes.Buffer
			got.Write(bytes.ReplaceAll(cfg, []byte(dir), []byte(goldenDir)))
			got.WriteString("\n# hosts.map\n")
			for _, l := range strings.SplitAfter(string(hostsMap), "\n") {
				if l != "" {
					got.WriteString("#   " + l)
				}
			}
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", path, diff)
			}

			testkit.RequireHAProxy(t)
			for _, f := range []string{mapFile, crtListFile, redirectFile} {
				b := hostsMap
				if f != mapFile {
					b = nil // an empty crt-list is valid: certificates come at run time
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfgPath := filepath.Join(dir, cfgFile)
			if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("haproxy", "-c", "-f", cfgPath).CombinedOutput(); err != nil {
				t.Errorf("haproxy -c refuses %s: %v\n%s", path, err, out)
			}
		})
	}
}
