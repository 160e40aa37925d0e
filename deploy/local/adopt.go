package local

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
)

// adopt takes over the instances a previous Scheduler on the same Dir
// left running when it died (crash, kill -9) or was told to Detach (an
// upgrade):
// the behaviour of Nomad's client and Docker's live-restore. Each entry of
// state.json whose process is still the one it names (same boot, pid and
// start time: a reused pid is somebody else) becomes an instance again,
// with its id, ports, release and the health it had, supervised from now
// on: probed at its check interval, its output tailed from where the last
// Flock stopped reading, restarted if it dies. The app keeps serving
// throughout, and the next Deploy of the same release (the service's
// reconcile at start) keeps these instances instead of starting new ones.
//
// An entry whose process is gone is dropped, and what is left of its
// process group is killed; the reconcile starts a replacement. So is an
// entry whose release cannot be prepared again.
func (s *Scheduler) adopt() error {
	st, err := s.readState()
	if err != nil {
		return err
	}
	adopted := 0
	for _, e := range st.Instances {
		spec, ok := st.Releases[e.App+"/"+e.Release]
		if !ok || spec.App != e.App || spec.Release != e.Release || !e.owns(st.Boot, e.PGID) {
			s.killLeftover(e)
			s.dropSandbox(e)
			continue
		}
		in, err := s.adoptOne(e, spec)
		if err != nil {
			s.log.Warn("cannot adopt instance; stopping it", "app", e.App, "release", e.Release, "instance", e.ID, "err", err)
			s.killLeftover(e)
			s.dropSandbox(e)
			continue
		}
		adopted++
		s.log.Info("adopted instance", "app", e.App, "release", e.Release, "instance", e.ID, "pid", e.PGID, "ports", e.Ports)
		s.notify(in.app)
	}
	if adopted == 0 {
		if err := os.Remove(s.statePath()); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	s.saveState() // without the entries not adopted
	return nil
}

// adoptOne rebuilds the instance e names and starts its supervisor on the
// running process.
func (s *Scheduler) adoptOne(e stateEntry, spec deploy.Spec) (*instance, error) {
	if err := validate(spec); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(e.ID, e.App+"."+e.Release+".") || !releaseRE.MatchString(e.ID) {
		return nil, fmt.Errorf("instance id %q does not belong to %s %s", e.ID, e.App, e.Release)
	}
	rel, err := s.prepare(spec)
	if err != nil {
		return nil, err
	}
	p, err := watchAdopted(e)
	if err != nil {
		return nil, err
	}
	ports.claim(e.Ports)
	in := &instance{
		s: s, app: e.App, rel: rel, id: e.ID, seq: e.Seq, log: s.appLog(e.App, true),
		sandbox: filepath.Join(s.appDir(e.App), "instances", e.ID),
		stopCh:  make(chan struct{}), exited: make(chan struct{}),
		ports: append([]int(nil), e.Ports...), pgid: e.PGID, start0: e.Start, cgroup: e.Cgroup,
		startedAt: e.StartedAt, healthy: e.Healthy,
	}
	s.keepSpec(spec)
	s.mu.Lock()
	s.seq = max(s.seq, e.Seq)
	a := s.apps[e.App]
	if a == nil {
		a = &app{name: e.App, instances: map[string]*instance{}, op: make(chan struct{}, 1)}
		s.apps[e.App] = a
	}
	a.instances[in.id] = in
	a.desired = len(a.instances)
	// Until the service deploys the app again, Scale applies to the
	// release of its newest instance.
	if a.current == nil || in.seq >= s.newestSeq(a) {
		a.current = rel
	}
	s.mu.Unlock()
	go in.tail(p.done, p.outDone)
	go in.supervise(p)
	return in, nil
}

// keepSpec remembers the spec of a release that runs, for state.json.
func (s *Scheduler) keepSpec(spec deploy.Spec) {
	spec.Instances = 0
	s.mu.Lock()
	s.specs[spec.App+"/"+spec.Release] = spec
	s.mu.Unlock()
}

// newestSeq is the highest seq of a's instances; s.mu is held.
func (s *Scheduler) newestSeq(a *app) uint64 {
	var n uint64
	for _, in := range a.instances {
		n = max(n, in.seq)
	}
	return n
}

// dropSandbox removes the sandbox of an instance that was not adopted.
func (s *Scheduler) dropSandbox(e stateEntry) {
	if deploy.ValidName(e.App) && releaseRE.MatchString(e.ID) {
		os.RemoveAll(filepath.Join(s.appDir(e.App), "instances", e.ID))
	}
}

// watchAdopted returns a proc for the running leader e names; its done
// channel is closed when that process exits (procgroup.Watch: the
// process is not our child, and is watched only while its start time is
// still e's).
func watchAdopted(e stateEntry) (*proc, error) {
	exited, err := procgroup.Watch(e.PGID, func() bool { return procgroup.StartTime(e.PGID) == e.Start })
	if err != nil {
		return nil, err
	}
	p := &proc{pgid: e.PGID, done: make(chan struct{}), outDone: make(chan struct{}), adopted: true}
	go func() {
		<-exited
		close(p.done)
	}()
	return p, nil
}
