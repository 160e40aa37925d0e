package local

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// drainLimit bounds how long a Drainer may hold up stopping an instance.
const drainLimit = 30 * time.Second

type result struct {
	in     *instance
	err    error
	passed bool // its first pass; the final result (stable, or failed) follows
}

// Deploy starts spec.Instances instances of spec's release, waits until
// each has passed its checks and stayed up for the release's stability
// window, makes the release current, then retires the instances of every
// other release (drained first, then stopped). Instances of the same
// release that already run are kept, so deploying the running release
// again (as after a restart of Flock) only tops it up.
//
// The new release takes the traffic as soon as all its instances pass
// their checks (see handover): the old instances leave rotation then but
// keep running through the window, and come back if a new one fails in it.
//
// If a new instance exits or fails before the end of the window, or does
// not pass within its grace period plus one check timeout, Deploy stops
// every new instance, leaves the running release serving, and returns an
// error wrapping deploy.ErrUnhealthy that names the instance, the cause
// and its last lines of output. It holds the app's lock throughout: a
// Scale or Remove of the same app waits for it.
func (s *Scheduler) Deploy(ctx context.Context, spec deploy.Spec, w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	if err := validate(spec); err != nil {
		return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, err)
	}
	a, err := s.lock(ctx, spec.App, true)
	if err != nil {
		return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, err)
	}
	defer a.unlock()
	rel, err := s.prepare(spec)
	if err != nil {
		return fmt.Errorf("deploy %s %s: %w", spec.App, spec.Release, err)
	}
	s.appLog(spec.App, true)
	s.keepSpec(spec)

	s.mu.Lock()
	var keep, old []*instance
	for _, in := range a.instances {
		switch {
		case in.isRetiring():
		case in.rel.name == rel.name:
			keep = append(keep, in)
		default:
			old = append(old, in)
		}
	}
	s.mu.Unlock()
	sort.Slice(keep, func(i, j int) bool { return keep[i].seq < keep[j].seq })
	n := spec.Instances
	var extra []*instance
	if len(keep) > n {
		keep, extra = keep[:n], keep[n:]
	}
	need := n - len(keep)
	if need > 0 {
		logf(w, "%s: starting %d instance(s)", rel.name, need)
	}
	results := make(chan result, 2*need) // each sends at most a pass and an outcome
	fresh := make([]*instance, 0, need)
	var failure error
	for range need {
		in, err := s.newInstance(a, rel, results)
		if err != nil {
			failure = err
			break
		}
		fresh = append(fresh, in)
	}
	h := s.newHandover(spec.App, rel, old, w)
	if failure == nil {
		failure = s.await(ctx, rel, fresh, results, w, h.start)
	}
	if failure != nil {
		logf(w, "%s: %v", rel.name, failure)
		s.abandon(a, rel, fresh, len(keep) > 0, h, w)
		return failure
	}
	h.wait()

	s.mu.Lock()
	a.current, a.desired = rel, n
	old = extra
	for _, in := range a.instances {
		if in.rel.name != rel.name {
			old = append(old, in)
		}
	}
	s.mu.Unlock()
	if len(old) > 0 {
		logf(w, "%s: retiring %d old instance(s)", rel.name, len(old))
		s.retireAll(ctx, old, true)
	}
	s.removeReleases(spec.App, rel.name)
	logf(w, "%s: live with %d instance(s)", rel.name, n)
	s.notify(spec.App)
	return nil
}

// abandon undoes a rollout that failed: the old instances get the traffic
// back (when it was handed over), the new ones stop, and the release's
// folder goes unless instances of it still run.
func (s *Scheduler) abandon(a *app, rel *release, fresh []*instance, kept bool, h *handover, w io.Writer) {
	// Shutting down, the router goes too: nothing to give back or drain
	// (a detached old instance is routed again by the next Flock).
	closing := s.isClosed()
	if h.undo(!closing) {
		logf(w, "%s: the old instances are back in rotation", rel.name)
	}
	logf(w, "%s: stopping its %d new instance(s); the running release keeps serving", rel.name, len(fresh))
	s.retireAll(context.Background(), fresh, h.started && !closing)
	s.mu.Lock()
	keepDir := a.current != nil && a.current.name == rel.name
	s.mu.Unlock()
	if !keepDir && !kept {
		os.RemoveAll(rel.dir)
	}
}

// await waits until every fresh instance has passed its check and then
// stayed up for the release's stability window, and returns the first
// failure. Once all have passed, it calls passed, once.
func (s *Scheduler) await(ctx context.Context, rel *release, fresh []*instance, results <-chan result, w io.Writer, passed func()) error {
	begin := time.Now()
	npassed, nstable := 0, 0
	for nstable < len(fresh) {
		select {
		case r := <-results:
			switch {
			case r.err != nil:
				return fmt.Errorf("%w: %w", deploy.ErrUnhealthy, r.err) // the caller names the release
			case r.passed:
				npassed++
				logf(w, "%s: %s healthy on port %d after %s", rel.name, r.in.id, r.in.snapshot().Port,
					time.Since(begin).Round(time.Millisecond))
				if npassed == len(fresh) {
					passed()
				}
			default:
				nstable++
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// newInstance creates an instance of rel and starts its supervisor. With
// results set, its first pass is sent there, then its outcome: stable
// for the release's window, or failed.
func (s *Scheduler) newInstance(a *app, rel *release, results chan<- result) (*instance, error) {
	list, err := ports.reserve(s.cfg.Host, rel.ports)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", a.name, err)
	}
	id := newID(a.name, rel.name)
	in := &instance{
		s: s, app: a.name, rel: rel, id: id, log: s.appLog(a.name, true),
		sandbox: filepath.Join(s.appDir(a.name), "instances", id),
		stopCh:  make(chan struct{}), exited: make(chan struct{}), ports: list,
	}
	if results != nil {
		in.report = func(err error) { results <- result{in: in, err: err} }
		in.onPass = func() { results <- result{in: in, passed: true} }
	}
	s.mu.Lock()
	s.seq++
	in.seq = s.seq
	a.instances[id] = in
	s.mu.Unlock()
	go in.supervise(nil)
	return in, nil
}

func (in *instance) isRetiring() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.retiring
}

// retire takes an instance away for good: drained first when drain is set
// and it runs, then stopped, then its ports, sandbox and entry released.
func (s *Scheduler) retire(ctx context.Context, in *instance, drain bool) {
	in.mu.Lock()
	in.retiring = true
	running := in.pgid != 0
	in.mu.Unlock()
	start := time.Now()
	if drain && running && s.cfg.Drainer != nil {
		dctx, cancel := context.WithTimeout(ctx, drainLimit)
		if err := s.cfg.Drainer.Drain(dctx, in.app, in.snapshot()); err != nil {
			s.log.Warn("drain failed; stopping anyway", "app", in.app, "release", in.rel.name,
				"instance", in.id, "err", err)
		}
		cancel()
	}
	drained := time.Since(start)
	in.stop()
	s.log.Debug("instance retired", "app", in.app, "instance", in.id, "drain", drained, "stop", time.Since(start)-drained)
	ports.release(in.portList())
	s.mu.Lock()
	if a := s.apps[in.app]; a != nil {
		delete(a.instances, in.id)
	}
	s.mu.Unlock()
	os.RemoveAll(in.sandbox)
	s.saveState()
	s.notify(in.app)
}

func (s *Scheduler) retireAll(ctx context.Context, list []*instance, drain bool) {
	var wg sync.WaitGroup
	for _, in := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.retire(ctx, in, drain)
		}()
	}
	wg.Wait()
}

// Scale sets the number of instances of the app's current release. New
// instances are started and supervised without waiting for their checks.
// Surplus ones are chosen unhealthy first, then newest first (the oldest
// have proven themselves and hold warm caches), drained and stopped before
// Scale returns. A Scale during a Deploy of the same app waits for it.
func (s *Scheduler) Scale(ctx context.Context, name string, n int) error {
	if !deploy.ValidName(name) || n < 0 {
		return fmt.Errorf("scale %q to %d: %w", name, n, deploy.ErrInvalid)
	}
	a, err := s.lock(ctx, name, false)
	if err != nil {
		return fmt.Errorf("scale %s: %w", name, err)
	}
	if a == nil {
		return fmt.Errorf("scale %s: %w", name, deploy.ErrNotFound)
	}
	defer a.unlock()
	s.mu.Lock()
	rel := a.current
	var live []*instance
	for _, in := range a.instances {
		if rel != nil && in.rel.name == rel.name && !in.isRetiring() {
			live = append(live, in)
		}
	}
	s.mu.Unlock()
	if rel == nil {
		return fmt.Errorf("scale %s: no release deployed: %w", name, deploy.ErrNotFound)
	}
	for i := len(live); i < n; i++ {
		if _, err := s.newInstance(a, rel, nil); err != nil {
			return fmt.Errorf("scale %s: %w", name, err)
		}
	}
	if len(live) > n {
		snaps := map[*instance]deploy.Instance{}
		for _, in := range live {
			snaps[in] = in.snapshot()
		}
		sort.Slice(live, func(i, j int) bool {
			if hi, hj := snaps[live[i]].Healthy, snaps[live[j]].Healthy; hi != hj {
				return !hi
			}
			return live[i].seq > live[j].seq
		})
		s.retireAll(ctx, live[:len(live)-n], true)
	}
	s.mu.Lock()
	a.desired = n
	s.mu.Unlock()
	s.notify(name)
	return nil
}

// Remove stops every instance of the app (without draining: the app is
// going away) and deletes its releases, sandboxes and logs.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	if !deploy.ValidName(name) {
		return fmt.Errorf("remove %q: %w", name, deploy.ErrInvalid)
	}
	a, err := s.lock(ctx, name, false)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if a != nil {
		s.mu.Lock()
		list := make([]*instance, 0, len(a.instances))
		for _, in := range a.instances {
			list = append(list, in)
		}
		s.mu.Unlock()
		s.retireAll(ctx, list, false)
		s.mu.Lock()
		a.removed = true
		delete(s.apps, name)
		for key := range s.specs {
			if strings.HasPrefix(key, name+"/") {
				delete(s.specs, key)
			}
		}
		s.mu.Unlock()
		a.unlock()
	}
	s.mu.Lock()
	l := s.logs[name]
	delete(s.logs, name)
	s.mu.Unlock()
	if l != nil {
		l.close()
	}
	if err := os.RemoveAll(s.appDir(name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	s.notify(name)
	return nil
}
