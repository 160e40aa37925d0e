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
)

// stateEntry is one running process group, as written to state.json. If
// Flock is killed with SIGKILL its instances' shells die with it
// (Pdeathsig), but what they started lives on in the same process group;
// the next Scheduler on the same Dir reads this file and kills those.
type stateEntry struct {
	ID     string `json:"id"`
	App    string `json:"app"`
	PGID   int    `json:"pgid"`
	Cgroup string `json:"cgroup,omitempty"`
}

func (s *Scheduler) statePath() string { return filepath.Join(s.cfg.Dir, "state.json") }

// saveState rewrites state.json from the running instances. It is not
// fsynced: it matters only while the processes it names are alive, and a
// power cut kills them too.
func (s *Scheduler) saveState() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.mu.Lock()
	list := make([]stateEntry, 0)
	for _, a := range s.apps {
		for _, in := range a.instances {
			in.mu.Lock()
			if in.pgid > 0 {
				list = append(list, stateEntry{ID: in.id, App: in.app, PGID: in.pgid, Cgroup: in.cgroup})
			}
			in.mu.Unlock()
		}
	}
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"instances": list})
	tmp := s.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		s.log.Warn("write scheduler state", "err", err)
		return
	}
	if err := os.Rename(tmp, s.statePath()); err != nil {
		s.log.Warn("write scheduler state", "err", err)
	}
}

// reap kills the process groups a previous Flock left behind. A group is
// killed only if one of its processes still carries the instance's
// FLOCK_INSTANCE marker in its environment, so a recycled pid or pgid of
// somebody else's process is never touched.
func (s *Scheduler) reap() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read scheduler state: %w", err)
	}
	var st struct {
		Instances []stateEntry `json:"instances"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		s.log.Warn("ignoring unreadable scheduler state", "err", err)
		return os.Remove(s.statePath())
	}
	for _, e := range st.Instances {
		pids := groupMembers(e.PGID, "FLOCK_INSTANCE="+e.ID)
		if len(pids) > 0 {
			s.log.Info("killing leftover instance", "app", e.App, "instance", e.ID, "pgid", e.PGID)
			syscall.Kill(-e.PGID, syscall.SIGKILL)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL) // also those that left the group
			}
			waitGone(pids, 2*time.Second)
		}
		removeCgroup(e.Cgroup)
	}
	return os.Remove(s.statePath())
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
		if _, g, _ := procStat(pid); has || g == pgid {
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0][0], pgrp, true
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
