package web

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// BenchmarkAppsPage1000 renders the apps page for 1,000 apps, each with an
// hour of samples behind its sparkline. Target: ≤ 100 ms a page.
func BenchmarkAppsPage1000(b *testing.B) {
	s, f := newTestServer(b, nil)
	for i := range 1000 {
		f.add(fmt.Sprintf("app-%04d", i), 1+i%3)
	}
	seedHistory(s, f)
	h := s.Handler()
	sc, _ := login(b, h)
	size := 0
	b.ResetTimer()
	for b.Loop() {
		w := do(b, h, req{path: "/", cookies: []*http.Cookie{sc}, header: map[string]string{"Accept-Encoding": "gzip"}})
		if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" {
			b.Fatalf("apps page = %d", w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ms/page")
	b.ReportMetric(float64(size)/1024, "KiB-gzipped")
}

// BenchmarkEventToPage measures from a platform event to the SSE message
// arriving at a client over HTTP. Target: ≤ 1 s (it is far less).
func BenchmarkEventToPage(b *testing.B) {
	s, f := newTestServer(b, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	r, _ := http.NewRequest("GET", srv.URL+"/api/v1/events", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	testkit.WaitFor(b, 5*time.Second, "the stream to subscribe", func() bool { return f.subscribers() == 1 })
	sc := bufio.NewScanner(res.Body)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		f.Emit(deploy.Event{App: "hello", Type: "state", State: deploy.StateRunning})
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum)/float64(len(lat))/1e6, "ms/event")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms/event")
}
