package local

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
)

// An instance's box: its sandbox folder, its uid (when Flock is root) and
// its cgroup (when the host allows one). The functions here are the parts
// of starting and ending a run that concern the box; instance.go calls them.

// gateScript is the shell an instance starts as when it has a cgroup: it
// waits on fd 3 until Flock has put it in its cgroup, then becomes the
// instance's shell. cgroup v1 cannot start a process inside a cgroup, and
// what the shell forks before joining would escape every limit. If Flock
// dies meanwhile the pipe closes and the shell exits.
const gateScript = `read -r _ <&3 || exit 111; exec 3<&-; exec /bin/sh -c "$0"`

// openSandbox creates the instance's sandbox (its HOME) and tmp/ (its
// TMPDIR), owned by its uid, and opens its output.log for Flock to append
// to. The sandbox belongs to the app, so the log is opened without
// following a link, and a file that is not Flock's own (a link the app
// made to a file it may not write) is replaced.
func (in *instance) openSandbox() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(in.sandbox), 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	for _, d := range []string{in.sandbox, filepath.Join(in.sandbox, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if in.rel.uid >= 0 {
			if err := os.Lchown(d, in.rel.uid, in.rel.uid); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
		}
	}
	path := filepath.Join(in.sandbox, "output.log")
	// O_NONBLOCK: opening a FIFO the app left there fails instead of
	// hanging (files ignore it).
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err == nil && !ownFile(f) {
		f.Close()
		err = os.Remove(path)
		if err == nil {
			f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return f, nil
}

// ownFile reports whether f is a regular file of Flock's own user with no
// other name (a hard link to somebody else's file is not).
func ownFile(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid() && sys.Nlink == 1
}

// launch starts `sh -c <command>` for the instance, writing to out: in its
// own process group, as the app's uid, and inside a new cgroup with the
// release's limits. It returns the started command and the cgroup's name
// ("" when the instance runs without one).
func (in *instance) launch(env []string, out io.Writer) (*exec.Cmd, string, error) {
	s := in.s
	var cg string
	cpus, boost := in.bootCPUs()
	if s.cg.enabled() {
		name, err := s.cg.create(in.id, limits{memMiB: in.rel.mem, cpus: cpus, pids: s.pidsMax})
		if err != nil {
			s.log.Warn("instance runs without limits", "app", in.app, "instance", in.id, "err", err)
		}
		cg = name
	}
	cmd := exec.Command("/bin/sh", "-c", in.rel.command)
	var gate *os.File
	if cg != "" {
		r, w, err := os.Pipe()
		if err != nil {
			removeCgroup(cg)
			return nil, "", fmt.Errorf("start gate: %w", err)
		}
		defer r.Close()
		gate = w
		cmd = exec.Command("/bin/sh", "-c", gateScript, in.rel.command)
		cmd.ExtraFiles = []*os.File{r}
	}
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = in.rel.dir, env, out, out
	// No Pdeathsig: instances outlive a Flock that dies (adopt.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if in.rel.uid >= 0 {
		u := uint32(in.rel.uid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u, Gid: u, Groups: []uint32{}}
	}
	if err := procgroup.Start(cmd); err != nil {
		if gate != nil {
			gate.Close()
			removeCgroup(cg)
		}
		return nil, "", fmt.Errorf("start %q: %w", in.rel.command, err)
	}
	if gate != nil {
		if err := joinCgroup(cg, cmd.Process.Pid); err != nil {
			s.log.Warn("instance runs without limits", "app", in.app, "instance", in.id, "err", err)
		}
		gate.Write([]byte("go\n"))
		gate.Close()
	}
	if cg != "" && boost {
		in.startBoost(cg)
	}
	return cmd, cg, nil
}

// Startup boost: an app with a fraction of a CPU would take many times
// its boot time to start (docs/examples/express under `npm start` needs
// about a second of CPU: ten at "cpus": 0.1), and a sleeping app's wake
// would wait as long. So a run starts with a whole CPU (cpuBoost) and
// gets its "cpus" once it passes its check, or after boostLimit. An app
// cannot live on the boost by exiting to be restarted: an instance gets
// it at most once per boostEvery, so at most boostLimit of a whole CPU in
// that time.
const (
	cpuBoost   = 1.0
	boostLimit = 10 * time.Second
	boostEvery = time.Minute
)

// bootCPUs returns the CPU quota to start a run with, and whether it is
// a boost.
func (in *instance) bootCPUs() (float64, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	cpus := in.rel.cpus
	if cpus <= 0 || cpus >= cpuBoost || (!in.boostAt.IsZero() && time.Since(in.boostAt) < boostEvery) {
		return cpus, false
	}
	return cpuBoost, true
}

func (in *instance) startBoost(cg string) {
	in.mu.Lock()
	in.boostAt, in.boosted = time.Now(), cg
	in.mu.Unlock()
	time.AfterFunc(boostLimit, in.endBoost)
}

// endBoost sets the boosted run's CPU quota to its "cpus".
func (in *instance) endBoost() {
	in.mu.Lock()
	cg := in.boosted
	in.boosted = ""
	in.mu.Unlock()
	if cg != "" {
		if err := setCgroupCPU(cg, in.rel.cpus); err != nil {
			in.s.log.Debug("end of startup boost", "app", in.app, "instance", in.id, "err", err)
		}
	}
}

// endRun records why a run ended, while its cgroup still exists: the
// kernel's OOM kill when there was one, else its exit status.
func (in *instance) endRun(p *proc, cg string) {
	reason := exitStatus(p.state)
	if cg != "" && cgroupOOMKills(cg) > 0 {
		reason = oomReason(in.rel.mem)
	}
	in.mu.Lock()
	in.lastExit = reason
	in.lastRunOut = in.lastOutputLocked()
	in.mu.Unlock()
}

func oomReason(memMiB int) string {
	return fmt.Sprintf("out of memory (limit %d MiB)", memMiB)
}

// oomKilled returns why the instance's last run ended when the kernel
// killed it for its memory, else "".
func (in *instance) oomKilled() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.lastExit == oomReason(in.rel.mem) {
		return in.lastExit
	}
	return ""
}
