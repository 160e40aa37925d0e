package engine

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/flock-paas/flock/deploy"
)

// defaultProcessCount is how many instances of a non-web process type run
// until the app is scaled: one, so that a worker: line does what it says.
const defaultProcessCount = 1

// processCounts returns how many instances of each of rel's process
// types run while the app is awake.
func processCounts(rec appRecord, rel deploy.Release) map[string]int {
	out := map[string]int{}
	for typ := range rel.Descriptor.Processes {
		n, ok := rec.Formation[typ]
		if !ok {
			n = defaultProcessCount
		}
		out[typ] = n
	}
	return out
}

// processSpec is the spec of rel's process type typ: the release's slug
// and environment, the type's command, no port and no check (it is judged
// by staying up), n instances.
func (s *Service) processSpec(rel deploy.Release, typ string, n int) deploy.Spec {
	sp := s.spec(rel, n)
	sp.App = deploy.ProcessApp(rel.App, typ)
	sp.Command = rel.Descriptor.Processes[typ]
	d := rel.Descriptor
	d.Ports, d.Checks, d.Domains, d.ReleaseCommand, d.Processes = 0, nil, nil, "", nil
	sp.Descriptor = d
	return sp
}

// deployProcesses rolls out rel's non-web process types, before its web
// instances: they take no traffic, so running both releases' workers for
// a moment is harmless, and a type whose instances do not stay up fails
// the deploy while the running release (web and workers) keeps going.
func (s *Service) deployProcesses(ctx context.Context, rec appRecord, rel deploy.Release, awake bool, log io.Writer) error {
	counts := processCounts(rec, rel)
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		n := counts[typ]
		if !awake {
			n = 0
		}
		fmt.Fprintf(log, "-----> Starting %d %s instance(s) of %s\n", n, typ, rel.Name)
		if err := s.sched.Deploy(ctx, s.processSpec(rel, typ, n), log); err != nil {
			return fmt.Errorf("%s process: %w", typ, err)
		}
	}
	return nil
}

// restoreProcesses puts the process types back as the running release
// prev had them after rel's rollout failed: rel's new types stopped,
// prev's types back on prev (a failed Deploy already leaves them so; a
// type rel's rollout had switched before a later one failed does not).
func (s *Service) restoreProcesses(ctx context.Context, rec appRecord, prev *deploy.Release, rel deploy.Release) {
	ctx = context.WithoutCancel(ctx)
	if prev == nil {
		for typ := range rel.Descriptor.Processes {
			if err := s.sched.Remove(ctx, deploy.ProcessApp(rel.App, typ)); err != nil {
				s.log.Warn("stop a process type of a failed first release", "app", rel.App, "type", typ, "err", err)
			}
		}
		return
	}
	s.removeStaleProcesses(ctx, rel, *prev)
	if err := s.deployProcesses(ctx, rec, *prev, !rec.Asleep && rec.Desired > 0, io.Discard); err != nil {
		s.log.Warn("restore the process types of the running release", "app", rel.App, "release", prev.Name, "err", err)
	}
}

// removeStaleProcesses stops the process types release from had and
// release to no longer has.
func (s *Service) removeStaleProcesses(ctx context.Context, from, to deploy.Release) {
	for typ := range from.Descriptor.Processes {
		if _, ok := to.Descriptor.Processes[typ]; ok {
			continue
		}
		if err := s.sched.Remove(ctx, deploy.ProcessApp(to.App, typ)); err != nil {
			s.log.Warn("stop a process type the new release dropped", "app", to.App, "type", typ, "err", err)
		}
	}
}

// scaleProcesses sets every process type of rel to its count (awake) or
// to zero (asleep, stopped). Errors are logged: the web process decides
// the outcome of a sleep or a wake.
func (s *Service) scaleProcesses(ctx context.Context, rec appRecord, rel deploy.Release, awake bool) {
	for typ, n := range processCounts(rec, rel) {
		if !awake {
			n = 0
		}
		if err := s.sched.Scale(ctx, deploy.ProcessApp(rec.Name, typ), n); err != nil {
			s.log.Warn("scale a process type", "app", rec.Name, "type", typ, "instances", n, "err", err)
		}
	}
}

// ScaleProcess sets how many instances of the app's process type typ run
// while the app is awake ("web" is Scale). The count is kept across
// releases and sleeps.
func (s *Service) ScaleProcess(ctx context.Context, app, typ string, n int) error {
	if typ == "web" {
		return s.Scale(ctx, app, n)
	}
	if n < 0 || n > 100 {
		return fmt.Errorf("scale %s %s: instances must be between 0 and 100, not %d: %w", app, typ, n, deploy.ErrInvalid)
	}
	unlock, err := s.lockApp(app)
	if err != nil {
		return fmt.Errorf("scale %s %s: %w", app, typ, err)
	}
	defer unlock()
	rec, err := s.store.app(app)
	if err != nil {
		return fmt.Errorf("scale %s %s: %w", app, typ, err)
	}
	rel, err := s.store.release(app, rec.Current)
	if err != nil {
		return fmt.Errorf("scale %s %s: no release deployed yet: %w", app, typ, deploy.ErrConflict)
	}
	if _, ok := rel.Descriptor.Processes[typ]; !ok {
		types := slices.Sorted(maps.Keys(rel.Descriptor.Processes))
		return fmt.Errorf("scale %s: %s has no process type %q (its Procfile has web%s): %w",
			app, rel.Name, typ, prefixEach(", ", types), deploy.ErrInvalid)
	}
	rec, err = s.store.updateApp(app, false, func(r *appRecord) error {
		if r.Formation == nil {
			r.Formation = map[string]int{}
		}
		r.Formation[typ] = n
		return nil
	})
	if err != nil {
		return fmt.Errorf("scale %s %s: %w", app, typ, err)
	}
	if rec.Asleep || rec.Desired == 0 {
		return nil // runs at the next wake
	}
	s.publish(deploy.Event{App: app, Type: "state", Message: fmt.Sprintf("%s scaled to %d", typ, n)})
	if err := s.sched.Scale(context.WithoutCancel(ctx), deploy.ProcessApp(app, typ), n); err != nil {
		return fmt.Errorf("scale %s %s: %w", app, typ, err)
	}
	return nil
}

// processes lists rel's non-web process types with their instances.
func (s *Service) processes(ctx context.Context, rec appRecord, rel deploy.Release) []deploy.Process {
	counts := processCounts(rec, rel)
	out := make([]deploy.Process, 0, len(counts))
	for _, typ := range slices.Sorted(maps.Keys(counts)) {
		p := deploy.Process{Type: typ, Command: rel.Descriptor.Processes[typ], Desired: counts[typ], Instances: []deploy.Instance{}}
		if ins, err := s.sched.Instances(ctx, deploy.ProcessApp(rec.Name, typ)); err == nil && ins != nil {
			p.Instances = ins
		}
		out = append(out, p)
	}
	return out
}

func prefixEach(sep string, list []string) string {
	var b strings.Builder
	for _, s := range list {
		b.WriteString(sep + s)
	}
	return b.String()
}
