package scaler

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// TestRun shows Run ticking at once and then on its schedule, and
// returning when its context ends.
func TestRun(t *testing.T) {
	var reads atomic.Int32
	stats := func(context.Context) ([]byte, error) {
		reads.Add(1)
		return csvOf([]Row{be(1, 0)}), nil
	}
	s, err := New(Config{Every: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		newFakePlatform(runningApp()), oneWorker(stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, "two ticks", func() bool { return reads.Load() >= 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestAddFlags(t *testing.T) {
	var c Config
	fs := pflag.NewFlagSet("flock", pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse([]string{"--scale-every=30s", "--target-sessions=50", "--scale-cooldown=5m"}); err != nil {
		t.Fatal(err)
	}
	want := Config{Every: 30 * time.Second, TargetSessions: 50, UpRatio: 0.9, DownRatio: 0.5, Step: 2, Cooldown: 5 * time.Minute}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}
