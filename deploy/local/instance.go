package local

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
)

// instance is one supervised copy of a release. Its supervisor goroutine
// owns the process: it starts it, probes it, restarts it with backoff, and
// stops it when asked. Everything else reads its state under mu.
type instance struct {
	s       *Scheduler
	app     string
	rel     *release
	id      string
	seq     uint64 // creation order, for a stable listing
	log     *appLog
	sandbox string

	stopCh   chan struct{} // closed to ask the supervisor to stop the process
	stopOnce sync.Once
	exited   chan struct{} // closed when the supervisor has returned and no process is left

	mu         sync.Mutex
	ports      []int
	healthy    bool
	pgid       int    // 0 while no process runs
	start0     uint64 // the leader's start time (clock ticks after boot), with pgid in state.json
	cgroup     string
	startedAt  time.Time
	last       []string    // last lines of output
	firstErr   string      // the first line of this run's output that states an error (errline.go)
	lastRunOut string      // lastOutput as the last run ended
	report     func(error) // set during a deploy until it is stable (or fails)
	onPass     func()      // set during a deploy until its first pass
	retiring   bool        // chosen to be stopped; no longer counted
	lastExit   string      // why the last run ended: "status 1", "out of memory (limit 64 MiB)"
	boosted    string      // the cgroup of the run while it has its startup CPU boost
	boostAt    time.Time   // when a run last got the startup boost
}

// proc is one run of an instance's process group.
type proc struct {
	pgid    int
	done    chan struct{} // closed when the shell (the group leader) has exited (and been reaped, if ours)
	outDone chan struct{} // closed when the output is read to its end after done
	state   *os.ProcessState
	adopted bool // started by a previous Flock: no exit status, already past its first check
}

// start runs the instance's command once: `sh -c <command>` in its own
// process group, in its box (uid, cgroup: see launch), with its output
// appended to output.log in its sandbox (see tail). No Pdeathsig: an
// instance outlives a Flock that crashes or is killed, and the next Flock
// adopts it (adopt.go); Run stops every instance when Flock stops.
func (in *instance) start() (*proc, error) {
	s := in.s
	in.mu.Lock()
	list := in.ports
	restart := !in.startedAt.IsZero()
	in.mu.Unlock()
	for _, p := range list {
		if restart && !free(s.cfg.Host, p) { // taken since the last run: take new ones
			fresh, err := ports.reserve(s.cfg.Host, len(list))
			if err != nil {
				return nil, err
			}
			ports.release(list)
			in.mu.Lock()
			in.ports = fresh
			in.mu.Unlock()
			break
		}
	}
	// The app writes its output there itself (see tail), through a file
	// of Flock's own, never a link or a FIFO it left in its sandbox
	// (openSandbox).
	w, err := in.openSandbox()
	if err != nil {
		return nil, err
	}
	cmd, cgPath, err := in.launch(s.environ(in, in.sandbox), w)
	w.Close()
	if err != nil {
		return nil, err
	}
	p := &proc{pgid: cmd.Process.Pid, done: make(chan struct{}), outDone: make(chan struct{})}
	start0 := procgroup.StartTime(p.pgid)
	go in.tail(p.done, p.outDone)
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	in.mu.Lock()
	in.pgid, in.start0, in.cgroup, in.startedAt, in.healthy = p.pgid, start0, cgPath, time.Now(), false
	in.firstErr = ""
	in.mu.Unlock()
	s.saveState()
	s.notify(in.app)
	return p, nil
}

// terminate stops a process group: SIGTERM to the group, then SIGKILL to
// whatever is left of it after grace. It returns once the leader is reaped.
func (in *instance) terminate(p *proc, grace time.Duration) (killed bool) {
	killed = procgroup.Terminate(p.pgid, p.done, grace)
	in.finish(p)
	return killed
}

// finish cleans up after the leader exited: stragglers of the group are
// killed, the output is read to its end (briefly: a straggler outside the
// group may hold the pipe), and the instance is marked down.
func (in *instance) finish(p *proc) {
	procgroup.Kill(p.pgid)
	in.mu.Lock()
	cg := in.cgroup
	in.mu.Unlock()
	if cg != "" {
		killCgroup(cg)
	}
	select {
	case <-p.outDone:
	case <-time.After(200 * time.Millisecond):
	}
	in.endRun(p, cg)
	removeCgroup(cg)
	in.mu.Lock()
	changed := in.healthy || in.pgid != 0
	in.healthy, in.pgid, in.cgroup = false, 0, ""
	in.mu.Unlock()
	if changed {
		in.s.saveState()
		in.s.notify(in.app)
	}
}

// stop asks the supervisor to stop the process and waits until it has.
func (in *instance) stop() {
	in.stopOnce.Do(func() { close(in.stopCh) })
	<-in.exited
}

// takeReport returns the pending deploy report, once.
func (in *instance) takeReport() func(error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	r := in.report
	in.report = nil
	return r
}

func (in *instance) setHealthy(ok bool) {
	if ok {
		in.endBoost()
	}
	in.mu.Lock()
	changed := in.healthy != ok
	in.healthy = ok
	in.mu.Unlock()
	if changed {
		in.s.saveState() // an adopted instance starts with the health it had
		in.s.notify(in.app)
	}
}

// lastOutput quotes the instance's last lines for an error message.
func (in *instance) lastOutput() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastOutputLocked()
}

// lastOutputLocked is lastOutput for a caller that holds in.mu.
func (in *instance) lastOutputLocked() string {
	if len(in.last) == 0 {
		return "no output"
	}
	tail := make([]string, 0, 5)
	for _, l := range in.last[max(len(in.last)-5, 0):] {
		if l = strings.TrimSpace(l); l != "" {
			tail = append(tail, l)
		}
	}
	out := strings.Join(tail, " | ")
	// A stack trace pushes the error out of the tail ("Error: boom" is
	// followed by ten frames): name it first.
	if in.firstErr != "" && !strings.Contains(out, in.firstErr) {
		out = in.firstErr + " … " + out
	}
	return out
}

// supervise runs the instance until stop: start, watch, and after an exit
// or failed checks restart with exponential backoff (reset once a run stayed
// healthy long enough). While a deploy waits for it (report is set), its
// first failure is reported to the deploy instead, and supervision ends.
// adopted, when set, is a process a previous Flock started: it is watched
// first instead of starting one.
func (in *instance) supervise(adopted *proc) {
	defer close(in.exited)
	defer func() { // stopped (Remove, shutdown) while a deploy waits for it
		if r := in.takeReport(); r != nil {
			r(fmt.Errorf("instance %s was stopped before passing its check", in.id))
		}
	}()
	s := in.s
	backoff := s.backoffMin
	for {
		var cause error
		p, err := adopted, error(nil)
		if p == nil {
			p, err = in.start()
		}
		adopted = nil
		if err != nil {
			cause = fmt.Errorf("instance %s could not start: %w", in.id, err)
		} else {
			if p.adopted {
				in.note("adopted after a restart of Flock (pid %d, ports %v)", p.pgid, in.portList())
			} else {
				in.note("started (pid %d, ports %v)", p.pgid, in.portList())
			}
			out := in.watch(p)
			if out.kind == released {
				return
			}
			if out.kind == stopped {
				if in.terminate(p, s.cfg.StopGrace) {
					in.note("stopped with SIGKILL after %s", s.cfg.StopGrace)
				} else {
					in.note("stopped")
				}
				return
			}
			if out.kind == exited {
				in.finish(p)
			} else {
				in.terminate(p, s.cfg.StopGrace)
			}
			cause = out.describe(in, p)
			if !out.passedAt.IsZero() && time.Since(out.passedAt) >= s.resetAfter {
				backoff = s.backoffMin
			}
		}
		if r := in.takeReport(); r != nil {
			in.note("%v", cause)
			r(cause)
			return
		}
		in.note("%v; restarting in %s", cause, backoff)
		s.log.Warn("instance restarting", "app", in.app, "release", in.rel.name, "instance", in.id,
			"cause", cause, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-in.stopCh:
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, s.backoffMax)
	}
}

func (in *instance) portList() []int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]int(nil), in.ports...)
}
