package router

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// TestUnresolvableAgent routes apps whose instances run on Marathon agents
// named by host: one agent name that does not resolve (RFC 6761 reserves
// .invalid) costs that one server, never the configuration of every app.
func TestUnresolvableAgent(t *testing.T) {
	h := newHarness(t, nil)
	hello := newInstance(t, "hello.v1.1")
	h.r.Update([]deploy.App{app("hello", hello)})
	waitFor(t, 5*time.Second, "hello routed", func() bool { return h.routesTo("hello.localhost", "hello.v1.1") })

	// A new app (a new backend: a reload) with one instance on a named
	// agent that resolves and one on an agent that does not.
	named := newInstance(t, "remote.v1.1")
	named.Host = "localhost"
	lost := deploy.Instance{ID: "remote.v1.2", Release: "v1", Host: "agent-7.mesos.invalid", Port: 31000, Ports: []int{31000}, Healthy: true}
	remote := app("remote", named)
	remote.Instances = append(remote.Instances, lost)
	h.r.Update([]deploy.App{app("hello", hello), remote})
	waitFor(t, 10*time.Second, "remote routed to its resolvable agent", func() bool { return h.routesTo("remote.localhost", "remote.v1.1") })
	if !h.routesTo("hello.localhost", "hello.v1.1") {
		t.Error("hello no longer routed")
	}
	if got := h.r.Err("remote"); !strings.Contains(got, "agent-7.mesos.invalid") {
		t.Errorf("Err(remote) = %q, want it to name the unresolvable agent", got)
	}
	if got := h.r.Err("hello"); got != "" {
		t.Errorf("Err(hello) = %q, want none", got)
	}

	// Later changes still apply: a third app (a reload) and a new
	// instance of hello (the runtime API).
	later := newInstance(t, "later.v1.1")
	hello2 := newInstance(t, "hello.v1.2")
	h.r.Update([]deploy.App{app("hello", hello, hello2), remote, app("later", later)})
	waitFor(t, 10*time.Second, "later routed", func() bool { return h.routesTo("later.localhost", "later.v1.1") })
	waitFor(t, 10*time.Second, "hello's second instance routed", func() bool { return h.routesTo("hello.localhost", "hello.v1.2") })
	if !h.routesTo("remote.localhost", "remote.v1.1") {
		t.Error("remote no longer routed")
	}
}

// TestResolverCache checks the cache rules with a scripted lookup (DNS
// answers that change on cue cannot be had from a real resolver here).
func TestResolverCache(t *testing.T) {
	now := time.Unix(0, 0)
	answers := map[string][]net.IP{"agent-1": {net.ParseIP("::1"), net.ParseIP("10.0.0.1")}}
	calls := 0
	r := newResolver()
	r.now = func() time.Time { return now }
	r.lookup = func(_ context.Context, host string) ([]net.IP, error) {
		calls++
		if ips, ok := answers[host]; ok {
			return ips, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	hosts := map[string]bool{"agent-1": true, "agent-2": true}

	got := r.resolve(context.Background(), hosts)
	if got["agent-1"].ip != "10.0.0.1" {
		t.Errorf("agent-1 = %+v, want the IPv4 address", got["agent-1"])
	}
	if got["agent-2"].err == nil {
		t.Errorf("agent-2 = %+v, want an error", got["agent-2"])
	}
	r.resolve(context.Background(), hosts)
	if calls != 2 || r.due() {
		t.Errorf("%d lookups, due %v; want 2 and not due: fresh answers are cached", calls, r.due())
	}

	// The failure is retried after negTTL; agent-2 now resolves.
	answers["agent-2"] = []net.IP{net.ParseIP("10.0.0.2")}
	now = now.Add(r.negTTL)
	if !r.due() {
		t.Fatal("not due after negTTL")
	}
	got = r.resolve(context.Background(), hosts)
	if got["agent-2"].ip != "10.0.0.2" || calls != 3 {
		t.Errorf("agent-2 = %+v after %d lookups, want 10.0.0.2 after 3", got["agent-2"], calls)
	}

	// A name that resolved once keeps its address through a failed lookup.
	delete(answers, "agent-1")
	now = now.Add(r.ttl)
	got = r.resolve(context.Background(), hosts)
	if got["agent-1"].ip != "10.0.0.1" || got["agent-1"].err != nil {
		t.Errorf("agent-1 = %+v after a failed lookup, want its last address", got["agent-1"])
	}

	// Names no longer asked for are forgotten.
	r.resolve(context.Background(), map[string]bool{"agent-2": true})
	if _, ok := r.cache["agent-1"]; ok {
		t.Error("agent-1 still cached after it was no longer asked for")
	}
}

// TestBuildResolvedNames checks that a server goes in by the address its
// agent's name resolved to, and that an unresolved name is refused with a
// reason.
func TestBuildResolvedNames(t *testing.T) {
	a := deploy.App{Name: "web", Instances: []deploy.Instance{
		{ID: "web.1", Host: "agent-1", Port: 31001, Healthy: true},
		{ID: "web.2", Host: "agent-7.mesos.invalid", Port: 31002, Healthy: true},
		{ID: "web.3", Host: "agent-9", Port: 31003, Healthy: true},
		{ID: "web.4", Host: "10.0.0.4", Port: 31004, Healthy: true},
	}}
	addrs := map[string]hostAddr{
		"agent-1":               {ip: "10.0.0.1"},
		"agent-7.mesos.invalid": {err: errors.New("no such host")},
	}
	m := build([]deploy.App{a}, "localhost", nil, addrs)
	var got []string
	for _, s := range m.backends[0].Servers {
		got = append(got, s.Addr)
	}
	if want := []string{"10.0.0.1:31001", "10.0.0.4:31004"}; !slices.Equal(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
	for _, want := range []string{"web.2 refused: host \"agent-7.mesos.invalid\" does not resolve", "web.3 refused: host \"agent-9\" not resolved"} {
		if !strings.Contains(m.errs["web"], want) {
			t.Errorf("errs %q, want it to contain %q", m.errs["web"], want)
		}
	}
	if names := hostNames([]deploy.App{a}); len(names) != 3 || names["10.0.0.4"] {
		t.Errorf("hostNames = %v, want the three names only", names)
	}
}
