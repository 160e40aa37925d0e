package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy"
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
	st := stateFile{Boot: bootID(), Releases: map[string]deploy.Spec{}, Instances: []stateEntry{}}
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
	if pid <= 1 || e.Start == 0 || boot == "" || boot != bootID() {
		return false
	}
	st, _, start, ok := procInfo(pid)
	return ok && st != 'Z' && st != 'X' && start == e.Start
}

// killLeftover kills what is left of an instance that cannot be adopted:
// the members of its process group, provided one of them still carries
// the instance's FLOCK_INSTANCE marker in its environment, so a recycled
// pgid of somebody else's processes is never touched.
func (s *Scheduler) killLeftover(e stateEntry) {
	pids := groupMembers(e.PGID, "FLOCK_INSTANCE="+e.ID)
	if len(pids) > 0 {
		s.log.Info("killing leftover instance", "app", e.App, "instance", e.ID, "pgid", e.PGID)
		syscall.Kill(-e.PGID, syscall.SIGKILL)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) // also those that left the group
		}
		waitGone(pids, 2*time.Second)
	}
	if e.Cgroup != "" { // what left the group but not the instance's own cgroup
		killCgroup(e.Cgroup)
	}
	removeCgroup(e.Cgroup)
}

// groupMembers returns the pids in process group pgid, or carrying
// marker, provided at least one of them carries marker in its environment.
func groupMembers(pgid int, marker string) []int {
	if pgid <= 1 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	marked := false
	want := []byte(marker)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		has := bytes.Contains(append([]byte{0}, env...), append(append([]byte{0}, want...), 0))
		if _, g, ok := procStat(pid); ok && (has || g == pgid) {
			pids = append(pids, pid)
			marked = marked || has
		}
	}
	if !marked {
		return nil
	}
	return pids
}

// procStat reads the state letter ('R', 'S', 'Z'...) and the process
// group of pid from /proc/<pid>/stat; ok is false when pid is gone.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	state, pgrp, _, ok = procInfo(pid)
	return state, pgrp, ok
}

// procInfo reads the state letter, process group and start time (clock
// ticks after boot) of pid from /proc/<pid>/stat.
func procInfo(pid int) (state byte, pgrp int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	start, _ = strconv.ParseUint(f[19], 10, 64) // field 22 of stat(5)
	return f[0][0], pgrp, start, true
}

// startTime returns pid's start time in clock ticks after boot, or 0.
func startTime(pid int) uint64 {
	_, _, start, _ := procInfo(pid)
	return start
}

// bootID names the current boot of the kernel.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}

func waitGone(pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		left := false
		for _, pid := range pids {
			left = left || alive(pid)
		}
		if !left {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
