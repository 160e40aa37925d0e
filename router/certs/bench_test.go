package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router"
)

// BenchmarkNewAppToHTTPS measures, with the local CA, the time from a new
// app reaching the router (Update, as after its deploy) to its first
// HTTPS answer with its own certificate (ms): the backend's reload, the
// issue, and the certificate installed through the runtime API. It also
// measures a new host on an existing app (ms-new-domain), where the
// certificate is all there is to wait for, and, for comparison, the
// time to the new app's first answer over plain HTTP (ms-http).
func BenchmarkNewAppToHTTPS(b *testing.B) {
	_, port := echo(b, "app")
	r := newRig(b, shortDir(b), router.Config{}, nil, func(*Config) {})
	c := r.client()
	var apps []deploy.App
	var app, domain, plain time.Duration
	httpc := httpsClient(nil, r.cfg.HTTPAddr)
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("app%d", i)
		i++
		a := appWith(name, port)
		apps = append(apps, a)
		start := time.Now()
		r.rt.Update(apps)
		testkit.WaitFor(b, 10*time.Second, "http://"+name+".localhost", func() bool {
			a, err := get(httpc, "http://"+name+".localhost/")
			return err == nil && a.code == 200
		})
		plain += time.Since(start)
		servedOwn(b, c, name+".localhost")
		app += time.Since(start)

		b.StopTimer()
		apps[len(apps)-1].Domains = []string{name + ".example.test"}
		b.StartTimer()
		start = time.Now()
		r.rt.Update(apps)
		servedOwn(b, c, name+".example.test")
		domain += time.Since(start)
	}
	b.ReportMetric(float64(app.Microseconds())/1000/float64(b.N), "ms")
	b.ReportMetric(float64(domain.Microseconds())/1000/float64(b.N), "ms-new-domain")
	b.ReportMetric(float64(plain.Microseconds())/1000/float64(b.N), "ms-http")
}

// servedOwn polls until host answers over HTTPS with its own certificate.
func servedOwn(b testing.TB, c *http.Client, host string) {
	testkit.WaitFor(b, 10*time.Second, "https://"+host, func() bool {
		a, err := get(c, "https://"+host+"/")
		return err == nil && a.code == 200 && slices.Equal(a.names, []string{host})
	})
}

// BenchmarkTLSHandshakes measures full TLS handshakes per second through
// HAProxy (ECDSA P-256 certificates from the local CA, TLS 1.3, no
// session resumption), from 8 connections at a time.
func BenchmarkTLSHandshakes(b *testing.B) {
	_, port := echo(b, "app")
	r := newRig(b, shortDir(b), router.Config{}, []deploy.App{appWith("hello", port)}, func(*Config) {})
	servedOwn(b, r.client(), "hello.localhost")
	hs := handshaker(b, r, []string{"hello.localhost"})
	var shakes rates
	for b.Loop() {
		shakes.add(measure(b, 1, 3*time.Second, hs))
	}
	b.ReportMetric(shakes.rate(0), "handshakes/s")
}

// handshaker returns a func that makes one full handshake with host k,
// trusting ca.pem alone.
func handshaker(b *testing.B, r *rig, hosts []string) func(k int) error {
	pem, err := os.ReadFile(filepath.Join(r.dir, CAFile))
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return func(k int) error {
		conn, err := tls.Dial("tcp", r.cfg.HTTPSAddr, &tls.Config{RootCAs: roots, ServerName: hosts[k], NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// conns is how many goroutines measure runs.
const conns = 8

// rates sums, per host, the time spent and the operations done.
type rates struct{ spent, count []int64 }

func (r *rates) add(spent, count []int64) {
	if r.spent == nil {
		r.spent, r.count = make([]int64, len(spent)), make([]int64, len(count))
	}
	for k := range spent {
		r.spent[k] += spent[k]
		r.count[k] += count[k]
	}
}

// rate is host k's operations per second: conns over its mean time.
func (r *rates) rate(k int) float64 {
	return conns / (float64(r.spent[k]) / float64(r.count[k]) / 1e9)
}

// measure runs do for each of n hosts in turn, from conns goroutines, for
// d, and returns the time spent (ns) and the operations done per host.
// Alternating hosts request by request makes whatever else the machine
// does slow them alike.
func measure(b *testing.B, n int, d time.Duration, do func(k int) error) (spent, count []int64) {
	sp, ct := make([]atomic.Int64, n), make([]atomic.Int64, n)
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for g := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				k := i % n
				start := time.Now()
				if err := do(k); err != nil {
					b.Error(err)
					return
				}
				sp[k].Add(int64(time.Since(start)))
				ct[k].Add(1)
			}
		}()
	}
	wg.Wait()
	spent, count = make([]int64, n), make([]int64, n)
	for k := range n {
		spent[k], count[k] = sp[k].Load(), ct[k].Load()
	}
	return spent, count
}

// BenchmarkHTTPSRouteFirstVsLast10k serves 10,000 apps over HTTPS, each
// with its own certificate, and compares the first and the last app's
// host: requests per second over keep-alive HTTP/2 connections
// (req/s-first, req/s-last) and full handshakes per second, where SNI
// picks one certificate of 10,000 (hs/s-first, hs/s-last).
func BenchmarkHTTPSRouteFirstVsLast10k(b *testing.B) {
	const n = 10000
	_, port := echo(b, "app")
	dir := shortDir(b)
	ca, err := OpenLocalCA(dir)
	if err != nil {
		b.Fatal(err)
	}
	// The certificates are issued and listed beforehand, as a restart
	// finds them: HAProxy loads all of them at start.
	st := store{dir: filepath.Join(dir, "certs")}
	apps := make([]deploy.App, n)
	var list strings.Builder
	for i := range apps {
		name := fmt.Sprintf("app%05d", i)
		apps[i] = appWith(name, port)
		certPEM, keyPEM, err := ca.Issue(context.Background(), name+".localhost")
		if err != nil {
			b.Fatal(err)
		}
		c, err := st.save(name+".localhost", certPEM, keyPEM)
		if err != nil {
			b.Fatal(err)
		}
		list.WriteString(c.file + "\n")
	}
	os.MkdirAll(filepath.Join(dir, "haproxy"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "haproxy", "crt-list"), []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	r := newRig(b, dir, router.Config{}, apps, func(*Config) {})
	hosts := []string{"app00000.localhost", fmt.Sprintf("app%05d.localhost", n-1)}
	c := r.client()
	for _, h := range hosts {
		servedOwn(b, c, h)
	}
	clients := []*http.Client{r.client(), r.client()}
	get := func(k int) error {
		resp, err := clients[k].Get("https://" + hosts[k] + "/")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	hs := handshaker(b, r, hosts)
	var reqs, shakes rates
	for b.Loop() {
		reqs.add(measure(b, len(hosts), 3*time.Second, get))
		shakes.add(measure(b, len(hosts), 3*time.Second, hs))
	}
	f, l := reqs.rate(0), reqs.rate(1)
	b.ReportMetric(f, "req/s-first")
	b.ReportMetric(l, "req/s-last")
	b.ReportMetric(100*(l-f)/f, "%diff")
	f, l = shakes.rate(0), shakes.rate(1)
	b.ReportMetric(f, "hs/s-first")
	b.ReportMetric(l, "hs/s-last")
	b.ReportMetric(100*(l-f)/f, "%diff-hs")
}

// BenchmarkFirstStart1000Hosts measures a first start with --https: 1,000
// routed hosts and no certificate yet. From the manager's start to every
// certificate issued and installed in the running HAProxy (certs/s,
// s-all), and meanwhile how long a new instance of another app waits to
// be routed (ms-routing-while), which the installs must not hold up.
func BenchmarkFirstStart1000Hosts(b *testing.B) {
	const n = 1000
	_, port := echo(b, "app")
	for b.Loop() {
		b.StopTimer()
		apps := make([]deploy.App, n, n+1)
		for i := range apps {
			apps[i] = appWith(fmt.Sprintf("app%05d", i), port)
		}
		apps = append(apps, appWith("late"))
		dir := shortDir(b)
		r := newRig(b, dir, router.Config{}, apps, nil)
		httpc := httpsClient(nil, r.cfg.HTTPAddr)
		testkit.WaitFor(b, time.Minute, "1000 apps routed", func() bool {
			a, err := get(httpc, fmt.Sprintf("http://app%05d.localhost/", n-1))
			return err == nil && a.code == 200
		})
		mgr, err := New(Config{Dir: filepath.Join(dir, "certs"), Local: r.ca, Logger: quiet()}, r.rt)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		stop := runPart(b, "manager", mgr.Run)
		// An instance arrives while the certificates go in.
		time.Sleep(50 * time.Millisecond)
		apps[n] = appWith("late", port)
		routeStart := time.Now()
		r.rt.Update(apps)
		testkit.WaitFor(b, time.Minute, "late routed", func() bool {
			a, err := get(httpc, "http://late.localhost/")
			return err == nil && a.code == 200
		})
		routing := time.Since(routeStart)
		testkit.WaitFor(b, 5*time.Minute, "1001 certificates listed", func() bool {
			list, _ := os.ReadFile(filepath.Join(dir, "haproxy", "crt-list"))
			return strings.Count(string(list), "\n") == n+1
		})
		all := time.Since(start)
		b.StopTimer()
		servedOwn(b, r.client(), "app00000.localhost")
		stop()
		r.stop()
		b.ReportMetric(float64(n+1)/all.Seconds(), "certs/s")
		b.ReportMetric(all.Seconds(), "s-all")
		b.ReportMetric(float64(routing.Microseconds())/1000, "ms-routing-while")
		b.StartTimer()
	}
}
