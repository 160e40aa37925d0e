package backup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// boots waits until the app has recorded n instance boots.
func boots(b *testing.B, p *testPlatform, app string, n int) {
	testkit.WaitFor(b, 10*time.Second, "the instance's boot time", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.apps[app].boots) >= n
	})
}

// wakeOnce sends one request to the sleeping app and returns the time to
// its response and the app's own exec → listening time.
func wakeOnce(b *testing.B, p *testPlatform, url, app string, i int) (first, boot time.Duration) {
	c := newClient()
	start := time.Now()
	b.StartTimer()
	r, err := send(c, "GET", url+"/", app, nil)
	b.StopTimer()
	first = time.Since(start)
	if err != nil || r.status != 200 {
		b.Fatalf("wake %d: %d %v", i, r.status, err)
	}
	boots(b, p, app, i+1)
	boot, _ = p.lastBoot(app)
	p.sleep(app, true)
	c.CloseIdleConnections()
	return first, boot
}

// BenchmarkWakeOverhead is the first response time to a sleeping app
// minus the app's own time from exec to listening (target ≤ 100 ms).
func BenchmarkWakeOverhead(b *testing.B) {
	p := newTestPlatform(b)
	p.add("hello", appOpts{})
	_, url := startWaker(b, p, Config{})
	var over, firsts, own []float64
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		first, boot := wakeOnce(b, p, url, "hello", i)
		over = append(over, ms(first-boot))
		firsts = append(firsts, ms(first))
		own = append(own, ms(boot))
	}
	b.ReportMetric(median(over), "overhead-ms")
	b.ReportMetric(median(firsts), "first-response-ms")
	b.ReportMetric(median(own), "own-boot-ms")
}

// BenchmarkWake1sBootApp wakes an app that takes a second to listen:
// first response time over its own boot time (target ≤ 1.1).
func BenchmarkWake1sBootApp(b *testing.B) {
	p := newTestPlatform(b)
	p.add("slow", appOpts{boot: time.Second})
	_, url := startWaker(b, p, Config{})
	var ratios []float64
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		first, boot := wakeOnce(b, p, url, "slow", i)
		ratios = append(ratios, float64(first)/float64(boot))
	}
	b.ReportMetric(median(ratios), "total/boot")
}

// BenchmarkWake1000Concurrent sends 1,000 requests at once to a sleeping
// app: it must be woken exactly once and every request answered 200.
func BenchmarkWake1000Concurrent(b *testing.B) {
	p := newTestPlatform(b)
	p.add("busy", appOpts{})
	_, url := startWaker(b, p, Config{})
	c := newClient()
	var errs atomic.Int64
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		b.StartTimer()
		var wg sync.WaitGroup
		for range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r, err := send(c, "GET", url+"/", "busy", nil); err != nil || r.status != 200 {
					errs.Add(1)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		p.sleep("busy", true)
	}
	b.ReportMetric(float64(p.wakes("busy"))/float64(b.N), "wakes/op")
	b.ReportMetric(float64(errs.Load())/float64(b.N), "errors/op")
}

// BenchmarkSleepWakeCycles puts an app to sleep 200 times while clients
// send requests at random moments; every response must be 2xx.
func BenchmarkSleepWakeCycles(b *testing.B) {
	const cycles = 200
	p := newTestPlatform(b)
	p.add("cycle", appOpts{state: deploy.StateRunning})
	_, url := startWaker(b, p, Config{})
	c := newClient()
	var bad, total atomic.Int64
	var firstBad atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(rand.N(20 * time.Millisecond)):
				}
				r, err := send(c, "GET", url+"/", "cycle", nil)
				total.Add(1)
				if err != nil || r.status/100 != 2 {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", r.status, r.body, err))
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		for n := range cycles {
			testkit.WaitFor(b, 20*time.Second, "the app awake", func() bool { return p.healthy("cycle") > 0 })
			time.Sleep(rand.N(10 * time.Millisecond))
			p.sleep("cycle", n%2 == 0)
		}
	}
	close(stop)
	wg.Wait()
	if v := firstBad.Load(); v != nil {
		b.Logf("first non-2xx: %s", v)
	}
	b.ReportMetric(float64(bad.Load())/float64(b.N), "non-2xx/op")
	b.ReportMetric(float64(total.Load())/float64(b.N), "requests/op")
}
