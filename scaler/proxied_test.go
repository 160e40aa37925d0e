package scaler

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// proxiedApps is a waker proxying connections to the apps it names.
type proxiedApps []string

func (p proxiedApps) ActiveApps() []string { return p }

// TestProxiedAppStaysAwake: an app HAProxy sees no traffic for, but the
// waker proxies a connection to (a websocket opened during a wake), is not
// put to sleep; another app as idle is.
func TestProxiedAppStaysAwake(t *testing.T) {
	a, b := runningApp(), runningApp()
	b.Name = "b"
	a.IdleTimeout, b.IdleTimeout = 3*time.Second, 3*time.Second
	p := newFakePlatform(a, b)
	beB := be(1, 0)
	beB.Proxy = "app_b"
	stats := &fakeStats{rows: []Row{be(1, 0), beB}}
	s, err := New(Config{Every: time.Second, Proxied: proxiedApps{"a"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		p, oneWorker(stats.read))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var calls []string
	testkit.WaitFor(t, 15*time.Second, "the idle app asleep", func() bool {
		calls = append(calls, p.takeCalls()...)
		return slices.Contains(calls, "sleep b")
	})
	// Two more ticks: a, as idle as b, would be asleep by now.
	ticks := stats.readCount()
	testkit.WaitFor(t, 15*time.Second, "two more scaler ticks", func() bool { return stats.readCount() >= ticks+2 })
	calls = append(calls, p.takeCalls()...)
	if slices.Contains(calls, "sleep a") {
		t.Errorf("the app the waker proxies to was put to sleep: %v", calls)
	}
}
