package scaler

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

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
	var logs testkit.Buffer
	s, err := New(Config{Every: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, newFakePlatform(runningApp()), oneWorker(stats))
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
