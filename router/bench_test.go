package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// manyApps returns n apps, app00000…, each with one healthy instance on in.
func manyApps(n int, in *instance) []deploy.App {
	apps := make([]deploy.App, n)
	for i := range apps {
		name := fmt.Sprintf("app%05d", i)
		a := app(name)
		a.Descriptor.Checks[0].IntervalSeconds = 30
		if in != nil {
			i := in.Instance
			i.ID = name + ".v1.1"
			a.Instances = []deploy.Instance{i}
		}
		apps[i] = a
	}
	return apps
}

// BenchmarkRender10kApps renders the configuration of 10,000 apps from
// scratch (ms), and again after one app changed (ms-one-change).
func BenchmarkRender10kApps(b *testing.B) {
	apps := manyApps(10000, &instance{Instance: deploy.Instance{Host: "127.0.0.1", Port: 31000, Healthy: true}})
	s := settings{Dir: "/run/flock", HTTPAddr: "127.0.0.1:8000", StatsAddr: "127.0.0.1:9090", WakerAddr: "127.0.0.1:8001", HardStopAfter: time.Minute}
	var cold, warm time.Duration
	for b.Loop() {
		start := time.Now()
		rend, err := newRenderer(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rend.render(build(apps, "localhost", nil, nil)); err != nil {
			b.Fatal(err)
		}
		cold += time.Since(start)
		apps[5000].Instances[0].Port++
		start = time.Now()
		if _, err := rend.render(build(apps, "localhost", nil, nil)); err != nil {
			b.Fatal(err)
		}
		warm += time.Since(start)
	}
	b.ReportMetric(float64(cold.Microseconds())/1000/float64(b.N), "ms")
	b.ReportMetric(float64(warm.Microseconds())/1000/float64(b.N), "ms-one-change")
}

// tenK starts a router serving 10,000 apps, all on one instance.
func tenK(b testing.TB) (*harness, *instance, []deploy.App) {
	b.Helper()
	h := newHarness(b, func(c *Config) { c.ReloadDebounce, c.ReloadMaxWait = time.Millisecond, 10*time.Millisecond })
	in := newInstance(b, "shared")
	apps := manyApps(10000, in)
	h.r.Update(apps)
	testkit.WaitFor(b, 50*time.Second, "10k apps routed", func() bool { return h.routesTo("app09999.localhost", "shared") })
	return h, in, apps
}

// BenchmarkReload10kApps adds an app to 10,000 and measures the time from
// Update to the new app answering: render, haproxy -c, reload, new worker.
func BenchmarkReload10kApps(b *testing.B) {
	h, _, apps := tenK(b)
	var total time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("extra%d", i)
		i++
		start := time.Now()
		h.r.Update(append(apps, app(name)))
		testkit.WaitFor(b, 30*time.Second, name+" routed", func() bool {
			code, _, _, err := h.get(name + ".localhost")
			return err == nil && code == 503
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms")
}

// BenchmarkHealthyToRouted measures the time from Update with a new healthy
// instance of an app at zero instances to its first routed 200.
func BenchmarkHealthyToRouted(b *testing.B) {
	h := newHarness(b, nil)
	h.r.Update([]deploy.App{app("web")})
	testkit.WaitFor(b, 5*time.Second, "web at zero", func() bool { code, _, _, _ := h.get("web.localhost"); return code == 503 })
	var total, worst time.Duration
	i := 0
	for b.Loop() {
		in := newInstance(b, fmt.Sprintf("web.v1.%d", i))
		i++
		start := time.Now()
		h.r.Update([]deploy.App{app("web", in)})
		testkit.WaitFor(b, 5*time.Second, "routed", func() bool { return h.routesTo("web.localhost", in.ID) })
		took := time.Since(start)
		total, worst = total+took, max(worst, took)
		b.StopTimer()
		h.r.Update([]deploy.App{app("web")})
		ok := false
		for range 500 {
			if code, _, _, _ := h.get("web.localhost"); code == 503 {
				ok = true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !ok {
			code, body, _, err := h.get("web.localhost")
			csv, _ := h.currentStats()
			b.Fatalf("round %d: %d %q %v\n%s", i, code, body, err, csv)
		}
		in.srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst")
}

// BenchmarkRouteFirstVsLast10k compares requests per second to the first
// and the last of 10,000 apps' hosts (Go load generator, keep-alive). Each
// connection alternates the two hosts request by request, so that whatever
// else the machine does slows both alike; a host's rate is the number of
// connections over its mean response time.
func BenchmarkRouteFirstVsLast10k(b *testing.B) {
	h, _, _ := tenK(b)
	hosts := [2]string{"app00000.localhost", "app09999.localhost"}
	const conns = 8
	var spent [2]atomic.Int64 // ns
	var count [2]atomic.Int64
	for b.Loop() {
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
		deadline := time.Now().Add(3 * time.Second)
		for c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; time.Now().Before(deadline); i++ {
					k := i % 2
					req, _ := http.NewRequest("GET", "http://"+h.cfg.HTTPAddr+"/", nil)
					req.Host = hosts[k]
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					spent[k].Add(int64(time.Since(start)))
					count[k].Add(1)
				}
			}()
		}
		wg.Wait()
		client.CloseIdleConnections()
	}
	rate := func(k int) float64 {
		mean := float64(spent[k].Load()) / float64(count[k].Load()) / 1e9
		return conns / mean
	}
	f, l := rate(0), rate(1)
	b.ReportMetric(f, "req/s-first")
	b.ReportMetric(l, "req/s-last")
	b.ReportMetric(100*(l-f)/f, "%diff")
}

// BenchmarkReloadsUnderLoad performs 50 reloads (an app added or removed
// each time) while a Go load generator sends requests to another app.
func BenchmarkReloadsUnderLoad(b *testing.B) {
	h := newHarness(b, nil)
	web := newInstance(b, "web.v1.1")
	h.r.Update([]deploy.App{app("web", web)})
	testkit.WaitFor(b, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	var sent, failed int64
	for b.Loop() {
		l := startLoad(h, "web.localhost", 8)
		for i := range 50 {
			apps := []deploy.App{app("web", web)}
			if i%2 == 0 {
				apps = append(apps, app("extra"))
			}
			h.r.Update(apps)
			testkit.WaitFor(b, 10*time.Second, "reload", func() bool {
				code, _, _, err := h.get("extra.localhost")
				return err == nil && (code == 503) == (i%2 == 0)
			})
		}
		testkit.WaitFor(b, 30*time.Second, "20,000 requests sent", func() bool { return l.sent.Load() >= 20000 })
		s, f := l.finish()
		sent, failed = sent+s, failed+f
	}
	b.ReportMetric(float64(sent)/float64(b.N), "requests")
	b.ReportMetric(float64(failed)/float64(b.N), "failed")
}

// BenchmarkScaleUnderLoad scales an app 1 → 3 → 1 and rolls out a new
// release under load, and reports failed requests.
func BenchmarkScaleUnderLoad(b *testing.B) {
	h := newHarness(b, nil)
	var sent, failed int64
	for b.Loop() {
		// The same IDs each round, on new ports: as a scheduler that
		// restarts instances under their old names.
		a1 := newInstance(b, "web.v1.1")
		h.r.Update([]deploy.App{app("web", a1)})
		testkit.WaitFor(b, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
		l := startLoad(h, "web.localhost", 8)
		a2, a3 := newInstance(b, "web.v1.2"), newInstance(b, "web.v1.3")
		h.r.Update([]deploy.App{app("web", a1, a2, a3)})
		testkit.WaitFor(b, 5*time.Second, "3 serve", func() bool { return a2.hits.Load() > 50 && a3.hits.Load() > 50 })
		for _, in := range []*instance{a2, a3} {
			if err := h.r.Drain(context.Background(), "web", in.Instance); err != nil {
				b.Fatal(err)
			}
			in.srv.Close()
		}
		h.r.Update([]deploy.App{app("web", a1)})
		n := a1.hits.Load()
		testkit.WaitFor(b, 5*time.Second, "1 serves", func() bool { return a1.hits.Load() > n+200 })
		v2 := newInstance(b, "web.v2.1")
		h.r.Update([]deploy.App{app("web", a1, v2)})
		testkit.WaitFor(b, 5*time.Second, "v2 serves", func() bool { return v2.hits.Load() > 50 })
		if err := h.r.Drain(context.Background(), "web", a1.Instance); err != nil {
			b.Fatal(err)
		}
		a1.srv.Close()
		h.r.Update([]deploy.App{app("web", v2)})
		n = v2.hits.Load()
		testkit.WaitFor(b, 5*time.Second, "only v2", func() bool { return v2.hits.Load() > n+200 })
		s, f := l.finish()
		if f > 0 {
			b.Logf("round: %d of %d failed, last: %v", f, s, l.lastErr.Load())
		}
		sent, failed = sent+s, failed+f
		h.r.Update(nil)
		v2.srv.Close()
	}
	b.ReportMetric(float64(sent)/float64(b.N), "requests")
	b.ReportMetric(float64(failed)/float64(b.N), "failed")
}
