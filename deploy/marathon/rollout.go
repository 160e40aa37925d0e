package marathon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// errDeploymentFailed: Marathon reported the deployment as failed.
var errDeploymentFailed = errors.New("marathon reported the deployment failed")

// Deploy implements deploy.Scheduler: create or update the Marathon app,
// then wait (up to DeployTimeout) for Marathon's deployment. Marathon's
// upgrade strategy (minimumHealthCapacity 1, maximumOverCapacity 1) keeps
// the old tasks until the new ones pass their checks. On failure the
// deployment is rolled back, so Marathon is back on the previous
// definition.
func (s *Scheduler) Deploy(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	if err := validSpec(spec); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DeployTimeout)
	defer cancel()
	if err := s.layout(ctx, spec.App); err != nil {
		return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, err)
	}
	s.readVersion(ctx)
	if s.shouldMove(ctx, spec) {
		return s.move(ctx, spec, log)
	}
	if err := s.deployOne(ctx, spec, log); err != nil {
		return err
	}
	return s.dropBridge(ctx, spec.App)
}

// deployOne creates or replaces spec's Marathon app and waits for it.
func (s *Scheduler) deployOne(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	if _, _, worker := deploy.ParentApp(spec.App); worker {
		s.mu.Lock()
		s.specs[spec.App] = spec // a move may have to re-create it (move.go)
		s.mu.Unlock()
	}
	id := s.appID(spec.App)
	def := s.definition(spec)
	var prev *mApp
	var depID string
	err := s.retry(ctx, log, func() error {
		a, err := s.api.App(ctx, id)
		switch {
		case errors.Is(err, errNotFound):
			prev = nil
			depID, err = s.api.Create(ctx, def)
		case err != nil:
		default:
			prev = &a
			depID, err = s.api.Replace(ctx, def)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, err)
	}
	verb := "updated"
	if prev == nil {
		verb = "created"
	}
	fmt.Fprintf(log, "marathon: %s %s (%s, %d instances), deployment %s\n", verb, id, spec.Release, spec.Instances, depID)
	err = s.wait(ctx, spec.App, spec.Release, depID, spec.Instances, log)
	if err == nil {
		fmt.Fprintf(log, "marathon: deployment %s finished\n", depID)
		_ = s.refresh(ctx, spec.App)
		return nil
	}
	return s.rollback(spec, prev, depID, err, log)
}

// rollback puts Marathon back on the previous definition after a failed
// wait and returns the error Deploy reports.
func (s *Scheduler) rollback(spec deploy.Spec, prev *mApp, depID string, cause error, log io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := s.appID(spec.App)
	healthy, total := 0, 0
	if a, err := s.api.App(ctx, id); err == nil {
		healthy, total = a.newHealthy()
	}
	if errors.Is(cause, context.DeadlineExceeded) {
		cause = fmt.Errorf("not done after %s: %d of %d instances healthy: %w", s.cfg.DeployTimeout, healthy, spec.Instances, deploy.ErrUnhealthy)
	} else if healthy == 0 && total > 0 {
		cause = fmt.Errorf("%w: %w", cause, deploy.ErrUnhealthy)
	}
	fmt.Fprintf(log, "marathon: deployment %s failed (%v); rolling back\n", depID, cause)
	err := s.api.Rollback(ctx, depID)
	if errors.Is(err, errNotFound) && prev != nil {
		// The deployment is over (failed): put the previous version back.
		err = s.retry(ctx, log, func() error { _, err := s.api.Revert(ctx, id, prev.Version); return err })
	} else if errors.Is(err, errNotFound) {
		err = nil
	}
	_ = s.refresh(ctx, spec.App)
	if err != nil {
		return fmt.Errorf("deploy %s %s: %w (and the rollback failed: %v)", spec.App, spec.Release, cause, err)
	}
	fmt.Fprintf(log, "marathon: %s rolled back\n", id)
	return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, cause)
}

func validSpec(spec deploy.Spec) error {
	if app, typ, ok := deploy.ParentApp(spec.App); ok && deploy.ValidName(app) && !deploy.ValidName(typ) {
		// A Procfile type may hold '_' and capitals (Heroku's rule); a
		// Marathon id may not (AppDefinition.json's id pattern).
		return fmt.Errorf("deploy %s: process type %q cannot be a Marathon app id: use lower-case letters, digits and '-': %w", app, typ, deploy.ErrInvalid)
	}
	switch {
	case !deploy.ValidName(spec.App):
		return fmt.Errorf("deploy %q: app name: %w", spec.App, deploy.ErrInvalid)
	case spec.Image == "" && spec.SlugURL == "":
		return fmt.Errorf("deploy %s: no slug URL and no image: %w", spec.App, deploy.ErrInvalid)
	case spec.Image == "" && spec.Command == "":
		return fmt.Errorf("deploy %s: no start command: %w", spec.App, deploy.ErrInvalid)
	case spec.Instances < 0:
		return fmt.Errorf("deploy %s: negative instances: %w", spec.App, deploy.ErrInvalid)
	}
	return nil
}

// wait polls /v2/deployments (woken early by deployment events) until
// depID is gone, then checks that the app has n healthy new tasks.
func (s *Scheduler) wait(ctx context.Context, app, release, depID string, n int, log io.Writer) error {
	s.mu.Lock()
	s.waiting[depID] = app
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, depID)
		delete(s.done, depID)
		s.mu.Unlock()
	}()
	t := time.NewTicker(s.pollEvery)
	defer t.Stop()
	progress, warned := "", false
	for {
		s.mu.Lock()
		ok, known := s.done[depID]
		s.mu.Unlock()
		failed := known && !ok // the event; a superseded deployment fails too
		ds, err := s.api.Deployments(ctx)
		if err != nil && !warned && ctx.Err() == nil {
			fmt.Fprintf(log, "marathon: %v; still waiting\n", err)
			warned = true
		}
		if err == nil {
			running := false
			for _, d := range ds {
				running = running || (d.ID == depID && !failed)
			}
			a, aerr := s.api.App(ctx, s.appID(app))
			if aerr == nil {
				h, total := a.newHealthy()
				if p := fmt.Sprintf("%d/%d", h, n); p != progress && total > 0 {
					fmt.Fprintf(log, "marathon: %s instances healthy\n", p)
					progress = p
				}
				if !running && h >= n {
					return nil
				}
				if !running && a.Labels[releaseLabel] == release && a.Instances != n {
					// A forced scale (a sleep, a wake) superseded the
					// deployment: the release is in place at the newer
					// count once the scale's own deployment is done.
					if h >= a.Instances && len(a.Deployments) == 0 {
						fmt.Fprintf(log, "marathon: deployment superseded by a scale to %d\n", a.Instances)
						return nil
					}
					if len(a.Deployments) > 0 {
						running = true
					}
				}
				if !running && depID != "" {
					return errDeploymentFailed
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.kick:
		}
	}
}

// retry runs f again while Marathon answers 409 (another deployment holds
// the app), with exponential backoff; then it gives up with ErrConflict.
func (s *Scheduler) retry(ctx context.Context, log io.Writer, f func() error) error {
	delay := s.retryBase
	var err error
	for i := 0; i < s.retries; i++ {
		if err = f(); err == nil {
			return nil
		}
		var c *conflictError
		if !errors.As(err, &c) {
			return err
		}
		if log != nil {
			fmt.Fprintf(log, "marathon: %v; retrying in %s\n", err, delay)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, s.backoffMax)
	}
	return fmt.Errorf("gave up after %d tries: %w: %w", s.retries, err, deploy.ErrConflict)
}

// Scale implements deploy.Scheduler. A scale is forced: a sleep or a wake
// during a deployment supersedes it (Marathon's force=true), as the newer
// desired count is the one the user wants; the release the deployment
// installed stays. Waking from zero first resets Marathon's launch delay.
// Scaling down drains the tasks that go
// (youngest first, as Marathon's own killSelection) and kills exactly those
// with /v2/tasks/delete?scale=true. Going to sleep stores the awake count
// in FLOCK_AWAKE_INSTANCES; waking stores the new count. The label is
// written only when no task runs, because a label change makes Marathon
// restart the tasks.
func (s *Scheduler) Scale(ctx context.Context, app string, n int) error {
	if !deploy.ValidName(app) || n < 0 {
		return fmt.Errorf("scale %q to %d: %w", app, n, deploy.ErrInvalid)
	}
	if err := s.layout(ctx, app); err != nil {
		return fmt.Errorf("scale %s to %d: %w", app, n, err)
	}
	err := s.retry(ctx, nil, func() error {
		a, err := s.api.App(ctx, s.appID(app))
		if errors.Is(err, errNotFound) {
			return deploy.ErrNotFound
		}
		if err != nil {
			return err
		}
		cur := a.Instances
		switch {
		case n == cur:
			return nil
		case n == 0:
			s.drain(ctx, app, a.instances(nil))
			var labels map[string]string
			if a.Labels[awakeLabel] != strconv.Itoa(cur) {
				labels = maps.Clone(a.Labels)
				labels[awakeLabel] = strconv.Itoa(cur)
			}
			_, err = s.api.Update(ctx, s.scaleDefinition(app, 0, labels), true)
			return err
		case n < cur:
			victims := youngest(a.Tasks, cur-n)
			if len(victims) < cur-n {
				_, err = s.api.Update(ctx, s.scaleDefinition(app, n, nil), true)
				return err
			}
			var ins []deploy.Instance
			for _, in := range a.instances(nil) {
				if slices.Contains(victims, in.ID) {
					ins = append(ins, in)
				}
			}
			s.drain(ctx, app, ins)
			return s.api.KillTasks(ctx, victims)
		default:
			var labels map[string]string
			if cur == 0 && a.Labels[awakeLabel] != strconv.Itoa(n) {
				labels = maps.Clone(a.Labels)
				labels[awakeLabel] = strconv.Itoa(n)
			}
			def := s.scaleDefinition(app, n, labels)
			if cur == 0 {
				def.Fetch = s.resigned(a)
				// A wake must not wait out the launch backoff of an
				// earlier crash loop (up to maxLaunchDelaySeconds).
				if err := s.api.ResetDelay(ctx, a.ID); err != nil {
					return err
				}
			}
			_, err = s.api.Update(ctx, def, true)
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("scale %s to %d: %w", app, n, err)
	}
	_ = s.refresh(ctx, app)
	return nil
}

// Remove implements deploy.Scheduler: drain every instance, then delete the
// app (forced, so a deployment in progress does not keep it alive).
// Removing an app's web process removes all its process types: its group
// (DELETE /v2/groups, "all associated applications will be deleted"),
// or in the flat layout each of its Marathon apps.
func (s *Scheduler) Remove(ctx context.Context, app string) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("remove %q: %w", app, deploy.ErrInvalid)
	}
	if err := s.layout(ctx, app); err != nil {
		return fmt.Errorf("remove %s: %w", app, err)
	}
	_, _, worker := deploy.ParentApp(app)
	flat := s.isFlat(app)
	if err := s.removeOne(ctx, app); err != nil {
		return err
	}
	switch {
	case worker:
		return nil
	case flat:
		return s.removeFlatTypes(ctx, app)
	}
	if _, err := s.api.DeleteGroup(ctx, s.groupID(app)); err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("remove %s: %w", app, err)
	}
	if err := s.removeOne(ctx, bridge(app)); err != nil { // left by a move that failed
		return err
	}
	s.mu.Lock()
	var types []string
	for name := range s.apps {
		if parentApp(name) == app && name != app {
			types = append(types, name)
		}
	}
	s.mu.Unlock()
	for _, name := range types {
		s.forget(name)
	}
	return nil
}

// removeFlatTypes removes the process types of a flat app, as Marathon
// lists them (the cache may not know them all), and forgets the layout: a
// new app of that name gets a group.
func (s *Scheduler) removeFlatTypes(ctx context.Context, app string) error {
	apps, err := s.api.Apps(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", app, err)
	}
	for _, a := range apps {
		name, flat, ok := s.appName(a.ID)
		if !ok || !flat || name == app || parentApp(name) != app || a.Labels[managedLabel] != "true" {
			continue
		}
		if err := s.removeOne(ctx, name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	delete(s.flat, app)
	s.mu.Unlock()
	return nil
}

// removeOne drains and deletes one Marathon app.
func (s *Scheduler) removeOne(ctx context.Context, app string) error {
	a, err := s.api.App(ctx, s.appID(app))
	if errors.Is(err, errNotFound) {
		s.forget(app)
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", app, err)
	}
	s.drain(ctx, app, a.instances(nil))
	if _, err := s.api.Delete(ctx, a.ID); err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("remove %s: %w", app, err)
	}
	s.forget(app)
	return nil
}

// drain asks the Drainer to take ins out of rotation, all at once, and
// waits for it; a drain error only means the instance is stopped sooner.
func (s *Scheduler) drain(ctx context.Context, app string, ins []deploy.Instance) {
	if s.cfg.Drainer == nil || len(ins) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Go(func() {
			if err := s.cfg.Drainer.Drain(ctx, app, in); err != nil {
				s.log.Warn("drain failed", "app", app, "instance", in.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// youngest picks k task ids to kill among the live tasks: not yet running
// first, then the most recently started.
func youngest(tasks []mTask, k int) []string {
	var ts []mTask
	for _, t := range tasks {
		if t.live() { // a task being killed already goes
			ts = append(ts, t)
		}
	}
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].running() != ts[j].running() {
			return !ts[i].running()
		}
		return ts[i].StartedAt > ts[j].StartedAt
	})
	ids := make([]string, 0, k)
	for _, t := range ts[:min(k, len(ts))] {
		ids = append(ids, t.ID)
	}
	return ids
}
