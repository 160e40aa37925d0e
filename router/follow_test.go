package router

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// eventPlatform is what the engine gives a router that follows it: every
// app, and an event with the app's snapshot whenever one changes.
type eventPlatform struct {
	mu     sync.Mutex
	apps   []deploy.App
	events chan deploy.Event
}

func newEventPlatform() *eventPlatform { return &eventPlatform{events: make(chan deploy.Event, 16)} }

func (p *eventPlatform) Apps(context.Context) ([]deploy.App, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.apps), nil
}

func (p *eventPlatform) Subscribe() (<-chan deploy.Event, func()) { return p.events, func() {} }

// publish changes one app and sends its event with the snapshot.
func (p *eventPlatform) publish(a deploy.App) {
	p.mu.Lock()
	i := slices.IndexFunc(p.apps, func(b deploy.App) bool { return b.Name == a.Name })
	if i < 0 {
		p.apps = append(p.apps, a)
	} else {
		p.apps[i] = a
	}
	p.mu.Unlock()
	snap := a
	p.events <- deploy.Event{App: a.Name, Type: "instances", Snapshot: &snap}
}

// TestDrainStartsOnceSuccessorRouted replays a rollout as flock up runs
// it: the router follows the platform's events, the old instance is
// drained the moment the new one is healthy, and the event that brings the
// new instance comes a moment later. The drain takes the old instance out
// only once the new one is in HAProxy (UP in the current worker), learning
// of it from the router's own apply signal: it sends HAProxy no "show
// stat" until the old instance is out. No request fails.
func TestDrainStartsOnceSuccessorRouted(t *testing.T) {
	p := newEventPlatform()
	old := newInstance(t, "web.v1.1")
	next := newInstance(t, "web.v2.1")
	next.Release = "v2"
	oldServer, nextServer := serverName(old.Instance), serverName(next.Instance)

	var (
		mu        sync.Mutex
		statsSent int       // "show stat" before the old instance went out
		out       time.Time // when it was put in maintenance
		nextUp    bool      // whether the new one was UP in HAProxy then
	)
	var h *harness
	trace := func(cmd string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !out.IsZero():
		case strings.HasPrefix(cmd, "show stat"):
			statsSent++
		case cmd == "set server app_web/"+oldServer+" state maint":
			out, nextUp = time.Now(), serverUp(h.r, "app_web", nextServer)
		}
	}
	h = newHarnessWith(t, nil, func(r *Router) {
		r.Follow(p)
		r.admin.Trace, r.master.Trace = trace, trace
	})
	web := func(ins ...*instance) deploy.App {
		a := app("web", ins...)
		a.Desired, a.State = 1, deploy.StateRunning
		return a
	}
	p.publish(web(old))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.r.WaitRouted(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	l := startLoad(h, "web.localhost", 4)

	drained := make(chan error, 1)
	go func() { drained <- h.r.Drain(context.Background(), "web", old.Instance) }()
	n := old.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the old instance serves while its drain waits for a successor", func() bool { return old.hits.Load() > n+5 })
	published := time.Now()
	p.publish(web(old, next))
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain never returned")
	}
	p.publish(web(next))
	n = next.hits.Load()
	testkit.WaitFor(t, 5*time.Second, "the new release serves", func() bool { return next.hits.Load() > n+20 })
	if sent, failed := l.finish(); failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("the old instance went out %v after the event that brought its successor", out.Sub(published))
	switch {
	case out.IsZero():
		t.Fatal("the old instance never went into maintenance")
	case !nextUp:
		t.Error("the old instance went out before the new one was UP in HAProxy")
	case out.Sub(published) >= successorWait:
		t.Errorf("the old instance went out %v after the new one was published: the drain timed out instead of hearing of it", out.Sub(published))
	}
	if statsSent != 0 {
		t.Errorf("the drain sent %d \"show stat\" before the old instance went out, want none", statsSent)
	}
}

// serverUp asks the current worker whether the backend's server is UP.
func serverUp(r *Router, be, name string) bool {
	api := hap.Runtime{Path: r.admin.Path, Master: true, Prefix: "@1 "}
	b, err := api.Cmd(context.Background(), "show stat "+be+" 4 -1")
	if err != nil {
		return false
	}
	rows, err := hap.ParseBytes([]byte(b))
	if err != nil {
		return false
	}
	for _, row := range rows {
		if row.Proxy == be && row.Server == name {
			return strings.HasPrefix(row.Status, "UP")
		}
	}
	return false
}
