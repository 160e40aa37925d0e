package scaler

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// lockedBuffer is a log sink the scaler and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRunSurvivesAPanickingTick: a tick that panics (here the stats source)
// is logged and the next tick runs; Flock stays up.
func TestRunSurvivesAPanickingTick(t *testing.T) {
	var reads atomic.Int32
	stats := func(context.Context) ([]byte, error) {
		if reads.Add(1) <= 2 { // the first tick, at once, and the first on the schedule
			var m map[string]int
			m["boom"]++
		}
		return csvOf([]Row{be(1, 0)}), nil
	}
	var logs lockedBuffer
	s, err := New(Config{Every: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, newFakePlatform(runningApp()), StatsFunc(stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, "a tick after two that panicked", func() bool { return reads.Load() >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), "scaler tick panicked") || !strings.Contains(logs.String(), "nil map") {
		t.Errorf("the panics were not logged:\n%s", logs.String())
	}
}
