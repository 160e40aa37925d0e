package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
)

// TestUnresolvableAgent routes apps whose instances run on Marathon agents
// named by host: one agent name that does not resolve (RFC 6761 reserves
// .invalid) costs that one server, never the configuration of every app.
func TestUnresolvableAgent(t *testing.T) {
	h := newHarness(t, nil)
	hello := newInstance(t, "hello.v1.1")
	h.r.Update([]deploy.App{app("hello", hello)})
	testkit.WaitFor(t, 5*time.Second, "hello routed", func() bool { return h.routesTo("hello.localhost", "hello.v1.1") })

	// A new app (a new backend: a reload) with one instance on a named
	// agent that resolves and one on an agent that does not.
	named := newInstance(t, "remote.v1.1")
	named.Host = "localhost"
	lost := deploy.Instance{ID: "remote.v1.2", Release: "v1", Host: "agent-7.mesos.invalid", Port: 31000, Ports: []int{31000}, Healthy: true}
	remote := app("remote", named)
	remote.Instances = append(remote.Instances, lost)
	h.r.Update([]deploy.App{app("hello", hello), remote})
	testkit.WaitFor(t, 10*time.Second, "remote routed to its resolvable agent", func() bool { return h.routesTo("remote.localhost", "remote.v1.1") })
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
	testkit.WaitFor(t, 10*time.Second, "later routed", func() bool { return h.routesTo("later.localhost", "later.v1.1") })
	testkit.WaitFor(t, 10*time.Second, "hello's second instance routed", func() bool { return h.routesTo("hello.localhost", "hello.v1.2") })
	if !h.routesTo("remote.localhost", "remote.v1.1") {
		t.Error("remote no longer routed")
	}
}

// TestResolverCache checks the cache rules with a scripted lookup (DNS
// answers that change on cue cannot be had from a real resolver here).
func TestResolverCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	answers := map[string][]net.IP{"agent-1": {net.ParseIP("::1"), net.ParseIP("10.0.0.1")}}
	calls := 0
	changes := make(chan struct{}, 16)
	r := newResolver(func() { changes <- struct{}{} })
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r.lookup = func(_ context.Context, host string) ([]net.IP, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if ips, ok := answers[host]; ok {
			return ips, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	hosts := map[string]bool{"agent-1": true, "agent-2": true}
	settled := func(want int) map[string]hostAddr {
		t.Helper()
		for range want {
			select {
			case <-changes:
			case <-time.After(5 * time.Second):
				t.Fatal("no change reported")
			}
		}
		testkit.WaitFor(t, 5*time.Second, "lookups done", func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return len(r.inflight) == 0
		})
		return r.resolve(hosts)
	}

	if got := r.resolve(hosts); len(got) != 0 {
		t.Errorf("first resolve = %v, want nothing yet: lookups run in the background", got)
	}
	got := settled(2)
	if got["agent-1"].ip != "10.0.0.1" {
		t.Errorf("agent-1 = %+v, want the IPv4 address", got["agent-1"])
	}
	if got["agent-2"].err == nil {
		t.Errorf("agent-2 = %+v, want an error", got["agent-2"])
	}
	r.resolve(hosts)
	r.refreshDue()
	mu.Lock()
	if calls != 2 {
		t.Errorf("%d lookups, want 2: fresh answers are cached", calls)
	}
	// The failure is retried after negTTL; agent-2 now resolves.
	answers["agent-2"] = []net.IP{net.ParseIP("10.0.0.2")}
	now = now.Add(r.negTTL)
	mu.Unlock()
	r.refreshDue()
	got = settled(1)
	if got["agent-2"].ip != "10.0.0.2" {
		t.Errorf("agent-2 = %+v, want 10.0.0.2", got["agent-2"])
	}

	// A name that resolved once keeps its last address through a failed
	// lookup, and that is no change.
	mu.Lock()
	delete(answers, "agent-1")
	now = now.Add(r.ttl)
	n := calls
	mu.Unlock()
	r.refreshDue()
	testkit.WaitFor(t, 5*time.Second, "agent-1 looked up again", func() bool { mu.Lock(); defer mu.Unlock(); return calls > n })
	got = settled(0)
	if got["agent-1"].ip != "10.0.0.1" || got["agent-1"].err != nil {
		t.Errorf("agent-1 = %+v after a failed lookup, want its last address", got["agent-1"])
	}
	select {
	case <-changes:
		t.Error("a failed lookup of a known name was reported as a change")
	default:
	}

	// Names no longer asked for are forgotten.
	r.resolve(map[string]bool{"agent-2": true})
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

// BenchmarkSnapshotNamedAgents builds the model of 10,000 apps whose
// instances run on 100 agents named by host, as Marathon reports them,
// with the names cached (ms), against the same apps on IP addresses
// (ms-ip): the cost of resolving per snapshot.
func BenchmarkSnapshotNamedAgents(b *testing.B) {
	named := manyApps(10000, &instance{Instance: deploy.Instance{Port: 31000, Healthy: true}})
	byIP := manyApps(10000, &instance{Instance: deploy.Instance{Port: 31000, Healthy: true}})
	r := newResolver(nil)
	r.lookup = func(_ context.Context, host string) ([]net.IP, error) {
		return []net.IP{net.ParseIP("10.0.0." + strings.TrimPrefix(host, "agent-"))}, nil
	}
	for i := range named {
		named[i].Instances[0].Host = fmt.Sprintf("agent-%d", i%100)
		byIP[i].Instances[0].Host = fmt.Sprintf("10.0.0.%d", i%100)
	}
	none := newResolver(nil) // asked for no name
	r.resolve(hostNames(named))
	testkit.WaitFor(b, 5*time.Second, "names cached", func() bool { return len(r.resolve(hostNames(named))) == 100 })
	var withNames, withIPs time.Duration
	for b.Loop() {
		start := time.Now()
		m := build(named, "localhost", nil, r.resolve(hostNames(named)))
		withNames += time.Since(start)
		if len(m.errs) > 0 {
			b.Fatalf("%d apps refused", len(m.errs))
		}
		start = time.Now()
		build(byIP, "localhost", nil, none.resolve(hostNames(byIP)))
		withIPs += time.Since(start)
	}
	b.ReportMetric(float64(withNames.Microseconds())/1000/float64(b.N), "ms")
	b.ReportMetric(float64(withIPs.Microseconds())/1000/float64(b.N), "ms-ip")
}
