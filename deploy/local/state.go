package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
)

// stateFile is state.json: what a Scheduler started and still runs, so
// that the next Scheduler on the same Dir (after Flock crashed, was killed
// or is being upgraded) adopts those processes instead of restarting
// them, as Nomad's client and Docker's live-restore do. It holds the
// release specs (their env too, hence 0600) because an adopted instance
// that dies later is restarted from them.
type stateFile struct {
	// Boot is the kernel's boot id: process start times count from boot,
	// so entries of an earlier boot name nobody.
	Boot      string                 `json:"boot"`
	Releases  map[string]deploy.Spec `json:"releases"` // by "<app>/<release>"
	Instances []stateEntry           `json:"instances"`
}

// stateEntry is one running instance. Its process group leader is PID
// (also the PGID); Start is the leader's start time in clock ticks after
// boot, which together with PID names one process for good: a pid reused
// by another process has another start time.
type stateEntry struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Release   string    `json:"release"`
	Seq       uint64    `json:"seq"`
	PGID      int       `json:"pgid"`
	Start     uint64    `json:"start"`
	Ports     []int     `json:"ports"`
	Cgroup    string    `json:"cgroup,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	Healthy   bool      `json:"healthy"`
}

func (s *Scheduler) statePath() string { return filepath.Join(s.cfg.Dir, "state.json") }

// saveState rewrites state.json from the running instances. It is written
// through a temporary file and renamed, so a reader finds the old or the
// new list, never half of one; it is not fsynced: it matters only while
// the processes it names are alive, and a power cut kills them too.
func (s *Scheduler) saveState() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	select {
	case <-s.done: // Run has ended: the file is the next Flock's, or gone
		return
	default:
	}
	st := stateFile{Boot: procgroup.BootID(), Releases: map[string]deploy.Spec{}, Instances: []stateEntry{}}
	s.mu.Lock()
	for _, a := range s.apps {
		for _, in := range a.instances {
			in.mu.Lock()
			if in.pgid > 0 {
				st.Instances = append(st.Instances, stateEntry{
					ID: in.id, App: in.app, Release: in.rel.name, Seq: in.seq, PGID: in.pgid, Start: in.start0,
					Ports: append([]int(nil), in.ports...), Cgroup: in.cgroup, StartedAt: in.startedAt, Healthy: in.healthy,
				})
				key := in.app + "/" + in.rel.name
				if spec, ok := s.specs[key]; ok {
					st.Releases[key] = spec
				}
			}
			in.mu.Unlock()
		}
	}
	s.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		s.log.Warn("write scheduler state", "err", err)
		return
	}
	tmp := s.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		s.log.Warn("write scheduler state", "err", err)
		return
	}
	if err := os.Rename(tmp, s.statePath()); err != nil {
		s.log.Warn("write scheduler state", "err", err)
	}
}

// readState reads state.json; a missing file is an empty state, an
// unreadable one is logged and dropped (its processes cannot be trusted).
func (s *Scheduler) readState() (stateFile, error) {
	var st stateFile
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read scheduler state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		s.log.Warn("ignoring unreadable scheduler state", "err", err)
		return stateFile{}, nil
	}
	return st, nil
}

// owns reports whether the process pid is still the one e names: same
// boot, same start time, not exited.
func (e stateEntry) owns(boot string, pid int) bool {
	if pid <= 1 || e.Start == 0 || boot == "" || boot != procgroup.BootID() {
		return false
	}
	info, ok := procgroup.Stat(pid)
	return ok && info.State != 'Z' && info.State != 'X' && info.Start == e.Start
}

// killLeftover kills what is left of an instance that cannot be adopted:
// the members of its process group, provided one of them still carries
// the instance's FLOCK_INSTANCE marker in its environment, so a recycled
// pgid of somebody else's processes is never touched.
func (s *Scheduler) killLeftover(e stateEntry) {
	pids := procgroup.Members(e.PGID, "FLOCK_INSTANCE="+e.ID)
	if len(pids) > 0 {
		s.log.Info("killing leftover instance", "app", e.App, "instance", e.ID, "pgid", e.PGID)
		procgroup.Kill(e.PGID)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // also those that left the group
		}
		procgroup.WaitGone(pids, 2*time.Second)
	}
	if e.Cgroup != "" { // what left the group but not the instance's own cgroup
		killCgroup(e.Cgroup)
	}
	removeCgroup(e.Cgroup)
}
