package router

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// WaitRouted returns once the serving HAProxy worker routes the app's host
// to the app's backend: the backend exists and the host map names it. From
// then on a request to the app's URL reaches an instance (or, while none
// is up yet, the waker, which proxies to the first healthy one), so a
// deploy reported live answers at once.
func (r *Router) WaitRouted(ctx context.Context, app string) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("wait for %q: not an app name", app)
	}
	host, be := deploy.AppHost(app, r.cfg.Domain), hap.BackendName(app)
	for {
		if r.routes(ctx, host, be) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to be routed: %w", app, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (r *Router) routes(ctx context.Context, host, be string) bool {
	backends, err := r.admin.cmd(ctx, "show backend")
	if err != nil || !hasField(backends, be, 0) {
		return false
	}
	m, err := r.admin.cmd(ctx, "show map "+r.settings.path(mapFile))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(m, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == host && f[2] == be {
			return true
		}
	}
	return false
}

// hasField reports whether a line of out has word at field i.
func hasField(out, word string, i int) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > i && f[i] == word {
			return true
		}
	}
	return false
}
