package marathon

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/flock-paas/flock/deploy"
)

// Moving a flat app into its group. Marathon refuses /flock/hello/web
// while /flock/hello is an app (an id cannot be an app and a group), so
// the web process cannot move in place. Its next release is started
// beside it instead, as the bridge <Group>/<app>--web, whose instances
// are the app's; once they are healthy the flat apps are drained and
// deleted, the release is deployed into the group, its process types
// re-created there from their specs, and the bridge is drained and
// deleted. Some healthy web instance serves at every moment. A move that
// fails after the flat web app is gone leaves the bridge serving; the
// next deploy finds the app in its group, and destroy removes the bridge.

// bridge is the scheduler name of app's bridge. No process type is named
// web (the web process is the app itself), so it names nothing else.
func bridge(app string) string { return deploy.ProcessApp(app, "web") }

func isBridge(name string) bool {
	_, typ, ok := deploy.ParentApp(name)
	return ok && typ == "web"
}

// withBridge returns a copy of app's instances with those of its bridge,
// if a move is under way.
func (s *Scheduler) withBridge(app string, ins []deploy.Instance) []deploy.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.withBridgeLocked(app, ins)
}

func (s *Scheduler) withBridgeLocked(app string, ins []deploy.Instance) []deploy.Instance {
	out := slices.Clone(ins)
	if _, _, worker := deploy.ParentApp(app); !worker {
		if b, ok := s.apps[bridge(app)]; ok {
			out = append(out, b.instances...)
		}
	}
	return out
}

// shouldMove reports whether spec, a web process, is a new release of a
// flat app whose process types this Flock can re-create: it deployed
// each of them in this release (the engine deploys them before the web
// process). Otherwise the app stays flat, and is adopted as it is.
func (s *Scheduler) shouldMove(ctx context.Context, spec deploy.Spec) bool {
	if _, _, worker := deploy.ParentApp(spec.App); worker || !s.isFlat(spec.App) {
		return false
	}
	a, err := s.api.App(ctx, s.appID(spec.App))
	if err != nil || a.Labels[releaseLabel] == spec.Release {
		return false // a redeploy of the running release restarts nothing
	}
	types, err := s.flatTypes(ctx, spec.App)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range types {
		if ws, ok := s.specs[name]; !ok || ws.Release != spec.Release {
			return false
		}
	}
	return true
}

// flatTypes lists the Marathon apps of a flat app's process types.
func (s *Scheduler) flatTypes(ctx context.Context, app string) ([]string, error) {
	apps, err := s.api.Apps(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, a := range apps {
		name, flat, ok := s.appName(a.ID)
		if ok && flat && name != app && !isBridge(name) && parentApp(name) == app && a.Labels[managedLabel] == "true" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// move deploys spec, the web process of a flat app, into the app's group
// (see above).
func (s *Scheduler) move(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	app := spec.App
	fmt.Fprintf(log, "marathon: moving %s into the group %s\n", s.appID(app), s.groupID(app))
	b := spec
	b.App = bridge(app)
	if err := s.deployOne(ctx, b, log); err != nil {
		if rerr := s.removeOne(context.WithoutCancel(ctx), b.App); rerr != nil {
			s.log.Warn("remove the bridge of a failed move", "app", app, "err", rerr)
		}
		return err // the flat app keeps serving its release
	}
	types, err := s.flatTypes(ctx, app)
	if err != nil {
		return fmt.Errorf("deploy %s %s: %w", app, spec.Release, err)
	}
	// The bridge serves: the flat apps go (the web app drained first).
	for _, name := range append([]string{app}, types...) {
		if err := s.removeOne(ctx, name); err != nil {
			return err
		}
	}
	s.setFlat(app, false)
	if err := s.deployOne(ctx, spec, log); err != nil {
		return err // the bridge keeps serving
	}
	for _, name := range types {
		s.mu.Lock()
		ws := s.specs[name]
		s.mu.Unlock()
		if err := s.deployOne(ctx, ws, log); err != nil {
			return err
		}
	}
	if err := s.removeOne(ctx, b.App); err != nil {
		return err
	}
	fmt.Fprintf(log, "marathon: %s moved into %s\n", app, s.groupID(app))
	return nil
}

// dropBridge removes the bridge a failed move left serving beside app's
// group, once a release of app is in its group.
func (s *Scheduler) dropBridge(ctx context.Context, app string) error {
	if isBridge(app) || s.isFlat(app) {
		return nil
	}
	if _, _, worker := deploy.ParentApp(app); worker {
		return nil
	}
	s.mu.Lock()
	_, ok := s.apps[bridge(app)]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return s.removeOne(ctx, bridge(app))
}
