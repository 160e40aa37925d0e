package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router/hap"
)

// harness runs a Router with a real HAProxy on free ports.
type harness struct {
	tb     testing.TB
	r      *Router
	cfg    Config
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func newHarness(tb testing.TB, mod func(*Config)) *harness {
	tb.Helper()
	return newHarnessWith(tb, mod, nil)
}

// newHarnessWith is newHarness with a hook that runs between New and Run
// (as cmd/flock hands the router every app before it runs it).
func newHarnessWith(tb testing.TB, mod func(*Config), before func(*Router)) *harness {
	tb.Helper()
	testkit.RequireHAProxy(tb)
	cfg := Config{
		Dir:            shortTempDir(tb),
		HTTPAddr:       testkit.FreeAddr(tb),
		StatsAddr:      testkit.FreeAddr(tb),
		Domain:         "localhost",
		ReloadDebounce: 20 * time.Millisecond,
		ReloadMaxWait:  200 * time.Millisecond,
		DrainTimeout:   5 * time.Second,
		HardStopAfter:  10 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{tb: tb, r: r, cfg: r.cfg, cancel: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if before != nil {
		before(r)
	}
	go func() { h.done <- r.Run(ctx) }()
	tb.Cleanup(h.stop)
	select {
	case <-r.Ready():
	case err := <-h.done:
		h.done <- nil
		tb.Fatalf("router stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("router not ready after 30s")
	}
	return h
}

// shortTempDir is a temp dir with a path short enough for Unix sockets.
func shortTempDir(tb testing.TB) string {
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// stop ends Run and checks that no HAProxy process is left behind.
func (h *harness) stop() {
	pid := h.masterPid()
	// Idle keep-alive connections would hold HAProxy's soft stop.
	h.client.CloseIdleConnections()
	if os.Getenv("DEBUG_SESS") != "" {
		out, _ := h.r.admin.Cmd(context.Background(), "show sess")
		h.tb.Logf("sessions at stop:\n%s", out)
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.tb.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.tb.Errorf("Run did not return 30s after cancel")
	}
	if pid > 0 {
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			h.tb.Errorf("haproxy process group %d still alive after Run returned", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
	h.client.CloseIdleConnections()
}

func (h *harness) masterPid() int {
	b, err := os.ReadFile(h.r.settings.path(pidFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// get sends GET / with the given Host header and returns status and body.
func (h *harness) get(host string) (int, string, http.Header, error) {
	req, err := http.NewRequest("GET", "http://"+h.cfg.HTTPAddr+"/", nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = host
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// routesTo reports whether a request for host is answered by body want.
func (h *harness) routesTo(host, want string) bool {
	code, body, _, err := h.get(host)
	return err == nil && code == 200 && body == want
}

// instance is an app instance: a Go HTTP server on 127.0.0.1 that answers
// "<id>" on / and 200 on /health.
type instance struct {
	deploy.Instance
	srv      *http.Server
	hits     atomic.Int64
	answered atomic.Int64 // requests on / whose handler has returned
	delay    atomic.Int64 // ns each request on / waits
	mu       sync.Mutex
	apps     []string // X-Flock-App values seen
}

func newInstance(tb testing.TB, id string) *instance {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	in := &instance{Instance: deploy.Instance{ID: id, Release: "v1", Host: "127.0.0.1", Port: port, Ports: []int{port}, Healthy: true}}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		in.hits.Add(1)
		in.mu.Lock()
		in.apps = append(in.apps, req.Header.Get("X-Flock-App"))
		in.mu.Unlock()
		defer in.answered.Add(1)
		if d := in.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		io.WriteString(w, id)
	})
	in.srv = &http.Server{Handler: mux}
	go in.srv.Serve(l)
	tb.Cleanup(func() { in.srv.Close() })
	return in
}

func (in *instance) seenApps() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.apps...)
}

// app builds a deploy.App with an HTTP check on /health every second.
func app(name string, ins ...*instance) deploy.App {
	a := deploy.App{Name: name, Descriptor: deploy.Descriptor{Checks: []deploy.Check{{Path: "/health", IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 3}}}}
	for _, in := range ins {
		a.Instances = append(a.Instances, in.Instance)
	}
	return a
}

// load sends requests for host from n goroutines over keep-alive
// connections until stopped, counting requests and failures.
type load struct {
	client       *http.Client
	sent, failed atomic.Int64
	lastErr      atomic.Value
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startLoad(h *harness, host string, n int) *load {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	l := &load{client: client, stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+h.cfg.HTTPAddr+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				l.sent.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.lastErr.Store(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("status %d: %.100s", resp.StatusCode, body))
				}
			}
		}()
	}
	h.tb.Cleanup(func() { l.finish(); client.CloseIdleConnections() })
	return l
}

// finish stops the load and returns requests sent and failed.
func (l *load) finish() (sent, failed int64) {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.client.CloseIdleConnections() // they would hold HAProxy's soft stop
	return l.sent.Load(), l.failed.Load()
}

// currentStats is the current HAProxy worker's "show stat" CSV.
func (h *harness) currentStats() ([]byte, error) {
	ws, err := h.r.statsAll(context.Background(), "show stat")
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.Current {
			return w.CSV, nil
		}
	}
	return nil, errors.New("no current HAProxy worker")
}

// serving reports whether a server of backend be whose name starts with
// prefix is in rotation (not in maintenance) in the current worker.
func (h *harness) serving(be, prefix string) bool {
	csv, err := h.currentStats()
	if err != nil {
		return true
	}
	rows, err := hap.ParseBytes(csv)
	if err != nil {
		return true
	}
	for _, row := range rows {
		if row.Proxy == be && strings.HasPrefix(row.Server, prefix) && !strings.HasPrefix(row.Status, "MAINT") {
			return true
		}
	}
	return false
}
