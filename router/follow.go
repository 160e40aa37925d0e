package router

import (
	"context"
	"slices"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Platform is what the router needs of the release engine: every app with
// its instances, and the events that tell what changed. engine.Service
// implements it.
type Platform interface {
	// Apps lists every app with its instances.
	Apps(ctx context.Context) ([]deploy.App, error)
	// Subscribe delivers an event whenever an app changes, until the
	// returned func is called. An event that may change routing carries
	// the app's snapshot (deploy.Event.Snapshot).
	Subscribe() (<-chan deploy.Event, func())
}

// resyncEvery is how often a following router re-reads every app, in case
// an event was missed (a subscriber that falls behind misses events).
const resyncEvery = 5 * time.Second

// Follow gives the router the platform whose apps it routes: Run reads
// every app before HAProxy's first configuration (so that after a restart
// requests wait in the waker while apps come back instead of meeting a
// 404), then applies each event's snapshot as it comes. Call it once,
// before Run. Without it the caller feeds Update itself.
//
// The router is given the platform after New, not in it: the schedulers
// the platform drives drain through the router, so the router exists
// first.
func (r *Router) Follow(p Platform) {
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
}

// platform returns what Follow gave, or nil.
func (r *Router) platform() Platform {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p
}

// subscribe starts following the platform, if there is one: it subscribes
// first, so nothing that changes after the first read is missed, then
// reads every app. The returned func follows the events until ctx ends.
func (r *Router) subscribe(ctx context.Context) func() {
	p := r.platform()
	if p == nil {
		return func() {}
	}
	events, cancel := p.Subscribe()
	r.resync(ctx, p)
	return func() {
		defer cancel()
		r.follow(ctx, p, events)
	}
}

// follow applies events until ctx ends.
func (r *Router) follow(ctx context.Context, p Platform, events <-chan deploy.Event) {
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			r.apply(ctx, p, e)
		case <-tick.C:
			r.resync(ctx, p)
		}
	}
}

// apply takes one event into the desired state: the app's snapshot
// replaces what the router knew of it; a destroyed app goes. An event that
// should carry a snapshot and does not (the app could not be read) makes
// the router read every app again. Traffic figures change no route.
func (r *Router) apply(ctx context.Context, p Platform, e deploy.Event) {
	switch {
	case e.Type == "activity":
	case e.Type == "destroyed":
		r.put(e.App, nil)
	case e.Snapshot != nil:
		r.put(e.App, e.Snapshot)
	default:
		r.resync(ctx, p)
	}
}

// resync reads every app and makes them the desired state.
func (r *Router) resync(ctx context.Context, p Platform) {
	apps, err := p.Apps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("router: read apps", "err", err)
		}
		return
	}
	r.Update(apps)
}

// put sets one app's desired state; a nil a removes the app.
func (r *Router) put(name string, a *deploy.App) {
	r.mu.Lock()
	hosts := true  // the host set may change
	apps := r.apps // changed in place: only read under r.mu
	i, found := slices.BinarySearchFunc(apps, name, func(a deploy.App, name string) int {
		switch {
		case a.Name < name:
			return -1
		case a.Name > name:
			return 1
		}
		return 0
	})
	switch {
	case a == nil && found:
		apps = slices.Delete(apps, i, i+1)
	case a == nil:
		r.mu.Unlock()
		return
	case found:
		// An app's hosts are its name's and its domains: an event that
		// changes neither (most: instances) leaves the host set alone.
		hosts = !slices.Equal(apps[i].Domains, a.Domains)
		apps[i] = ownApp(*a)
	default:
		apps = slices.Insert(apps, i, ownApp(*a))
	}
	r.setAppsLocked(apps, hosts)
	r.mu.Unlock()
	r.poke()
}

// ownApp copies the slices of a that the router keeps: Run reads the
// apps later, the caller may reuse them.
func ownApp(a deploy.App) deploy.App {
	a.Instances = slices.Clone(a.Instances)
	a.Domains = slices.Clone(a.Domains)
	a.Descriptor.Checks = slices.Clone(a.Descriptor.Checks)
	return a
}
