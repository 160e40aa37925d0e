package router

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

func TestScaleAndReleaseUnderLoad(t *testing.T) {
	h := newHarness(t, nil)
	a1 := newInstance(t, "web.v1.1")
	h.r.Update([]deploy.App{app("web", a1)})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	l := startLoad(h, "web.localhost", 4)

	a2, a3 := newInstance(t, "web.v1.2"), newInstance(t, "web.v1.3")
	h.r.Update([]deploy.App{app("web", a1, a2, a3)})
	testkit.WaitFor(t, 5*time.Second, "3 instances take traffic", func() bool { return a2.hits.Load() > 10 && a3.hits.Load() > 10 })

	// Scale down: drain first (as the scheduler does), then stop.
	for _, in := range []*instance{a2, a3} {
		if err := h.r.Drain(context.Background(), "web", in.Instance); err != nil {
			t.Fatalf("drain %s: %v", in.ID, err)
		}
		in.srv.Close()
	}
	h.r.Update([]deploy.App{app("web", a1, a2, a3)}) // not yet gone from the scheduler's list
	h.r.Update([]deploy.App{app("web", a1)})
	before := a1.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "back to one instance", func() bool { return a1.hits.Load() > before+20 })

	// New release: new instance healthy, then the old one drained.
	b1 := newInstance(t, "web.v2.1")
	b1.Release = "v2"
	h.r.Update([]deploy.App{app("web", a1, b1)})
	testkit.WaitFor(t, 5*time.Second, "v2 takes traffic", func() bool { return b1.hits.Load() > 10 })
	if err := h.r.Drain(context.Background(), "web", a1.Instance); err != nil {
		t.Fatal(err)
	}
	a1.srv.Close()
	h.r.Update([]deploy.App{app("web", b1)})
	testkit.WaitFor(t, 5*time.Second, "only v2 serves", func() bool { return h.routesTo("web.localhost", "web.v2.1") })
	testkit.WaitFor(t, 5*time.Second, "old servers out of rotation", func() bool { return !h.serving("app_web", "web.v1.") })
	n := b1.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "load on the final state", func() bool { return b1.hits.Load() > n+20 })
	sent, failed := l.finish()
	t.Logf("scale 1→3→1 and new release: %d requests, %d failed", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
}

func TestDrainWaitsForRequestInFlight(t *testing.T) {
	h := newHarness(t, nil)
	slow := newInstance(t, "slow.v1.1")
	h.r.Update([]deploy.App{app("slow", slow)})
	testkit.WaitFor(t, 5*time.Second, "slow routed", func() bool { return h.routesTo("slow.localhost", "slow.v1.1") })
	slow.delay.Store(int64(500 * time.Millisecond))
	res := make(chan error, 1)
	go func() {
		code, body, _, err := h.get("slow.localhost")
		if err == nil && (code != 200 || body != "slow.v1.1") {
			err = &net.AddrError{Err: "bad answer " + body}
		}
		res <- err
	}()
	testkit.WaitFor(t, 5*time.Second, "request in flight", func() bool { return slow.hits.Load() >= 2 })
	if err := h.r.Drain(context.Background(), "slow", slow.Instance); err != nil {
		t.Fatal(err)
	}
	// Asked of the instance, not of a clock: a test goroutine that a busy
	// machine holds up could start Drain only once the request has ended.
	if slow.answered.Load() < 2 {
		t.Error("Drain returned before the request in flight ended")
	}
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("request in flight: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request in flight never ended")
	}
	if err := h.r.Drain(context.Background(), "slow", deploy.Instance{ID: "never-routed", Host: "127.0.0.1", Port: 1}); err != nil {
		t.Errorf("drain of an unknown instance: %v", err)
	}
}

func TestInstanceKilled(t *testing.T) {
	h := newHarness(t, nil)
	a, b := newInstance(t, "k.v1.1"), newInstance(t, "k.v1.2")
	h.r.Update([]deploy.App{app("k", a, b)})
	testkit.WaitFor(t, 5*time.Second, "both serve", func() bool {
		h.get("k.localhost")
		return a.hits.Load() > 0 && b.hits.Load() > 0
	})
	b.srv.Close() // crash
	// Before Flock notices, a refused connection is redispatched.
	for range 20 {
		if code, body, _, err := h.get("k.localhost"); err != nil || code != 200 || body != "k.v1.1" {
			t.Fatalf("after the crash: %d %q %v", code, body, err)
		}
	}
	b.Healthy = false
	h.r.Update([]deploy.App{{Name: "k", Instances: []deploy.Instance{a.Instance, b.Instance}, Descriptor: app("k").Descriptor}})
	testkit.WaitFor(t, 5*time.Second, "dead server out of rotation", func() bool { return !h.serving("app_k", "k.v1.2") })
}

func TestReloadsUnderLoad(t *testing.T) {
	h := newHarness(t, nil)
	web := newInstance(t, "web.v1.1")
	h.r.Update([]deploy.App{app("web", web)})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	l := startLoad(h, "web.localhost", 4)
	reloads := 20
	if testing.Short() {
		reloads = 5
	}
	for i := range reloads {
		name := "extra" + itoa(i)
		h.r.Update([]deploy.App{app("web", web), app(name)})
		testkit.WaitFor(t, 10*time.Second, name+" live", func() bool {
			code, _, _, err := h.get(name + ".localhost")
			return err == nil && code == 503
		})
	}
	sent, failed := l.finish()
	t.Logf("%d reloads: %d requests, %d failed", reloads, sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed during reloads, last: %v", failed, sent, l.lastErr.Load())
	}
}

func TestInvalidConfigNeverInstalled(t *testing.T) {
	h := newHarness(t, nil)
	web := newInstance(t, "web.v1.1")
	h.r.Update([]deploy.App{app("web", web)})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	good, err := os.ReadFile(h.r.settings.path(cfgFile))
	if err != nil {
		t.Fatal(err)
	}
	h.r.mu.Lock()
	h.r.testMutate = func(b []byte) []byte { return append(b, "  this-is-not-a-keyword\n"...) }
	h.r.mu.Unlock()
	h.r.Update([]deploy.App{app("web", web), app("broken")})
	testkit.WaitFor(t, 5*time.Second, "error shown for the new app", func() bool { return h.r.Err("broken") != "" })
	if got := h.r.Err("broken"); !strings.Contains(got, "haproxy -c") {
		t.Errorf("Err(broken) = %q, want the haproxy -c error", got)
	}
	if got, _ := os.ReadFile(h.r.settings.path(cfgFile)); string(got) != string(good) {
		t.Error("the refused configuration was installed")
	}
	if !h.routesTo("web.localhost", "web.v1.1") {
		t.Error("the last good configuration stopped serving")
	}
	h.r.mu.Lock()
	h.r.testMutate = nil
	h.r.mu.Unlock()
	h.r.Update([]deploy.App{app("web", web), app("broken")})
	testkit.WaitFor(t, 5*time.Second, "error cleared", func() bool { return h.r.Err("broken") == "" })
}

func TestHAProxyKilledIsRestarted(t *testing.T) {
	h := newHarness(t, nil)
	web := newInstance(t, "web.v1.1")
	h.r.Update([]deploy.App{app("web", web)})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	old := h.masterPid()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a new master", func() bool { p := h.masterPid(); return p != 0 && p != old })
	h.client.CloseIdleConnections()
	testkit.WaitFor(t, 10*time.Second, "web routed again", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	// The worker alone killed: the master follows it and is restarted.
	worker, err := h.r.admin.Pid(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	master := h.masterPid()
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.client.CloseIdleConnections()
	testkit.WaitFor(t, 10*time.Second, "a new worker serving", func() bool {
		pid, err := h.r.admin.Pid(context.Background())
		return err == nil && pid != worker && h.routesTo("web.localhost", "web.v1.1")
	})
	t.Logf("worker %d killed: master %d, now %d", worker, master, h.masterPid())
	// A server added after the restart goes through the runtime API.
	web2 := newInstance(t, "web.v1.2")
	h.r.Update([]deploy.App{app("web", web, web2)})
	testkit.WaitFor(t, 5*time.Second, "web2 serves", func() bool { h.get("web.localhost"); return web2.hits.Load() > 0 })
}

// TestLeftoverHAProxyAdopted: a router killed with Flock leaves its
// HAProxy serving; the next router on the same Dir adopts that master
// (same pid), reloads it with its own configuration, and no request of a
// steady load fails throughout. When that router stops, HAProxy stops.
func TestLeftoverHAProxyAdopted(t *testing.T) {
	testkit.RequireHAProxy(t)
	dir := shortTempDir(t)
	web := newInstance(t, "web.v1.1")
	// A previous Flock ran on dir and was killed: its HAProxy lives on.
	first := newHarness(t, func(c *Config) { c.Dir = dir })
	first.r.Update([]deploy.App{app("web", web)})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return first.routesTo("web.localhost", "web.v1.1") })
	old := first.masterPid()
	load := startLoad(first, "web.localhost", 4)
	first.r.mu.Lock()
	first.r.keepOnExit = true
	first.r.mu.Unlock()
	first.cancel()
	<-first.done
	first.done <- nil // for the harness's own cleanup
	t.Cleanup(func() { _ = syscall.Kill(-old, syscall.SIGKILL) })
	n := web.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the leftover haproxy serving", func() bool { return web.hits.Load() > n+50 })

	web2 := newInstance(t, "web.v1.2")
	second := newHarnessWith(t, func(c *Config) {
		c.Dir, c.HTTPAddr, c.StatsAddr = dir, first.cfg.HTTPAddr, first.cfg.StatsAddr
	}, func(r *Router) { r.Update([]deploy.App{app("web", web, web2)}) })
	if p := second.masterPid(); p != old {
		t.Errorf("pid file names %d, want the adopted master %d", p, old)
	}
	testkit.WaitFor(t, 5*time.Second, "web2 (known only to the new router) serves", func() bool { return web2.hits.Load() > 50 })
	// Runtime changes reach the adopted master.
	second.r.Update([]deploy.App{app("web", web2)})
	testkit.WaitFor(t, 5*time.Second, "only web2", func() bool { return !second.serving("app_web", "web.v1.1") })
	sent, failed := load.finish()
	t.Logf("across the adoption: %d requests, %d failed", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, load.lastErr.Load())
	}

	// Stopping the router stops the adopted HAProxy. (Its zombies are
	// this test's to reap, through the first router's waiter: wait.)
	second.cancel()
	if err := <-second.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	second.done <- nil // for the harness's own cleanup
	testkit.WaitFor(t, 10*time.Second, "the adopted haproxy stopped", func() bool { return syscall.Kill(-old, 0) != nil })
}

func TestPortInUseIsAClearError(t *testing.T) {
	testkit.RequireHAProxy(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Without SO_REUSEPORT on our listener, HAProxy cannot bind next to it.
	r, err := New(Config{Dir: shortTempDir(t), HTTPAddr: l.Addr().String(), StatsAddr: testkit.FreeAddr(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "--http "+l.Addr().String()+" is in use by another process") {
		t.Errorf("Run() = %v, want an error naming the busy address", err)
	}
}

// TestSecondRouterOnTheSamePortIsAClearError: a second Flock (another
// data dir) on the first one's HTTP port fails to start, naming the port,
// instead of binding beside the first HAProxy (SO_REUSEPORT) and sharing
// its traffic; the first keeps serving.
func TestSecondRouterOnTheSamePortIsAClearError(t *testing.T) {
	first := newHarness(t, nil)
	first.r.Update([]deploy.App{app("web", newInstance(t, "web.v1.1"))})
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return first.routesTo("web.localhost", "web.v1.1") })
	second, err := New(Config{Dir: shortTempDir(t), HTTPAddr: first.r.cfg.HTTPAddr, StatsAddr: testkit.FreeAddr(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = second.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "--http "+first.r.cfg.HTTPAddr+" is in use by another process") {
		t.Errorf("second router's Run() = %v, want an error naming --http %s", err, first.r.cfg.HTTPAddr)
	}
	for range 10 {
		if !first.routesTo("web.localhost", "web.v1.1") {
			t.Fatal("the first router no longer answers for web on its port")
		}
	}
}

// TestChurnKeepsHAProxyUp replays scale-ups, drains, a new release and an
// app removed and re-added, several times on the same worker. Debian's
// HAProxy 2.6.12 crashed on this with "del server"; parked servers avoid
// that command.
func TestChurnKeepsHAProxyUp(t *testing.T) {
	h := newHarness(t, nil)
	master := h.masterPid()
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for i := range rounds {
		a1 := newInstance(t, "web.v1.1")
		h.r.Update([]deploy.App{app("web", a1)})
		testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
		l := startLoad(h, "web.localhost", 4)
		a2, a3 := newInstance(t, "web.v1.2"), newInstance(t, "web.v1.3")
		h.r.Update([]deploy.App{app("web", a1, a2, a3)})
		testkit.WaitFor(t, 5*time.Second, "3 serve", func() bool { return a2.hits.Load() > 10 && a3.hits.Load() > 10 })
		for _, in := range []*instance{a2, a3} {
			if err := h.r.Drain(context.Background(), "web", in.Instance); err != nil {
				t.Fatal(err)
			}
			in.srv.Close()
		}
		h.r.Update([]deploy.App{app("web", a1)})
		v2 := newInstance(t, "web.v2.1")
		h.r.Update([]deploy.App{app("web", a1, v2)})
		testkit.WaitFor(t, 5*time.Second, "v2 serves", func() bool { return v2.hits.Load() > 10 })
		if err := h.r.Drain(context.Background(), "web", a1.Instance); err != nil {
			t.Fatal(err)
		}
		a1.srv.Close()
		h.r.Update([]deploy.App{app("web", v2)})
		n := v2.hits.Load()
		testkit.WaitFor(t, 5*time.Second, "only v2", func() bool { return v2.hits.Load() > n+50 })
		if sent, failed := l.finish(); failed != 0 {
			t.Errorf("round %d: %d of %d requests failed, last: %v", i, failed, sent, l.lastErr.Load())
		}
		h.r.Update(nil)
		v2.srv.Close()
		if p := h.masterPid(); p != master {
			t.Fatalf("haproxy restarted at round %d (master %d, was %d)", i, p, master)
		}
	}
}

// TestFileCatchesUp checks that servers added through the runtime API
// reach haproxy.cfg once changes quiet down, so a restart starts from them.
func TestFileCatchesUp(t *testing.T) {
	h := newHarness(t, nil)
	a := newInstance(t, "f.v1.1")
	h.r.Update([]deploy.App{app("f")})
	testkit.WaitFor(t, 5*time.Second, "f at zero", func() bool { code, _, _, _ := h.get("f.localhost"); return code == 503 })
	h.r.Update([]deploy.App{app("f", a)})
	testkit.WaitFor(t, 5*time.Second, "f routed", func() bool { return h.routesTo("f.localhost", "f.v1.1") })
	name := serverName(a.Instance)
	testkit.WaitFor(t, persistMaxWait+5*time.Second, "server written to haproxy.cfg", func() bool {
		b, err := os.ReadFile(h.r.settings.path(cfgFile))
		return err == nil && strings.Contains(string(b), "server "+name+" ")
	})
}
