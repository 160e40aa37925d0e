package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startWaker runs a waker for p until the test ends and returns its URL.
func startWaker(tb testing.TB, p Platform, cfg Config) (*Waker, string) {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := New(cfg, p)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Listen(); err != nil {
		tb.Fatal(err)
	}
	if tp, ok := p.(*testPlatform); ok {
		tp.mu.Lock()
		tp.drainer = w
		tp.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
	})
	return w, "http://" + w.Addr()
}

// client is shared by a test's requests, with room for many connections.
func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 2000, MaxIdleConnsPerHost: 2000,
	}}
}

type reply struct {
	status int
	body   string
	header http.Header
}

func send(c *http.Client, method, url, app string, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return reply{}, err
	}
	if app != "" {
		req.Header.Set(HeaderApp, app)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header}, err
}

func mustSend(tb testing.TB, c *http.Client, method, url, app string, body io.Reader) reply {
	tb.Helper()
	r, err := send(c, method, url, app, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func coldStartMS(tb testing.TB, r reply) int {
	tb.Helper()
	v := r.header.Get(HeaderColdStart)
	ms, err := strconv.Atoi(v)
	if err != nil {
		tb.Fatalf("%s = %q, want milliseconds", HeaderColdStart, v)
	}
	return ms
}

func TestWakeSleepingApp(t *testing.T) {
	p := newTestPlatform(t)
	p.add("hello", appOpts{})
	reg := prometheus.NewRegistry()
	_, url := startWaker(t, p, Config{Registerer: reg})

	r := mustSend(t, newClient(), "GET", url+"/", "hello", nil)
	if r.status != 200 || !strings.HasPrefix(r.body, "hello from hello.") {
		t.Fatalf("got %d %q, want 200 from an instance", r.status, r.body)
	}
	if ms := coldStartMS(t, r); ms < 0 || ms > 30000 {
		t.Errorf("cold start %d ms, want a small non-negative figure", ms)
	}
	if got := p.wakes("hello"); got != 1 {
		t.Errorf("wakes = %d, want 1", got)
	}
	waitFor(t, 10*time.Second, "app running", func() bool { return p.state("hello") == deploy.StateRunning })

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	phases := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "flock_waker_phase_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "phase" && m.GetHistogram().GetSampleCount() > 0 {
					phases[l.GetValue()] = true
				}
			}
		}
	}
	want := map[string]bool{"detect": true, "scale": true, "healthy": true, "first_byte": true}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("phases observed (-want +got):\n%s", diff)
	}
}

func TestAnswersWithoutWake(t *testing.T) {
	p := newTestPlatform(t)
	p.add("stopped", appOpts{state: deploy.StateStopped})
	_, url := startWaker(t, p, Config{})
	c := newClient()
	tests := []struct {
		name       string
		app        string
		path       string
		status     int
		retryAfter bool
		body       string
	}{
		{name: "no header", app: "", path: "/", status: 400, body: "X-Flock-App"},
		{name: "invalid name", app: "../etc", path: "/", status: 400, body: "X-Flock-App"},
		{name: "unknown app", app: "nope", path: "/", status: 404, body: "no app named nope"},
		{name: "stopped app", app: "stopped", path: "/", status: 503, retryAfter: true, body: "stopped is stopped"},
		{name: "waker health", app: "", path: "/healthz", status: 200, body: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustSend(t, c, "GET", url+tt.path, tt.app, nil)
			if r.status != tt.status || !strings.Contains(r.body, tt.body) {
				t.Errorf("got %d %q, want %d containing %q", r.status, r.body, tt.status, tt.body)
			}
			if got := r.header.Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After present = %v, want %v", got, tt.retryAfter)
			}
		})
	}
	if got := p.wakes("stopped"); got != 0 {
		t.Errorf("stopped app woken %d times", got)
	}
}

func TestThousandConcurrentRequestsOneWake(t *testing.T) {
	p := newTestPlatform(t)
	p.add("busy", appOpts{boot: 200 * time.Millisecond})
	_, url := startWaker(t, p, Config{})
	c := newClient()
	const n = 1000
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(c, "GET", url+"/", "busy", nil)
			if err == nil && r.status == 200 && r.header.Get(HeaderColdStart) != "" {
				ok.Add(1)
				return
			}
			bad.Add(1)
			if err == nil {
				err = errors.New(strconv.Itoa(r.status) + " " + r.body)
			}
			firstErr.CompareAndSwap(nil, err)
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d of %d requests failed, first: %v", bad.Load(), n, firstErr.Load())
	}
	if got := p.wakes("busy"); got != 1 {
		t.Errorf("wakes = %d, want exactly 1", got)
	}
}

func TestQueueFull(t *testing.T) {
	p := newTestPlatform(t)
	p.add("slow", appOpts{boot: time.Second})
	w, url := startWaker(t, p, Config{QueueSize: 2})
	c := newClient()
	held := make(chan reply, 2)
	for range 2 {
		go func() {
			r, _ := send(c, "GET", url+"/", "slow", nil)
			held <- r
		}()
	}
	waitFor(t, 10*time.Second, "two held requests", func() bool { return w.heldCount("slow") == 2 })
	start := time.Now()
	r := mustSend(t, c, "GET", url+"/", "slow", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("rejection took %s, want at once", d)
	}
	for range 2 {
		if r := <-held; r.status != 200 {
			t.Errorf("held request got %d %q, want 200", r.status, r.body)
		}
	}
}

func TestNeverHealthy(t *testing.T) {
	p := newTestPlatform(t)
	p.add("sick", appOpts{sick: true, checkPath: "/health"})
	_, url := startWaker(t, p, Config{Timeout: 700 * time.Millisecond})
	r := mustSend(t, newClient(), "GET", url+"/", "sick", nil)
	if r.status != 504 || !strings.Contains(r.body, "sick failed to wake within 700ms") {
		t.Errorf("got %d %q, want 504 saying the app failed to wake", r.status, r.body)
	}
	if r.header.Get(HeaderColdStart) == "" {
		t.Errorf("504 after a hold lacks %s", HeaderColdStart)
	}
	if got := p.fails("sick"); len(got) != 1 || !strings.Contains(got[0], "failed to wake") {
		t.Errorf("Fail calls = %q, want one saying it failed to wake", got)
	}
	// Right after, a visitor is told at once rather than held again.
	start := time.Now()
	r = mustSend(t, newClient(), "GET", url+"/", "sick", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || time.Since(start) > 500*time.Millisecond {
		t.Errorf("request after failure: %d in %s, want 503 with Retry-After at once", r.status, time.Since(start))
	}
}

func TestPostBodySurvivesHold(t *testing.T) {
	p := newTestPlatform(t)
	p.add("echo", appOpts{boot: 100 * time.Millisecond})
	_, url := startWaker(t, p, Config{})
	body := bytes.Repeat([]byte("flock "), 50_000) // 300 kB
	r := mustSend(t, newClient(), "POST", url+"/echo", "echo", bytes.NewReader(body))
	if r.status != 200 || r.body != string(body) {
		t.Fatalf("got %d with %d bytes, want 200 echoing %d bytes", r.status, len(r.body), len(body))
	}
	if got := r.header.Get("X-Method"); got != "POST" {
		t.Errorf("instance saw method %q", got)
	}
	if got := r.header.Get("X-Saw-App"); got != "" {
		t.Errorf("instance saw %s: %q, want it removed", HeaderApp, got)
	}
	coldStartMS(t, r)
}

func TestWebsocketThroughWake(t *testing.T) {
	p := newTestPlatform(t)
	p.add("chat", appOpts{boot: 100 * time.Millisecond})
	w, _ := startWaker(t, p, Config{})
	h := http.Header{}
	h.Set(HeaderApp, "chat")
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+w.Addr()+"/ws", h)
	if err != nil {
		t.Fatalf("dial through wake: %v", err)
	}
	defer conn.Close()
	if resp.Header.Get(HeaderColdStart) == "" {
		t.Errorf("101 lacks %s", HeaderColdStart)
	}
	for _, msg := range []string{"one", "two"} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(got), ": "+msg) {
			t.Errorf("echo %q, want it to end with %q", got, msg)
		}
	}
	// The open websocket is activity HAProxy cannot see, and a drain
	// waits for it.
	if got := w.Active("chat"); got != 1 {
		t.Errorf("Active = %d, want 1 open websocket", got)
	}
	a, _ := p.App(context.Background(), "chat")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Drain(ctx, "chat", a.Instances[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a websocket open = %v, want it to wait until the deadline", err)
	}
	conn.Close()
	waitFor(t, 5*time.Second, "the websocket to end", func() bool { return w.Active("chat") == 0 })
	if err := w.Drain(context.Background(), "chat", a.Instances[0]); err != nil {
		t.Errorf("Drain after close: %v", err)
	}
}

func TestCrashedAwakeAppHeldWithoutWake(t *testing.T) {
	p := newTestPlatform(t)
	p.add("crashy", appOpts{state: deploy.StateRunning, restartDelay: 300 * time.Millisecond})
	_, url := startWaker(t, p, Config{})
	waitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("crashy") == 1 })
	p.crash("crashy")
	waitFor(t, 10*time.Second, "no instance", func() bool {
		a, _ := p.App(context.Background(), "crashy")
		return len(a.Instances) == 0
	})
	r := mustSend(t, newClient(), "GET", url+"/", "crashy", nil)
	if r.status != 200 || !strings.HasPrefix(r.body, "hello from crashy.2") {
		t.Errorf("got %d %q, want 200 from the replacement instance", r.status, r.body)
	}
	coldStartMS(t, r)
	if got := p.wakes("crashy"); got != 0 {
		t.Errorf("wakes = %d, want 0 for an awake app", got)
	}
}

func TestVanishedInstanceRetried(t *testing.T) {
	// The platform still lists the dead instance as healthy for a while:
	// the waker's first try fails to connect and the request is retried
	// on the hold until the replacement answers.
	tests := []struct {
		name   string
		method string
		body   string
	}{
		{name: "GET", method: "GET"},
		{name: "POST never sent", method: "POST", body: "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPlatform(t)
			p.add("ghost", appOpts{state: deploy.StateRunning, staleFor: 400 * time.Millisecond, restartDelay: 50 * time.Millisecond})
			_, url := startWaker(t, p, Config{})
			waitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("ghost") == 1 })
			p.crash("ghost")
			waitFor(t, 10*time.Second, "the crash", func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				return p.apps["ghost"].instances[0].exited
			})
			r := mustSend(t, newClient(), tt.method, url+"/echo", "ghost", strings.NewReader(tt.body))
			if r.status != 200 || r.body != tt.body {
				t.Errorf("got %d %q, want 200 %q", r.status, r.body, tt.body)
			}
		})
	}
}

func TestRequestsDuringSleep(t *testing.T) {
	for _, stateFirst := range []bool{true, false} {
		t.Run("state first "+strconv.FormatBool(stateFirst), func(t *testing.T) {
			p := newTestPlatform(t)
			p.add("nap", appOpts{state: deploy.StateRunning})
			_, url := startWaker(t, p, Config{})
			waitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("nap") == 1 })
			c := newClient()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			var total atomic.Int64
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						r, err := send(c, "GET", url+"/", "nap", nil)
						total.Add(1)
						if err != nil || r.status != 200 {
							mu.Lock()
							failures = append(failures, strconv.Itoa(r.status)+" "+r.body+" "+errString(err))
							mu.Unlock()
						}
					}
				}()
			}
			waitFor(t, 10*time.Second, "requests flowing", func() bool { return total.Load() > 20 })
			p.sleep("nap", stateFirst)
			waitFor(t, 20*time.Second, "woken again by the requests", func() bool {
				return p.wakes("nap") >= 1 && p.healthy("nap") == 1
			})
			n := total.Load()
			waitFor(t, 10*time.Second, "more requests after the wake", func() bool { return total.Load() > n+20 })
			close(stop)
			wg.Wait()
			if len(failures) > 0 {
				t.Errorf("%d of %d requests failed, first: %s", len(failures), total.Load(), failures[0])
			}
		})
	}
}

func TestRunShutsDownAndReleasesHeld(t *testing.T) {
	p := newTestPlatform(t)
	p.add("late", appOpts{boot: time.Hour})
	w, err := New(Config{Logger: slog.New(slog.DiscardHandler)}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var url string
	waitFor(t, 5*time.Second, "listening", func() bool {
		url = "http://" + w.Addr()
		return !strings.HasSuffix(url, ":0")
	})
	got := make(chan reply, 1)
	go func() {
		r, _ := send(newClient(), "GET", url+"/", "late", nil)
		got <- r
	}()
	waitFor(t, 10*time.Second, "a held request", func() bool { return w.heldCount("late") == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
	if r := <-got; r.status != 503 {
		t.Errorf("held request got %d, want 503 on shutdown", r.status)
	}
}

func TestNewValidates(t *testing.T) {
	p := newTestPlatform(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "public address", cfg: Config{Addr: "0.0.0.0:0"}},
		{name: "no port", cfg: Config{Addr: "127.0.0.1"}},
		{name: "negative queue", cfg: Config{QueueSize: -1}},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, p); !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}, p); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registerer: reg}, p); err == nil {
		t.Error("second waker on one registry: want a registration error")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
