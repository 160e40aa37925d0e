package backup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

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
	testkit.WaitFor(t, 10*time.Second, "app running", func() bool { return p.state("hello") == deploy.StateRunning })

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
	want := map[string]bool{"detect": true, "scale": true, "start": true, "healthy": true, "first_byte": true}
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
	if got, want := r.header.Get("X-Host"), strings.TrimPrefix(url, "http://"); got != want {
		t.Errorf("instance saw Host %q, want the client's %q", got, want)
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
	if got := w.ActiveApps(); !slices.Equal(got, []string{"chat"}) {
		t.Errorf("ActiveApps = %q, want chat's open websocket", got)
	}
	a, _ := p.App(context.Background(), "chat")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Drain(ctx, "chat", a.Instances[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a websocket open = %v, want it to wait until the deadline", err)
	}
	conn.Close()
	testkit.WaitFor(t, 5*time.Second, "the websocket to end", func() bool { return len(w.ActiveApps()) == 0 })
	if err := w.Drain(context.Background(), "chat", a.Instances[0]); err != nil {
		t.Errorf("Drain after close: %v", err)
	}
}

func TestRunShutsDownAndReleasesHeld(t *testing.T) {
	p := newTestPlatform(t)
	p.add("late", appOpts{boot: time.Hour})
	w, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w.Follow(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var url string
	testkit.WaitFor(t, 5*time.Second, "listening", func() bool {
		url = "http://" + w.Addr()
		return !strings.HasSuffix(url, ":0")
	})
	got := make(chan reply, 1)
	go func() {
		r, _ := send(newClient(), "GET", url+"/", "late", nil)
		got <- r
	}()
	testkit.WaitFor(t, 10*time.Second, "a held request", func() bool { return w.heldCount("late") == 1 })
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
			if _, err := New(tt.cfg); !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Registerer: reg}); err == nil {
		t.Error("second waker on one registry: want a registration error")
	}
}

// TestDestroyedAppForgotten checks that a destroyed app leaves no metric
// series behind: app names come and go while the waker runs for months.
func TestDestroyedAppForgotten(t *testing.T) {
	p := newTestPlatform(t)
	p.add("hello", appOpts{})
	reg := prometheus.NewRegistry()
	_, url := startWaker(t, p, Config{Registerer: reg})
	if r := mustSend(t, newClient(), "GET", url+"/", "hello", nil); r.status != 200 {
		t.Fatalf("got %d %q, want 200 from an instance", r.status, r.body)
	}
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
		}
		return n
	}
	if series() == 0 {
		t.Fatal("no metric series after a wake")
	}
	p.mu.Lock()
	p.publishLocked("hello", "destroyed")
	p.mu.Unlock()
	testkit.WaitFor(t, 5*time.Second, "the app's series deleted", func() bool { return series() == 0 })
}
