// Package procgroup is Flock's one home for process groups: it starts a
// command as the leader of a group of its own, stops a group (a polite
// signal, a grace period, then SIGKILL to whatever is left), and reads
// what /proc says about a process (state, parent, group, start time,
// command line, environment markers). The embedded scheduler runs every
// instance this way and the router runs HAProxy this way; both outlive a
// Flock that dies, so the next one finds them again through /proc.
//
// It imports nothing of Flock, so any package may use it; it is Linux
// only, as Flock is.
package procgroup

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// spawner starts every child from one OS thread that never exits, so
// that no child is bound to the life of a thread that Go may retire
// (Pdeathsig, if one is ever set, fires when the forking thread dies).
var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Start starts cmd as the leader of a new process group (its pid is the
// group's id), keeping the rest of cmd.SysProcAttr (a uid, say). It sets
// no Pdeathsig: the group outlives Flock, and stopping it is the caller's
// business (Terminate, Kill).
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawnCh {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnCh <- r
	return <-r.done
}

// Kill sends SIGKILL to every process of group pgid. A pgid of 0 or 1
// (no group, init) is ignored.
func Kill(pgid int) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// Terminate stops group pgid whose leader's exit closes done: SIGTERM to
// the group, then, once the leader has exited and the other members are
// gone, or after grace, SIGKILL to whatever is left. It returns when the
// leader has exited, reporting whether SIGKILL was needed.
func Terminate(pgid int, done <-chan struct{}, grace time.Duration) (killed bool) {
	if pgid <= 1 {
		return false
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	t := time.NewTimer(grace)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	for !GroupGone(pgid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !GroupGone(pgid) {
		killed = true
		Kill(pgid)
	}
	<-done
	return killed
}

// Exited reports whether the process pid has exited: done is closed
// when done is not nil (the process is our child and done is closed by
// its waiter), else the process is gone or a zombie (another's child).
func Exited(pid int, done <-chan struct{}) bool {
	if done == nil {
		return !Alive(pid)
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// WaitExited waits up to d for Exited(pid, done), checking every 5 ms,
// and reports whether it happened.
func WaitExited(pid int, done <-chan struct{}, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if Exited(pid, done) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// GroupGone reports whether no process of group pgid is left running.
// Members that exited but wait to be reaped count as gone: an app's
// children orphaned by its shell are reaped by PID 1, which on some hosts
// (containers) takes a second or more, and they hold nothing meanwhile.
func GroupGone(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return true
	}
	return !groupHasLiving(pgid)
}

// WaitGone waits up to limit until none of pids is alive.
func WaitGone(pids []int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		left := false
		for _, pid := range pids {
			left = left || Alive(pid)
		}
		if !left {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
