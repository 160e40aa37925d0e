package router

import (
	"context"
	"fmt"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// routes is what the current HAProxy worker routes, as the loop last
// applied it through the runtime API or a reload: the servers in rotation
// of each backend, and the host map. Readers wait for it to change with
// await instead of asking HAProxy.
type routes struct {
	servers map[string]map[string]bool // backend → names of servers in rotation
	hosts   map[string]string          // host → backend
}

// setRoutes publishes what the current worker routes and wakes whoever
// awaits a change.
func (r *Router) setRoutes(v routes) {
	r.mu.Lock()
	r.routes = v
	r.signalLocked()
	r.mu.Unlock()
}

// signalLocked wakes every await: the desired state or the routes
// changed. r.mu is held.
func (r *Router) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// await returns once cond holds or ctx ends. cond runs with r.mu held,
// again after each change of the desired state or of what HAProxy routes.
func (r *Router) await(ctx context.Context, cond func() bool) error {
	for {
		r.mu.Lock()
		ok, changed := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// WaitRouted returns once the serving HAProxy worker routes the app's host
// to the app's backend: the backend exists, the host map names it, and
// when the app has healthy instances, one of them is in rotation. From
// then on a request to the app's URL reaches an instance (or, while none
// is up yet, the waker, which proxies to the first healthy one), so a
// deploy reported live answers at once. It waits on the router's own
// record of what it applied (signalled as the loop applies a change), not
// on HAProxy.
func (r *Router) WaitRouted(ctx context.Context, app string) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("wait for %q: not an app name", app)
	}
	host, be := deploy.AppHost(app, r.cfg.Domain), hap.BackendName(app)
	err := r.await(ctx, func() bool {
		servers, ok := r.routes.servers[be]
		if !ok || r.routes.hosts[host] != be {
			return false
		}
		wanted := r.wantedServersLocked(app)
		for _, name := range wanted {
			if servers[name] {
				return true
			}
		}
		return len(wanted) == 0
	})
	if err != nil {
		return fmt.Errorf("wait for %s to be routed: %w", app, err)
	}
	return nil
}
