package backup

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

func TestQueueFull(t *testing.T) {
	p := newTestPlatform(t)
	// The boot is the window in which both requests must be held and the
	// third turned away: 3 s, room for a busy machine.
	p.add("slow", appOpts{boot: 3 * time.Second})
	w, url := startWaker(t, p, Config{QueueSize: 2})
	c := newClient()
	held := make(chan reply, 2)
	for range 2 {
		go func() {
			r, _ := send(c, "GET", url+"/", "slow", nil)
			held <- r
		}()
	}
	testkit.WaitFor(t, 10*time.Second, "two held requests", func() bool { return w.heldCount("slow") == 2 })
	start := time.Now()
	r := mustSend(t, c, "GET", url+"/", "slow", nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rejection took %s, want at once", d)
	}
	if got := counterValue(w.m.rejected.WithLabelValues("slow", "queue_full")); got != 1 {
		t.Errorf("queue_full rejections = %v, want 1", got)
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
	if r.status != 503 || r.header.Get("Retry-After") == "" || time.Since(start) > 2*time.Second {
		t.Errorf("request after failure: %d in %s, want 503 with Retry-After at once", r.status, time.Since(start))
	}
}

func TestCrashedAwakeAppHeldWithoutWake(t *testing.T) {
	p := newTestPlatform(t)
	p.add("crashy", appOpts{state: deploy.StateRunning, restartDelay: 300 * time.Millisecond})
	_, url := startWaker(t, p, Config{})
	testkit.WaitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("crashy") == 1 })
	p.crash("crashy")
	testkit.WaitFor(t, 10*time.Second, "no instance", func() bool {
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
			testkit.WaitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("ghost") == 1 })
			p.crash("ghost")
			testkit.WaitFor(t, 10*time.Second, "the crash", func() bool {
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
			testkit.WaitFor(t, 10*time.Second, "a healthy instance", func() bool { return p.healthy("nap") == 1 })
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
			testkit.WaitFor(t, 10*time.Second, "requests flowing", func() bool { return total.Load() > 20 })
			p.sleep("nap", stateFirst)
			testkit.WaitFor(t, 20*time.Second, "woken again by the requests", func() bool {
				return p.wakes("nap") >= 1 && p.healthy("nap") == 1
			})
			n := total.Load()
			testkit.WaitFor(t, 10*time.Second, "more requests after the wake", func() bool { return total.Load() > n+20 })
			close(stop)
			wg.Wait()
			if len(failures) > 0 {
				t.Errorf("%d of %d requests failed, first: %s", len(failures), total.Load(), failures[0])
			}
		})
	}
}

func TestDeployingAppHeldNeverFailed(t *testing.T) {
	// A first release still rolling out: the deploy pipeline owns its
	// state, so the waker neither wakes nor fails it.
	p := newTestPlatform(t)
	p.add("fresh", appOpts{state: deploy.StateDeploying})
	_, url := startWaker(t, p, Config{Timeout: 300 * time.Millisecond})
	r := mustSend(t, newClient(), "GET", url+"/", "fresh", nil)
	if r.status != 504 {
		t.Errorf("got %d %q, want 504", r.status, r.body)
	}
	if w, f := p.wakes("fresh"), p.fails("fresh"); w != 0 || len(f) != 0 {
		t.Errorf("wakes %d, fails %q; want none", w, f)
	}
}

func TestClientGoneLeavesQueue(t *testing.T) {
	p := newTestPlatform(t)
	p.add("gone", appOpts{boot: time.Hour})
	w, url := startWaker(t, p, Config{QueueSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
	req.Header.Set(HeaderApp, "gone")
	errc := make(chan error, 1)
	go func() {
		resp, err := newClient().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the request held", func() bool { return w.heldCount("gone") == 1 })
	cancel()
	<-errc
	testkit.WaitFor(t, 10*time.Second, "the queue empty again", func() bool { return w.heldCount("gone") == 0 })
	if got := counterValue(w.m.held.WithLabelValues("gone")); got != 1 {
		t.Errorf("held counter = %v, want 1", got)
	}
}
