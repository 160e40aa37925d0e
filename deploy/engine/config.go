package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Config returns an app's config vars with their values: what its next
// release runs with (docs/config.md). Only the token's holders may read
// it; every other read of an app shows the keys alone.
func (s *Service) Config(ctx context.Context, app string) (map[string]string, error) {
	rec, err := s.store.app(app)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", app, err)
	}
	if rec.Config == nil {
		return map[string]string{}, nil
	}
	return rec.Config, nil
}

// SetConfig changes an app's config vars: a key with a nil value is
// unset, any other set. Every key and value is checked first; one that
// breaks a rule changes nothing. The change is kept at once (the next
// build runs with it) and, when the app has a release, rolled out as a
// new release from the current one's slug, without a build, through the
// app's deploy queue; SetConfig returns once it is live. A sleeping app
// stays asleep: the new release is recorded, and its next wake runs it.
// A rollout that fails leaves the old release serving and the old config
// in place. The log and the events name keys, never values.
func (s *Service) SetConfig(ctx context.Context, app string, patch map[string]*string, log io.Writer) (deploy.Release, error) {
	if log == nil {
		log = io.Discard
	}
	if len(patch) == 0 {
		return deploy.Release{}, fmt.Errorf("config of %s: nothing to set or unset: %w", app, deploy.ErrInvalid)
	}
	changed := false
	rec, err := s.store.updateApp(app, false, func(r *appRecord) error {
		next, err := deploy.ApplyConfig(r.Config, patch)
		if err != nil {
			return err
		}
		changed = !maps.Equal(next, r.Config)
		r.Config = next
		return nil
	})
	if err != nil {
		return deploy.Release{}, fmt.Errorf("config of %s: %w", app, err)
	}
	what := describePatch(patch)
	if !changed {
		fmt.Fprintf(log, "-----> Config of %s unchanged (%s)\n", app, what)
		return s.currentRelease(app)
	}
	s.publish(deploy.Event{App: app, Type: "config", Message: "config: " + what})
	if rec.Current == "" && !s.queueBusy(app) {
		fmt.Fprintf(log, "-----> Config of %s kept (%s); %s has no release yet: its first deploy runs with it\n", app, what, app)
		return deploy.Release{}, nil
	}
	if s.buildWaiting(app) {
		fmt.Fprintf(log, "-----> Config of %s kept (%s); the deploy waiting in %s's queue runs with it\n", app, what, app)
		return deploy.Release{}, nil
	}
	return s.enqueue(ctx, app, "", "config: "+what, "", log, func(ctx context.Context, d *deploy.Rollout, log io.Writer) (deploy.Release, error) {
		return s.configRelease(ctx, app, what, d, log)
	})
}

// configRelease is the job of a config change: the current release's
// slug, descriptor and command under the next version, with the config
// vars the app record holds when the job runs (so changes queued one
// after the other all reach it).
func (s *Service) configRelease(ctx context.Context, app, what string, d *deploy.Rollout, log io.Writer) (deploy.Release, error) {
	rec, err := s.store.app(app)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("config of %s: %w", app, err)
	}
	if rec.Current == "" {
		fmt.Fprintf(log, "-----> %s has no release: its first deploy runs with the new config\n", app)
		return deploy.Release{}, nil
	}
	cur, err := s.store.release(app, rec.Current)
	if err != nil {
		return deploy.Release{}, fmt.Errorf("config of %s: %w", app, err)
	}
	if maps.Equal(cur.Config, rec.Config) {
		fmt.Fprintf(log, "-----> %s already runs with this config\n", cur.Name)
		return cur, nil
	}
	r, err := s.store.updateApp(app, false, func(r *appRecord) error { r.LastVersion++; return nil })
	if err != nil {
		return deploy.Release{}, fmt.Errorf("config of %s: %w", app, err)
	}
	rel := cur
	rel.Config = maps.Clone(r.Config)
	rel.Version, rel.Name, rel.Trigger, rel.CreatedAt = r.LastVersion, deploy.ReleaseName(r.LastVersion), d.Trigger, time.Now().UTC()
	d.Release = rel.Name
	fmt.Fprintf(log, "-----> Config of %s changed (%s): %s from %s's slug (no build)\n", app, what, rel.Name, cur.Name)
	if err := s.store.putRelease(rel); err != nil {
		return deploy.Release{}, fmt.Errorf("config of %s: %w", app, err)
	}
	if err := s.rolloutKeepAsleep(ctx, rel, log); err != nil {
		s.swapConfig(app, rel.Config, cur.Config)
		fmt.Fprintf(log, " !     %s did not go live; %s keeps serving and the config is back as it was\n", rel.Name, cur.Name)
		return deploy.Release{}, err
	}
	return rel, nil
}

// swapConfig sets the app's config vars to to if they still are from:
// it undoes a change whose rollout failed, unless a newer change came.
func (s *Service) swapConfig(app string, from, to map[string]string) {
	_, err := s.store.updateApp(app, false, func(r *appRecord) error {
		if maps.Equal(r.Config, from) {
			r.Config = maps.Clone(to)
		}
		return nil
	})
	if err != nil && !errors.Is(err, deploy.ErrNotFound) {
		s.log.Error("put config back", "app", app, "err", err)
	}
}

// adoptConfig makes the config vars of a release being rolled back to the
// app's (as Heroku's rollback does) before its rollout, so that a change
// made during the rollout applies on top; undo puts the previous ones
// back if the rollout fails.
func (s *Service) adoptConfig(app string, config map[string]string) (undo func()) {
	var before map[string]string
	_, err := s.store.updateApp(app, false, func(r *appRecord) error {
		before, r.Config = r.Config, maps.Clone(config)
		return nil
	})
	if err != nil {
		s.log.Error("restore config", "app", app, "err", err)
		return func() {}
	}
	return func() { s.swapConfig(app, config, before) }
}

// buildWaiting reports whether a deploy from source waits in the app's
// queue: it runs with the config as the record holds it then, so a
// config change need not queue a release of its own (which would
// supersede the waiting push).
func (s *Service) buildWaiting(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[app]
	return q != nil && q.pending != nil && q.pending.src != ""
}

// queueBusy reports whether a deploy, rollback or config change of the
// app runs or waits: one that made its release before a change must be
// followed by a release of the change.
func (s *Service) queueBusy(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[app] != nil
}

// configNow returns a copy of the app's config vars as the store holds
// them now: a build takes them when its release is made, after the build,
// so a change made during the build is in it.
func (s *Service) configNow(app string) map[string]string {
	rec, err := s.store.app(app)
	if err != nil {
		return nil
	}
	return maps.Clone(rec.Config)
}

// currentRelease returns the app's current release (zero when none).
func (s *Service) currentRelease(app string) (deploy.Release, error) {
	rec, err := s.store.app(app)
	if err != nil || rec.Current == "" {
		return deploy.Release{}, err
	}
	return s.store.release(app, rec.Current)
}

// describePatch names the keys a change sets and unsets, never values:
// "set A, B; unset C". It is the change's trigger, log line and event.
func describePatch(patch map[string]*string) string {
	var set, unset []string
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		if patch[k] == nil {
			unset = append(unset, k)
		} else {
			set = append(set, k)
		}
	}
	var parts []string
	if len(set) > 0 {
		parts = append(parts, "set "+strings.Join(set, ", "))
	}
	if len(unset) > 0 {
		parts = append(parts, "unset "+strings.Join(unset, ", "))
	}
	return strings.Join(parts, "; ")
}

// rolloutKeepAsleep rolls out a config release. An app asleep keeps
// sleeping: the release is recorded with the scheduler at zero instances
// (under the app's lock, so a wake waits and then runs it); any other app
// rolls out as a deploy does.
func (s *Service) rolloutKeepAsleep(ctx context.Context, rel deploy.Release, log io.Writer) error {
	unlock, err := s.lockApp(rel.App)
	if err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	rec, err := s.store.app(rel.App)
	if err != nil || !rec.Asleep {
		unlock()
		if err != nil {
			return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
		}
		return s.rollout(ctx, rel, log)
	}
	defer unlock()
	fmt.Fprintf(log, "-----> %s is asleep: %s is recorded and runs on its next wake\n", rel.App, rel.Name)
	if err := s.releasePhase(ctx, rel, log); err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	if err := s.deployProcesses(ctx, rec, rel, false, log); err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	if err := s.sched.Deploy(ctx, s.spec(rel, 0), log); err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	if cur, err := s.store.release(rel.App, rec.Current); err == nil {
		s.removeStaleProcesses(context.WithoutCancel(ctx), cur, rel)
	}
	if _, err := s.store.updateApp(rel.App, false, func(r *appRecord) error {
		r.Current, r.Failed = rel.Name, ""
		return nil
	}); err != nil {
		return fmt.Errorf("roll out %s %s: %w", rel.App, rel.Name, err)
	}
	s.publish(deploy.Event{App: rel.App, Type: "release", Message: rel.Name + " recorded (asleep)"})
	fmt.Fprintf(log, "-----> %s is the current release of %s\n", rel.Name, rel.App)
	return nil
}

// slugFile is the file name of a release's slug in the artifact store:
// a config release or a rollback runs an earlier release's slug under a
// new release name, so the slug URL names the file, not the release.
func slugFile(r deploy.Release) string { return filepath.Base(r.Slug) }
