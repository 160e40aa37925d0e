package acme_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkIssue measures certificates, from Issue to the PEM in hand,
// against an in-process Pebble validating over loopback: the order, the
// HTTP-01 validation through ChallengeHandler, finalization and download.
// The account is registered before the timer starts, as it is once per
// data dir. "one" issues one host at a time; "8-at-once" eight different
// hosts concurrently (a restart with many apps), ms/cert being the elapsed
// time over all certificates.
//
// Most of the time is lego's wait: right after accepting the challenge it
// checks the authorization once, and when the CA has not validated yet it
// polls again 5 s (±50 %) later, as Pebble sends no Retry-After there
// (nor, lego's source notes, does Let's Encrypt). So a certificate takes either ~0.1 s or 2.5–7.5 s;
// run with -benchtime=10x or more for a mean, and see max-ms.
func BenchmarkIssue(b *testing.B) {
	for _, at := range []int{1, 8} {
		name := "one"
		if at > 1 {
			name = fmt.Sprintf("%d-at-once", at)
		}
		b.Run(name, func(b *testing.B) { benchIssue(b, at) })
	}
}

func benchIssue(b *testing.B, at int) {
	p := startPebble(b)
	iss := newIssuer(b, p, b.TempDir())
	p.serve(iss.ChallengeHandler())
	issue(b, iss, "warm-up.localhost")

	var slowest time.Duration
	b.ResetTimer()
	for n := range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		for k := range at {
			wg.Go(func() {
				host := fmt.Sprintf("bench%d-%d.localhost", n, k)
				if _, _, err := iss.Issue(context.Background(), host); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		slowest = max(slowest, time.Since(start))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*at), "ms/cert")
	b.ReportMetric(float64(slowest.Milliseconds()), "max-ms")
}
