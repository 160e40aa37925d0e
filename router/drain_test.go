package router

import (
	"context"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestDrainWaitsForSuccessor replays a rollout as the scheduler sees it:
// the old instance is drained as soon as the new one is healthy, and the
// router hears of the new one a moment later. No request may fail in
// between (without a waker, a backend with no server up answers 503).
func TestDrainWaitsForSuccessor(t *testing.T) {
	h := newHarness(t, nil)
	old := newInstance(t, "web.v1.1")
	h.r.Update(withDesired(old))
	testkit.WaitFor(t, 5*time.Second, "web routed", func() bool { return h.routesTo("web.localhost", "web.v1.1") })
	l := startLoad(h, "web.localhost", 4)
	// Made before the drain starts: the drain waits successorWait (1 s)
	// for it, a wait that should hold the update alone, not this too.
	next := newInstance(t, "web.v2.1")
	next.Release = "v2"

	drained := make(chan error, 1)
	go func() { drained <- h.r.Drain(context.Background(), "web", old.Instance) }()
	n := old.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the old instance serves while it waits for a successor", func() bool { return old.hits.Load() > n+5 })
	h.r.Update(withDesired(old, next))
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain never returned")
	}
	h.r.Update(withDesired(next))
	n = next.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the new release serves", func() bool { return next.hits.Load() > n+20 })
	if sent, failed := l.finish(); failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
	if h.serving("app_web", "web.v1.") {
		t.Error("the drained instance is still in rotation")
	}
}

// TestUndrainGivesTrafficBack replays a handover that is undone: the new
// instance takes the traffic from the old one, which is drained but keeps
// running; then the new one dies within its stability window and the old
// one is put back. Under load, no request may fail while the old one comes
// back and the new one leaves, and the old one serves again.
func TestUndrainGivesTrafficBack(t *testing.T) {
	h := newHarness(t, nil)
	old, next := newInstance(t, "web.v1.1"), newInstance(t, "web.v2.1")
	next.Release = "v2"
	h.r.Update(withDesired(old, next))
	testkit.WaitFor(t, 5*time.Second, "both routed", func() bool {
		return h.serving("app_web", "web.v1.") && h.serving("app_web", "web.v2.")
	})
	l := startLoad(h, "web.localhost", 4)
	if err := h.r.Drain(context.Background(), "web", old.Instance); err != nil {
		t.Fatal(err)
	}
	if h.serving("app_web", "web.v1.") {
		t.Fatal("drained, the old instance is still in rotation")
	}
	if err := h.r.Undrain(context.Background(), "web", old.Instance); err != nil {
		t.Fatal(err)
	}
	if !h.serving("app_web", "web.v1.") {
		t.Fatal("Undrain returned, but the old instance is not in rotation")
	}
	// The new one leaves as a failed rollout's instances do: drained, then gone.
	if err := h.r.Drain(context.Background(), "web", next.Instance); err != nil {
		t.Fatal(err)
	}
	h.r.Update(withDesired(old))
	n := old.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the old release serves again", func() bool { return old.hits.Load() > n+20 })
	if sent, failed := l.finish(); failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
	if err := h.r.Undrain(context.Background(), "web", old.Instance); err != nil {
		t.Errorf("Undrain of an instance in rotation: %v", err)
	}
}

// withDesired is the app "web" wanting one instance, with ins.
func withDesired(ins ...*instance) []deploy.App {
	a := app("web", ins...)
	a.Desired = 1
	return []deploy.App{a}
}
