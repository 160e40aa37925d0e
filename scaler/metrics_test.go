package scaler

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router/hap"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRequestsCounter: the counter starts with HAProxy's counters, adds
// each tick's increase, and a drop
// of HAProxy's counters (a reload) is a new baseline, never a decrease.
func TestRequestsCounter(t *testing.T) {
	clock := &fakeClock{t: t0}
	stats := &fakeStats{}
	s, err := New(Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, newFakePlatform(runningApp()), oneWorker(stats.read))
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []struct {
		stot int64
		want float64
	}{
		{100, 100}, // Flock's own HAProxy: all since Flock started
		{130, 130},
		{130, 130},
		{5, 130}, // reload: counters back near 0, a new baseline
		{12, 137},
	} {
		clock.Advance(10 * time.Second)
		stats.set([]Row{be(st.stot, 0)})
		if err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(s); got != st.want {
			t.Errorf("tick %d (stot %d): flock_app_requests_total = %v, want %v", i, st.stot, got, st.want)
		}
	}
	problems, err := testutil.CollectAndLint(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestRequestsCounterPerWorker: after a reload the old worker and the new
// one each count from their own start, and when the old one exits its
// requests stay counted: the tick's increase is the new worker's, not a
// drop of the sum.
func TestRequestsCounterPerWorker(t *testing.T) {
	clock := &fakeClock{t: t0}
	var ws []hap.WorkerStats
	stats := StatsFunc(func(context.Context) ([]hap.WorkerStats, error) { return ws, nil })
	p := newFakePlatform(runningApp())
	s, err := New(Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, stats)
	if err != nil {
		t.Fatal(err)
	}
	worker := func(pid int, stot int64) hap.WorkerStats {
		return hap.WorkerStats{Pid: pid, CSV: csvOf([]Row{be(stot, 0)})}
	}
	for i, st := range []struct {
		name    string
		workers []hap.WorkerStats
		want    float64 // flock_app_requests_total
		rate    float64 // reported requests per second, over 10 s
	}{
		{"first sight", []hap.WorkerStats{worker(1, 100)}, 100, 0},
		{"reload: worker 2 new", []hap.WorkerStats{worker(2, 10), worker(1, 150)}, 160, 6},
		{"worker 1 exited", []hap.WorkerStats{worker(2, 30)}, 180, 2},
		{"worker 2 reset on its pid", []hap.WorkerStats{worker(2, 4)}, 180, 0},
		{"reload: worker 3 new", []hap.WorkerStats{worker(3, 5), worker(2, 9)}, 190, 1},
		{"worker 2 not read this tick", []hap.WorkerStats{worker(3, 8)}, 193, 0.3},
		{"worker 2 read again: not new", []hap.WorkerStats{worker(3, 8), worker(2, 12)}, 196, 0.3},
	} {
		clock.Advance(10 * time.Second)
		ws = st.workers
		if err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(s); got != st.want {
			t.Errorf("tick %d (%s): flock_app_requests_total = %v, want %v", i, st.name, got, st.want)
		}
		if got := p.requestRate("a"); got != st.rate {
			t.Errorf("tick %d (%s): request rate = %v, want %v", i, st.name, got, st.rate)
		}
	}
}

// TestRequestsCounterRealHAProxy counts requests sent through a real
// HAProxy.
func TestRequestsCounterRealHAProxy(t *testing.T) {
	instance := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	h := startProxy(t, instance, instance)
	p := newFakePlatform(deploy.App{Name: "app1", State: deploy.StateRunning, Desired: 1, IdleTimeout: time.Hour})
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, h.rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second} // keep-alive: 7 requests, fewer sessions
	for range 7 {
		resp, err := h.get(client, "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp := "# HELP flock_app_requests_total Requests (HTTP requests, or TCP sessions when more) HAProxy routed to the app since Flock started, as the scaler reads them each tick.\n" +
		"# TYPE flock_app_requests_total counter\n" +
		"flock_app_requests_total{app=\"app1\"} 7\n"
	if err := testutil.CollectAndCompare(s, strings.NewReader(exp)); err != nil {
		t.Error(err)
	}
}

// TestRequestsCounterAcrossReloadRealHAProxy counts requests through a
// real HAProxy that reloads while a request holds the old worker: the
// old worker's requests stay counted after it exits, and the new
// worker's count from its start.
func TestRequestsCounterAcrossReloadRealHAProxy(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "held\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	instance := serve(t, mux)
	h := startProxy(t, instance, instance)
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		newFakePlatform(deploy.App{Name: "app1", State: deploy.StateRunning, Desired: 1, IdleTimeout: time.Hour}), h.rt)
	if err != nil {
		t.Fatal(err)
	}
	tick := func() {
		t.Helper()
		if err := s.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second} // keep-alive
	sent := 0
	send := func(n int) {
		t.Helper()
		for range n {
			resp, err := h.get(client, "/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			sent++
		}
	}
	want := func(step string) {
		t.Helper()
		if got := testutil.ToFloat64(s); got != float64(sent) {
			t.Errorf("%s: flock_app_requests_total = %v, want %d (the requests sent)", step, got, sent)
		}
	}

	tick()
	send(3)
	held, err := h.get(&http.Client{}, "/hold") // keeps the old worker after the reload
	if err != nil {
		t.Fatal(err)
	}
	defer held.Body.Close()
	if line, err := bufio.NewReader(held.Body).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("/hold: %q, %v", line, err)
	}
	sent++
	tick()
	want("before the reload")

	h.reload(t, 1)
	send(5)
	tick()
	want("old and new worker")

	releaseOnce.Do(func() { close(release) })
	held.Body.Close()
	testkit.WaitFor(t, 10*time.Second, "the old worker to exit", func() bool {
		cur, old := h.workers()
		return cur != 0 && old == 0
	})
	send(2)
	tick()
	want("old worker exited")
}
