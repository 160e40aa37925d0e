package main

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkACMEIssue: a domain added to a running app, until HTTPS answers
// for it with a certificate from Pebble, obtained through HTTP-01 that
// Pebble validates across Flock's own HAProxy (acmeFlock). It reports the
// mean and the median per certificate. Most of the time is lego's: it
// polls an authorization Pebble has not validated yet again after 5 s
// (±50 %), as Pebble sends no Retry-After.
func BenchmarkACMEIssue(b *testing.B) {
	f, p, https := acmeFlock(b)
	f.start()
	f.mustCLI("deploy", echoApp(b))
	roots := p.RootPool()
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		host := fmt.Sprintf("b%d-%d.example.net", i, time.Now().UnixNano())
		start := time.Now()
		f.mustCLI("domains", "add", "echo", host)
		for {
			if _, _, err := httpsGet(host, https, roots); err == nil {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("no certificate for %s after 2 minutes; echo's error: %s", host, f.apps()["echo"].Error)
			}
			time.Sleep(20 * time.Millisecond)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cert")
	b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), "median-ms/cert")
	b.ReportMetric(0, "ns/op")
}
