package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router"
)

// echo is an app instance (or the waker, or the ACME handler): it answers
// "<name> <X-Forwarded-Proto> <X-Forwarded-For> <X-Flock-App> <path>".
func echo(tb testing.TB, name string) (addr string, port int) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s %s %s", name, r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-For"),
			r.Header.Get("X-Flock-App"), r.URL.RequestURI())
	})}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return l.Addr().String(), l.Addr().(*net.TCPAddr).Port
}

func appWith(name string, ports ...int) deploy.App {
	a := deploy.App{Name: name}
	for i, p := range ports {
		a.Instances = append(a.Instances, deploy.Instance{ID: name + ".v1." + strconv.Itoa(i+1), Release: "v1", Host: "127.0.0.1", Port: p, Ports: []int{p}, Healthy: true})
	}
	return a
}

// rig is a router with HTTPS on a real HAProxy and a certificate manager.
type rig struct {
	tb      testing.TB
	dir     string // the data dir
	rt      *router.Router
	cfg     router.Config
	mgr     *Manager
	ca      *LocalCA
	stopRT  func()
	stopMgr func()
}

// shortDir is a temp dir with a path short enough for Unix sockets.
func shortDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("", "ct")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newRig starts the router on dir with apps, then the manager with mod
// applied to its Config.
func newRig(tb testing.TB, dir string, cfg router.Config, apps []deploy.App, mod func(*Config)) *rig {
	tb.Helper()
	testkit.RequireHAProxy(tb)
	ca, err := OpenLocalCA(dir)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Dir = filepath.Join(dir, "haproxy")
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr, cfg.HTTPSAddr, cfg.StatsAddr = testkit.FreeAddr(tb), testkit.FreeAddr(tb), testkit.FreeAddr(tb)
	}
	cfg.Domain, cfg.Logger = "localhost", quiet()
	cfg.ReloadDebounce, cfg.ReloadMaxWait, cfg.DrainTimeout = 20*time.Millisecond, 200*time.Millisecond, 2*time.Second
	rt, err := router.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	rt.Update(apps)
	r := &rig{tb: tb, dir: dir, rt: rt, cfg: cfg, ca: ca}
	r.stopRT = runPart(tb, "router", rt.Run)
	select {
	case <-rt.Ready():
	case <-time.After(3 * time.Minute): // 10,000 certificates take a while to load
		tb.Fatal("router not ready after 3m")
	}
	if mod == nil {
		return r // the router alone
	}
	mc := Config{Dir: filepath.Join(dir, "certs"), Local: ca, Logger: quiet()}
	mod(&mc)
	r.mgr, err = New(mc, rt)
	if err != nil {
		tb.Fatal(err)
	}
	r.stopMgr = runPart(tb, "manager", r.mgr.Run)
	return r
}

// runPart runs a Run method until the returned stop is called (at the
// latest by the test's cleanup).
func runPart(tb testing.TB, name string, run func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("%s did not stop 30s after cancel", name)
		}
	}
	tb.Cleanup(stop)
	return stop
}

func (r *rig) stop() {
	if r.stopMgr != nil {
		r.stopMgr()
	}
	r.stopRT()
}

// client trusts ca.pem alone and sends every connection to the HTTPS
// address, whatever the URL's host: as curl --cacert ca.pem --resolve.
func (r *rig) client() *http.Client {
	pem, err := os.ReadFile(filepath.Join(r.dir, CAFile))
	if err != nil {
		r.tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return httpsClient(roots, r.cfg.HTTPSAddr)
}

func httpsClient(roots *x509.CertPool, addr string) *http.Client {
	var d net.Dialer
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		},
	}
}

// answer is what one request got.
type answer struct {
	code   int
	body   string
	proto  string
	names  []string // the server certificate's DNS names
	serial string   // and its serial number
	loc    string
}

func get(c *http.Client, url string) (answer, error) {
	resp, err := c.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, body: string(b), proto: resp.Proto, loc: resp.Header.Get("Location")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		a.names = resp.TLS.PeerCertificates[0].DNSNames
		a.serial = resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	return a, err
}

// master sends a command to HAProxy's master socket. The master is deaf
// for a moment while it re-executes itself for a reload: the dial is
// retried for up to 5 s.
func (r *rig) master(cmd string) string {
	var conn net.Conn
	testkit.WaitFor(r.tb, 5*time.Second, "the master socket", func() bool {
		var err error
		conn, err = net.Dial("unix", filepath.Join(r.cfg.Dir, "master.sock"))
		return err == nil
	})
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, cmd+";quit\n")
	b, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, io.EOF) {
		r.tb.Fatal(err)
	}
	return string(b)
}

// worker returns the current worker's pid and the master's reload count,
// from "show proc": a certificate installed by a reload would change
// both.
func (r *rig) worker() (pid, reloads string) {
	out := r.master("show proc")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "master" {
			reloads = f[2]
		}
		if len(f) >= 3 && f[1] == "worker" && pid == "" {
			pid = f[0]
		}
	}
	if pid == "" || reloads == "" {
		r.tb.Fatalf("show proc: no worker or master in %q", out)
	}
	return pid, reloads
}
