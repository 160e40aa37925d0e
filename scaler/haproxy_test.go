package scaler

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/router/hap"
)

// serve runs h on a fresh loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// proxy is HAProxy as Flock runs it: a real router.Router routing
// app1.localhost to one instance, with the waker as backup server. The
// scaler reads its stats the way cmd/flock feeds them: every worker's
// "show stat" through the master socket (Router.Workers).
type proxy struct {
	rt    *router.Router
	front string // the router's HTTP address
	apps  []deploy.App
}

func startProxy(t *testing.T, instance, waker string) *proxy {
	t.Helper()
	testkit.RequireHAProxy(t)
	dir, err := os.MkdirTemp("", "sc") // short: it holds unix sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host, portText, _ := net.SplitHostPort(instance)
	port, _ := strconv.Atoi(portText)
	p := &proxy{front: testkit.FreeAddr(t), apps: []deploy.App{{
		Name: "app1", State: deploy.StateRunning, Desired: 1,
		Descriptor: deploy.Descriptor{Checks: []deploy.Check{{Path: "/", IntervalSeconds: 1}}},
		Instances:  []deploy.Instance{{ID: "task1", Release: "v1", Host: host, Port: port, Ports: []int{port}, Healthy: true}},
	}}}
	rt, err := router.New(router.Config{Dir: dir, HTTPAddr: p.front, StatsAddr: testkit.FreeAddr(t), WakerAddr: waker,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.rt = rt
	rt.Update(p.apps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := rt.WaitRouted(wctx, "app1"); err != nil {
		t.Fatalf("app1 not routed: %v", err)
	}
	return p
}

// stats is every worker's stats, concatenated (hap.ParseBytes merges
// them).
func (p *proxy) stats(ctx context.Context) ([]byte, error) {
	ws, err := p.rt.Workers(ctx)
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, w := range ws {
		all = append(all, w.CSV...)
	}
	return all, nil
}

// current is the stats of the current worker alone.
func (p *proxy) current(ctx context.Context) ([]byte, error) {
	ws, err := p.rt.Workers(ctx)
	if err != nil {
		return nil, err
	}
	return ws[0].CSV, nil
}

// workers returns the current worker's pid and how many old ones serve.
func (p *proxy) workers() (int, int) {
	ws, err := p.rt.Workers(context.Background())
	if err != nil {
		return 0, 0
	}
	return ws[0].Pid, len(ws) - 1
}

// reload makes the router reload HAProxy (a new app means a new backend)
// and waits until the new worker runs and the old ones without
// connections are gone (oldLeft of them remain).
func (p *proxy) reload(t *testing.T, oldLeft int) {
	t.Helper()
	before, _ := p.workers()
	p.apps = append(p.apps, deploy.App{Name: "pad" + strconv.Itoa(len(p.apps)), State: deploy.StateStopped})
	p.rt.Update(p.apps)
	testkit.WaitFor(t, 10*time.Second, "the reload", func() bool {
		cur, old := p.workers()
		return cur != 0 && cur != before && old == oldLeft
	})
}

// get sends GET path to app1 through HAProxy.
func (p *proxy) get(client *http.Client, path string) (*http.Response, error) {
	req, err := http.NewRequest("GET", "http://"+p.front+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = "app1.localhost"
	return client.Do(req)
}

// backendRow reads app_app1's BACKEND row from a stats source.
func backendRow(t *testing.T, stats func(context.Context) ([]byte, error)) Row {
	t.Helper()
	b, err := stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := hap.ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Proxy == "app_app1" && r.Server == Backend {
			return r
		}
	}
	t.Fatalf("no app_app1 BACKEND row in %s", b)
	return Row{}
}

// TestRealHAProxy runs the scaler on a real HAProxy: traffic keeps the
// app awake, a reload is neither activity nor idleness, no traffic for
// the idle time puts the app to sleep, and a stream held open keeps it
// awake across reloads (seen through the old workers, Router.Workers).
func TestRealHAProxy(t *testing.T) {
	const idleFor = 3 * time.Second
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	instance := serve(t, mux)
	wakerAddr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "waker\n") }))
	h := startProxy(t, instance, wakerAddr)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(t *testing.T) {
		t.Helper()
		resp, err := h.get(client, "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET through haproxy: %s", resp.Status)
		}
	}

	p := newFakePlatform(deploy.App{Name: "app1", State: deploy.StateRunning, Desired: 1, IdleTimeout: idleFor})
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tick := func(t *testing.T) {
		t.Helper()
		if err := s.Tick(ctx); err != nil {
			t.Fatalf("tick: %v", err)
		}
	}
	// tickFor ticks every 100 ms for d and fails if the app was put to
	// sleep; it returns when its last tick began.
	tickFor := func(t *testing.T, d time.Duration, during func(*testing.T)) time.Time {
		t.Helper()
		var last time.Time
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if during != nil {
				during(t)
			}
			last = time.Now()
			tick(t)
			if c := p.takeCalls(); len(c) > 0 {
				t.Fatalf("calls while active: %v", c)
			}
		}
		return last
	}
	// tickUntilSleep ticks until the scaler puts the app to sleep.
	tickUntilSleep := func(t *testing.T) time.Time {
		t.Helper()
		var slept time.Time
		testkit.WaitFor(t, 10*idleFor, "sleep", func() bool {
			tick(t)
			if c := p.takeCalls(); len(c) > 0 {
				if len(c) != 1 || c[0] != "sleep app1" {
					t.Fatalf("calls: %v", c)
				}
				slept = time.Now()
				return true
			}
			return false
		})
		return slept
	}

	t.Run("traffic keeps the app awake", func(t *testing.T) {
		tickFor(t, 3*idleFor/2, get)
	})

	t.Run("a reload resets the counters and is not idleness", func(t *testing.T) {
		get(t)
		tick(t)
		before := p.lastRequest("app1")
		if got := backendRow(t, h.stats).Stot; got < 10 {
			t.Fatalf("stot before reload = %d, want the traffic's", got)
		}
		h.reload(t, 0)
		if got := backendRow(t, h.stats); got.Stot != 0 || got.LastSess != -1 {
			t.Fatalf("after reload: stot %d, lastsess %d; want 0 and -1", got.Stot, got.LastSess)
		}
		tick(t)
		if c := p.takeCalls(); len(c) > 0 {
			t.Fatalf("calls right after a reload: %v", c)
		}
		// Fewer requests than before the reload are still activity.
		sent := time.Now()
		get(t)
		testkit.WaitFor(t, 5*time.Second, "lastsess to count", func() bool {
			tick(t)
			last := p.lastRequest("app1")
			return last.After(before) && !last.Before(sent.Add(-time.Second))
		})
	})

	t.Run("no traffic for the idle time puts the app to sleep", func(t *testing.T) {
		last := time.Now()
		get(t)
		slept := tickUntilSleep(t)
		if d := slept.Sub(last); d < idleFor {
			t.Errorf("slept %s after the last request, want at least %s", d, idleFor)
		}
		if got := p.app("app1").State; got != deploy.StateSleeping {
			t.Errorf("state %s, want sleeping", got)
		}
	})

	t.Run("an open stream keeps the app awake across reloads", func(t *testing.T) {
		p.update("app1", state(deploy.StateRunning)) // woken
		tick(t)
		resp, err := h.get(client, "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: hello") {
			t.Fatalf("stream: %q, %v", line, err)
		}
		h.reload(t, 1) // the old worker stays for the stream
		h.reload(t, 1) // the second reload's old worker has nothing open and goes
		if got := backendRow(t, h.current).Scur; got != 0 {
			t.Errorf("current worker alone: scur %d, want 0 (the stream is on the old worker)", got)
		}
		if got := backendRow(t, h.stats).Scur; got != 1 {
			t.Errorf("all workers: scur %d, want 1", got)
		}
		seen := tickFor(t, 3*idleFor/2, nil) // the last tick that saw the stream

		releaseOnce.Do(func() { close(release) })
		resp.Body.Close()
		testkit.WaitFor(t, 10*time.Second, "the old worker to exit", func() bool {
			cur, old := h.workers()
			return cur != 0 && old == 0
		})
		if d := tickUntilSleep(t).Sub(seen); d < idleFor {
			t.Errorf("slept %s after the stream was last seen, want at least %s", d, idleFor)
		}
	})
}
