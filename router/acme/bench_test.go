package acme_test

import (
	"fmt"
	"testing"
)

// BenchmarkIssue measures one certificate, from Issue to the PEM in hand,
// against an in-process Pebble validating over loopback: the order, the
// HTTP-01 validation through ChallengeHandler, finalization and download.
// The account is registered before the timer starts, as it is once per
// data dir. Most of the figure is lego's first poll of the challenge, which
// it makes 5 s (±50 %) after accepting it when the server sends no
// Retry-After, as neither Pebble nor Let's Encrypt does; run with
// -benchtime=5x or more for a mean.
func BenchmarkIssue(b *testing.B) {
	p := startPebble(b)
	iss := newIssuer(b, p, b.TempDir())
	p.serve(iss.ChallengeHandler())
	issue(b, iss, "warm-up.localhost")

	b.ResetTimer()
	for n := range b.N {
		issue(b, iss, fmt.Sprintf("bench%d.localhost", n))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/cert")
}
