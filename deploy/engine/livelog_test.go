package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestLiveLogSaysWhereItStops(t *testing.T) {
	l := newLiveLog()
	line := strings.Repeat("x", 99) + "\n"
	for range 2 * maxLog / len(line) {
		l.Write([]byte(line))
	}
	l.Close()
	got := l.String()
	if len(got) > maxLog+len(line)+len(truncated) || !strings.HasSuffix(got, truncated) {
		t.Errorf("a 2 MiB log keeps %d bytes ending %q, want at most ~1 MiB ending with the truncation note", len(got), got[len(got)-80:])
	}
	var b strings.Builder
	if err := l.Follow(context.Background(), &b); err != nil || b.String() != got {
		t.Errorf("a follower of the closed log got %d bytes (%v), want the %d kept", b.Len(), err, len(got))
	}
}

// stalledWriter never returns from a write until released: a client that
// stopped reading.
type stalledWriter struct{ release chan struct{} }

func (w stalledWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// BenchmarkLiveLogWrite writes a 1 MiB deploy log, line by line, while
// followers read it, one of which has stalled (a client that stopped
// reading): the writer must not slow down for it. ns/line is the cost of
// one log line to the deploy.
func BenchmarkLiveLogWrite(b *testing.B) {
	line := []byte("-----> npm install: added 1 package in 1s\n")
	lines := maxLog / len(line)
	for _, followers := range []int{0, 10} {
		name := fmt.Sprintf("followers=%d", followers)
		if followers > 0 {
			name += ",one_stalled"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(lines * len(line)))
			for range b.N {
				b.StopTimer()
				l := newLiveLog()
				ctx, cancel := context.WithCancel(context.Background())
				release := make(chan struct{})
				var wg sync.WaitGroup
				for i := range followers {
					var w io.Writer = io.Discard
					if i == 0 {
						w = stalledWriter{release}
					}
					wg.Add(1)
					go func() { defer wg.Done(); l.Follow(ctx, w) }()
				}
				b.StartTimer()
				for range lines {
					l.Write(line)
				}
				l.Close()
				b.StopTimer()
				cancel()
				close(release)
				wg.Wait()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
		})
	}
}
