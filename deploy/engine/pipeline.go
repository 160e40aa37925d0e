package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Deploy builds the source tree in req.Dir and rolls it out: a new
// immutable release vN whose instances must pass their checks before the
// old ones stop. It waits in the app's queue and returns when the release
// is live or the deploy failed; the running release keeps serving on any
// failure. The log goes to log (and to the deploy record).
func (s *Service) Deploy(ctx context.Context, req deploy.DeployRequest, log io.Writer) (deploy.Release, error) {
	desc, derr := deploy.ReadDescriptor(req.Dir)
	name := req.App
	if name == "" {
		name = desc.Name
	}
	if name == "" && derr == nil {
		return deploy.Release{}, fmt.Errorf("the app has no name: give it one with \"name\" in package.json or flock.json, "+
			"with flock deploy --app NAME (flock deploy names it after its directory), or push to /git/NAME.git: %w", deploy.ErrInvalid)
	}
	if name != "" {
		if err := deploy.CheckNewName(name); err != nil {
			return deploy.Release{}, fmt.Errorf("deploy: %w", err)
		}
	}
	if derr == nil && name != "" {
		derr = s.checkHosts(name, desc) // before the build: fail fast
	}
	if derr != nil {
		if name != "" {
			if _, err := s.store.app(name); err == nil {
				s.recordFailure(name, req, derr)
			}
		}
		return deploy.Release{}, fmt.Errorf("deploy: %w", derr)
	}
	trigger := req.Trigger
	if trigger == "" {
		trigger = "cli"
	}
	src, err := snapshot(req.Dir)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	req.Dir = src // the caller may remove its folder once Deploy returns
	return s.enqueue(ctx, name, req.Commit, trigger, src, log, func(ctx context.Context, rec *deploy.Rollout, log io.Writer) (deploy.Release, error) {
		return s.build(ctx, name, desc, req, rec, log)
	})
}

// recordFailure keeps a deploy that failed before it was queued.
func (s *Service) recordFailure(app string, req deploy.DeployRequest, err error) {
	now := time.Now().UTC()
	d := deploy.Rollout{ID: s.newID(), App: app, Commit: req.Commit, Trigger: req.Trigger, Status: deploy.RolloutFailed,
		Error: err.Error(), QueuedAt: now, StartedAt: &now, FinishedAt: &now, Log: err.Error() + "\n"}
	if e := s.store.putDeploy(d); e != nil {
		s.log.Error("record deploy", "app", app, "err", e)
	}
	s.publish(deploy.Event{App: app, Type: "deploy", Rollout: deploy.RolloutFailed, Message: "deploy failed: " + err.Error()})
}

func (s *Service) newID() string {
	s.mu.Lock()
	s.seq++
	n := s.seq % 1000
	s.mu.Unlock()
	return fmt.Sprintf("%s-%03d", time.Now().UTC().Format("20060102T150405.000000"), n)
}

// build is the job of a deploy from source: build, record, roll out.
func (s *Service) build(ctx context.Context, app string, desc deploy.Descriptor, req deploy.DeployRequest, rec *deploy.Rollout, log io.Writer) (deploy.Release, error) {
	prev, err := s.store.updateApp(app, true, func(r *appRecord) error { r.LastVersion++; return nil })
	if err != nil {
		return deploy.Release{}, fmt.Errorf("deploy %s: %w", app, err)
	}
	s.saveDeploy(*rec) // the app exists now
	name := deploy.ReleaseName(prev.LastVersion)
	rec.Release = name
	from := desc.File
	if from == "" {
		from = "no package.json or flock.json: descriptor defaults"
	}
	fmt.Fprintf(log, "-----> Building %s %s (%s)\n", app, name, from)
	select {
	case s.builds <- struct{}{}:
	case <-ctx.Done():
		return deploy.Release{}, ctx.Err()
	}
	start := time.Now()
	slug, cmd, err := s.buildInSlot(ctx, req.Dir, app, name, desc.Cmd, log)
	if err != nil {
		s.markFailed(app, fmt.Sprintf("build of %s failed: %v", name, err))
		return deploy.Release{}, fmt.Errorf("build %s %s: %w", app, name, err)
	}
	s.log.Debug("built", "app", app, "release", name, "took", time.Since(start).Round(time.Millisecond))
	rel := deploy.Release{
		App: app, Name: name, Version: prev.LastVersion, Commit: req.Commit, Trigger: rec.Trigger,
		Slug: slug, Command: cmd, Image: desc.Image, Descriptor: desc, Env: maps.Clone(desc.Env), CreatedAt: time.Now().UTC(),
		Config: s.configNow(app), // the app's config vars as they are now (config.go)
	}
	if err := s.store.putRelease(rel); err != nil {
		return deploy.Release{}, fmt.Errorf("record release %s %s: %w", app, name, err)
	}
	return rel, s.rollout(ctx, rel, log)
}

// releasePhase runs rel's release command (the Procfile's "release:"),
// if it has one, before any of its instances starts: on every release
// that is rolled out, a build's or a rollback's, as on Heroku. A failure
// stops the rollout; the running release keeps serving.
func (s *Service) releasePhase(ctx context.Context, rel deploy.Release, log io.Writer) error {
	cmd := rel.Descriptor.ReleaseCommand
	if cmd == "" {
		return nil
	}
	rr, ok := s.sched.(deploy.ReleaseRunner)
	if !ok {
		return fmt.Errorf("the release phase (Procfile release:) runs only on the embedded scheduler: %w", deploy.ErrInvalid)
	}
	fmt.Fprintf(log, "-----> Running the release command of %s: %s\n", rel.Name, cmd)
	start := time.Now()
	if err := rr.RunRelease(ctx, s.spec(rel, 0), cmd, log); err != nil {
		fmt.Fprintf(log, " !     The release command failed; %s is not started and the running release keeps serving.\n", rel.Name)
		return fmt.Errorf("release command: %w", err)
	}
	fmt.Fprintf(log, "-----> Release command done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// buildInSlot runs the builder in the build slot its caller took, and
// gives the slot back however the build ends (a panic included).
func (s *Service) buildInSlot(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	defer func() { <-s.builds }()
	return s.builder.Build(ctx, dir, app, release, cmd, log)
}

// rollout runs rel and makes it the app's current release once healthy.
// The instance count carries over from the running release unless the
// descriptor's "instances" changed (as on Heroku and Dokku).
func (s *Service) rollout(ctx context.Context, rel deploy.Release, log io.Writer) error {
	rec, err := s.store.app(rel.App)
	if err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	release, err := s.claimHosts(rel.App, rel.Descriptor)
	if err != nil {
		s.markFailed(rel.App, err.Error())
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	defer release()
	n := rel.Descriptor.Instances
	var prev *deploy.Release
	if rec.Current != "" {
		if cur, err := s.store.release(rel.App, rec.Current); err == nil {
			prev = &cur
			if cur.Descriptor.Instances == n {
				n = rec.Desired
			}
		}
	}
	if err := s.releasePhase(ctx, rel, log); err != nil {
		s.markFailed(rel.App, fmt.Sprintf("%s: %v", rel.Name, err))
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	if err := s.deployProcesses(ctx, rec, rel, n > 0, log); err != nil {
		s.markFailed(rel.App, fmt.Sprintf("%s failed: %v", rel.Name, err))
		s.restoreProcesses(ctx, rec, prev, rel)
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	fmt.Fprintf(log, "-----> Starting %d instance(s) of %s\n", n, rel.Name)
	if err := s.sched.Deploy(ctx, s.spec(rel, n), log); err != nil {
		s.markFailed(rel.App, fmt.Sprintf("%s failed: %v", rel.Name, err))
		s.restoreProcesses(ctx, rec, prev, rel)
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	if prev != nil {
		s.removeStaleProcesses(context.WithoutCancel(ctx), *prev, rel)
	}
	_, err = s.store.updateApp(rel.App, false, func(r *appRecord) error {
		r.wake()
		r.Current, r.Desired, r.Failed = rel.Name, n, ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	s.publish(deploy.Event{App: rel.App, Type: "release", Message: rel.Name + " live"})
	if s.cfg.Router != nil && n > 0 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.cfg.Router.WaitRouted(rctx, rel.App)
		cancel()
		if err != nil {
			fmt.Fprintf(log, "-----> Warning: the router has not picked up %s yet: %v\n", rel.App, err)
		}
	}
	fmt.Fprintf(log, "-----> %s is live at %s\n", rel.Name, s.URL(rel.App))
	return nil
}

// markFailed records why an app without a serving release failed; an app
// whose old release still serves stays as it is.
func (s *Service) markFailed(app, reason string) {
	_, err := s.store.updateApp(app, false, func(r *appRecord) error {
		if r.Current == "" {
			r.Failed = reason
		}
		return nil
	})
	if err != nil && !errors.Is(err, deploy.ErrNotFound) {
		s.log.Error("mark failed", "app", app, "err", err)
	}
}

// Rollback re-runs an old release's slug, without building, as a new
// release. release "" means the one before the current release.
func (s *Service) Rollback(ctx context.Context, app, release string, log io.Writer) (deploy.Release, error) {
	rec, err := s.store.app(app)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("rollback %s: %w", app, err)
	}
	if release == "" {
		cur, ok := deploy.ParseReleaseName(rec.Current)
		if !ok || cur < 2 {
			return deploy.Release{}, fmt.Errorf("rollback %s: no earlier release: %w", app, deploy.ErrConflict)
		}
		release = deploy.ReleaseName(cur - 1)
	}
	old, err := s.store.release(app, release)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("rollback %s to %s: %w", app, release, err)
	}
	return s.enqueue(ctx, app, old.Commit, "rollback to "+old.Name, "", log, func(ctx context.Context, d *deploy.Rollout, log io.Writer) (deploy.Release, error) {
		r, err := s.store.updateApp(app, false, func(r *appRecord) error { r.LastVersion++; return nil })
		if err != nil {
			return deploy.Release{}, fmt.Errorf("rollback %s: %w", app, err)
		}
		rel := old
		rel.Version, rel.Name, rel.Trigger, rel.CreatedAt = r.LastVersion, deploy.ReleaseName(r.LastVersion), d.Trigger, time.Now().UTC()
		d.Release = rel.Name
		fmt.Fprintf(log, "-----> Rolling back %s to %s as %s (no build)\n", app, old.Name, rel.Name)
		if err := s.store.putRelease(rel); err != nil {
			return deploy.Release{}, fmt.Errorf("rollback %s: %w", app, err)
		}
		undo := s.adoptConfig(app, rel.Config) // a rollback restores old's config vars
		if err := s.rollout(ctx, rel, log); err != nil {
			undo()
			return rel, err
		}
		return rel, nil
	})
}

// wake ends a sleep, counting the instance-time it saved.
func (r *appRecord) wake() {
	if r.Asleep && r.AsleepSince != nil {
		r.SavedSeconds += float64(r.Desired) * time.Since(*r.AsleepSince).Seconds()
	}
	r.Asleep, r.AsleepSince = false, nil
}

// Scale sets how many instances the app runs. 0 stops it: unlike a
// sleeping app, a stopped app is not woken by requests.
func (s *Service) Scale(ctx context.Context, app string, n int) error {
	if n < 0 || n > 100 {
		return fmt.Errorf("scale %s: instances must be between 0 and 100, not %d: %w", app, n, deploy.ErrInvalid)
	}
	unlock, err := s.lockApp(app)
	if err != nil {
		return fmt.Errorf("scale %s: %w", app, err)
	}
	defer unlock()
	rec, err := s.store.app(app)
	if err != nil {
		return fmt.Errorf("scale %s: %w", app, err)
	}
	if rec.Current == "" {
		return fmt.Errorf("scale %s: no release deployed yet: %w", app, deploy.ErrConflict)
	}
	if _, err := s.store.updateApp(app, false, func(r *appRecord) error {
		r.wake()
		r.Desired = n
		return nil
	}); err != nil {
		return fmt.Errorf("scale %s: %w", app, err)
	}
	// Tell subscribers first: the router then knows, before the scheduler
	// drains anything, whether other instances are coming.
	s.publish(deploy.Event{App: app, Type: "state", Message: fmt.Sprintf("scaled to %d", n)})
	// Once recorded, the change is carried out whole, also for a client
	// that leaves now: else the store and the instances would disagree.
	if err := s.sched.Scale(context.WithoutCancel(ctx), app, n); err != nil {
		return fmt.Errorf("scale %s: %w", app, err)
	}
	return nil
}

// Sleep drains and scales an app to zero until its next request. A
// sleeping or stopped app is left as it is.
func (s *Service) Sleep(ctx context.Context, app string) error {
	unlock, err := s.lockApp(app)
	if err != nil {
		return fmt.Errorf("sleep %s: %w", app, err)
	}
	defer unlock()
	rec, err := s.store.app(app)
	if err != nil {
		return fmt.Errorf("sleep %s: %w", app, err)
	}
	if rec.Asleep || rec.Current == "" || rec.Desired == 0 {
		return nil
	}
	now := time.Now().UTC()
	if _, err := s.store.updateApp(app, false, func(r *appRecord) error {
		r.Asleep, r.AsleepSince = true, &now
		return nil
	}); err != nil {
		return fmt.Errorf("sleep %s: %w", app, err)
	}
	s.mu.Lock()
	delete(s.waking, app)
	s.mu.Unlock()
	s.publish(deploy.Event{App: app, Type: "state", State: deploy.StateSleeping, Message: "asleep"})
	if err := s.sched.Scale(context.WithoutCancel(ctx), app, 0); err != nil { // see Scale
		return fmt.Errorf("sleep %s: %w", app, err)
	}
	if rel, err := s.store.release(app, rec.Current); err == nil {
		s.scaleProcesses(context.WithoutCancel(ctx), rec, rel, false) // workers sleep with the app
	}
	return nil
}

// Wake scales a sleeping app back to its desired instances and returns at
// once; it is idempotent, so any number of concurrent requests may call it.
func (s *Service) Wake(ctx context.Context, app string) error {
	unlock, err := s.lockApp(app)
	if err != nil {
		return fmt.Errorf("wake %s: %w", app, err)
	}
	defer unlock()
	rec, err := s.store.app(app)
	if err != nil {
		return fmt.Errorf("wake %s: %w", app, err)
	}
	if !rec.Asleep && rec.Failed == "" {
		return nil
	}
	rec, err = s.store.updateApp(app, false, func(r *appRecord) error {
		r.wake()
		if r.Current != "" {
			r.Failed = ""
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wake %s: %w", app, err)
	}
	s.mu.Lock()
	s.waking[app] = true
	s.mu.Unlock()
	err = s.sched.Scale(context.WithoutCancel(ctx), app, rec.Desired) // see Scale
	if rel, rerr := s.store.release(app, rec.Current); rerr == nil && rec.Desired > 0 {
		s.scaleProcesses(context.WithoutCancel(ctx), rec, rel, true)
	}
	s.publish(deploy.Event{App: app, Type: "state", State: deploy.StateWaking, Message: "waking"})
	if err != nil {
		return fmt.Errorf("wake %s: %w", app, err)
	}
	return nil
}

// Fail marks an app failed (the waker calls it when a wake times out).
func (s *Service) Fail(app, reason string) {
	if _, err := s.store.updateApp(app, false, func(r *appRecord) error { r.Failed = reason; return nil }); err != nil {
		s.log.Error("mark failed", "app", app, "err", err)
		return
	}
	s.mu.Lock()
	delete(s.waking, app)
	s.mu.Unlock()
	s.publish(deploy.Event{App: app, Type: "state", State: deploy.StateFailed, Message: reason})
}

// Destroy stops every instance of an app and forgets it, its releases,
// its deploys and its slugs.
func (s *Service) Destroy(ctx context.Context, app string) error {
	unlock, err := s.lockApp(app)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", app, err)
	}
	defer unlock()
	if _, err := s.store.app(app); err != nil {
		return fmt.Errorf("destroy %s: %w", app, err) // destroyed while we waited
	}
	// Carried out whole, also for a client that leaves now (see Scale).
	if err := s.sched.Remove(context.WithoutCancel(ctx), app); err != nil {
		return fmt.Errorf("destroy %s: %w", app, err)
	}
	if rels, err := s.store.releases(app); err == nil {
		types := map[string]bool{}
		for _, r := range rels {
			for typ := range r.Descriptor.Processes {
				types[typ] = true
			}
		}
		for typ := range types {
			if err := s.sched.Remove(context.WithoutCancel(ctx), deploy.ProcessApp(app, typ)); err != nil {
				return fmt.Errorf("destroy %s: %s process: %w", app, typ, err)
			}
		}
	}
	if err := s.store.deleteApp(app); err != nil {
		return fmt.Errorf("destroy %s: %w", app, err)
	}
	if s.cfg.Artifacts != "" && deploy.ValidName(app) {
		os.RemoveAll(filepath.Join(s.cfg.Artifacts, app)) //nolint:errcheck // slugs are a cache of the store
	}
	s.mu.Lock()
	delete(s.activity, app)
	delete(s.waking, app)
	// Waiters on this lock find the app gone; new callers get ErrNotFound
	// before they would make a new one.
	delete(s.locks, app)
	s.mu.Unlock()
	s.publish(deploy.Event{App: app, Type: "destroyed", Message: "destroyed"})
	return nil
}
