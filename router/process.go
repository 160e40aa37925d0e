package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/router/hap"
)

// outFile is where HAProxy's master and workers write their output.
const outFile = "haproxy.out"

// proc is one HAProxy master process, in its own process group with its
// workers: started by this router, or adopted from a previous Flock.
type proc struct {
	pid  int
	done chan struct{} // closed by the one waiter goroutine when it exits
	err  error         // set before done is closed

	logged chan struct{} // closed when HAProxy's output is read to the end
	mu     sync.Mutex
	alert  string // the first [ALERT] line HAProxy wrote: what went wrong
}

// startHAProxy starts a master in master-worker mode on the configuration
// in Dir and waits until its worker answers. It is not tied to Flock's
// life (no Pdeathsig, its own process group): if Flock dies, HAProxy goes
// on serving and the next Flock adopts it (adoptHAProxy).
func (r *Router) startHAProxy(ctx context.Context) (*proc, error) {
	s := r.settings
	cmd := exec.Command(r.binary, "-W", "-S", s.path(masterSocket)+",mode,600", "-f", s.path(cfgFile))
	// HAProxy's master and workers write to haproxy.out, which the router
	// tails: a pipe would break when Flock dies, and the next reload of
	// an adopted master would write into it.
	out, err := os.OpenFile(s.path(outFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	from := fileSize(out)
	cmd.Stdout, cmd.Stderr = out, out
	err = procgroup.Start(cmd)
	out.Close()
	if err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{}), logged: make(chan struct{})}
	go r.logLines(p, from)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := r.waitWorker(ctx, p, 0); err != nil {
		p.stop(r.log, 0)
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	return p, nil
}

// waitWorker waits until the master's current worker is a worker of p
// other than old (the worker before a reload, 0 at start) and answers.
func (r *Router) waitWorker(ctx context.Context, p *proc, old int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go func() { // a dead master answers no more: stop dialing it
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for delay := time.Millisecond; ; delay = min(delay*2, 10*time.Millisecond) {
		pid, err := r.admin.Pid(ctx)
		if err == nil && pid != old && procgroup.ParentOf(pid) == p.pid {
			return nil
		}
		select {
		case <-p.done:
			select { // the alert may still be in the pipe
			case <-p.logged:
			case <-time.After(time.Second):
			}
			p.mu.Lock()
			a := p.alert
			p.mu.Unlock()
			if a != "" {
				return fmt.Errorf("haproxy exited: %v: %s", p.err, a)
			}
			return fmt.Errorf("haproxy exited: %v", p.err)
		case <-ctx.Done():
			select {
			case <-p.done:
				continue // report the exit above
			default:
			}
			return fmt.Errorf("no worker answered: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
}

// stop asks the master to stop softly (SIGUSR1: stop listening, finish the
// requests in flight), then SIGTERM, then kills what is left of the
// process group.
func (p *proc) stop(log *slog.Logger, grace time.Duration) {
	stopGroup(log, p.pid, p.done, grace)
}

// stopGroup stops the master pid and its process group; done, when not
// nil, is closed once the master has exited.
func stopGroup(log *slog.Logger, pid int, done <-chan struct{}, grace time.Duration) {
	exited := func(d time.Duration) bool { return procgroup.WaitExited(pid, done, d) }
	// A master that is re-executing itself for a reload misses signals:
	// repeat the soft stop until it takes.
	soft := procgroup.Exited(pid, done)
	for deadline := time.Now().Add(grace); !soft && time.Now().Before(deadline); {
		_ = syscall.Kill(pid, syscall.SIGUSR1)
		if exited(min(250*time.Millisecond, time.Until(deadline))) {
			soft = true
			break
		}
	}
	if !soft {
		log.Warn("haproxy did not stop in time, terminating", "pid", pid, "grace", grace)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !exited(2 * time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			exited(2 * time.Second)
		}
	}
	// Workers still holding connections after the master left.
	procgroup.Kill(pid)
}

// leftover returns the pid of a HAProxy master that a previous Flock
// started on this Dir and left running (Flock was killed), or 0. It only
// trusts the pid file when the process is a haproxy on our config.
func (r *Router) leftover() int {
	b, err := os.ReadFile(r.settings.path(pidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	args := procgroup.Cmdline(pid)
	if len(args) == 0 || !strings.Contains(args[0], "haproxy") {
		return 0
	}
	if slices.Contains(args, r.settings.path(cfgFile)) {
		return pid
	}
	return 0
}

// logLines logs what HAProxy writes to haproxy.out, a line at a time,
// from offset from until p's master has exited and the file is read.
func (r *Router) logLines(p *proc, from int64) {
	defer close(p.logged)
	f, err := os.Open(r.settings.path(outFile))
	if err != nil {
		r.log.Warn("cannot read haproxy's output", "err", err)
		return
	}
	defer f.Close()
	tailFile(f, from, p.done, func(line string) { r.logLine(p, line) })
}

// logLine logs one line of HAProxy's output; the first alert is kept.
func (r *Router) logLine(p *proc, line string) {
	log, pid := r.log, p.pid
	{
		switch {
		case strings.HasPrefix(line, "[ALERT]"):
			p.mu.Lock()
			if p.alert == "" {
				p.alert = line
			}
			p.mu.Unlock()
			log.Error("haproxy", "pid", pid, "msg", line)
		case strings.HasPrefix(line, "[WARNING]") && !routine(line):
			log.Info("haproxy", "pid", pid, "msg", line)
		default:
			log.Debug("haproxy", "pid", pid, "msg", line)
		}
	}
}

// tailFile reads the lines appended to f from offset off and hands them to
// line, until stop is closed and f is read to its end.
func tailFile(f *os.File, off int64, stop <-chan struct{}, line func(string)) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 64<<10)
	if _, err := br.Discard(int(off)); err != nil && !errors.Is(err, io.EOF) {
		return
	}
	var partial []byte
	pause, final := 5*time.Millisecond, false
	for {
		b, err := br.ReadSlice('\n')
		partial = append(partial, b...)
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			line(strings.TrimRight(string(partial), "\r\n"))
			partial, pause = partial[:0], 5*time.Millisecond
			continue
		}
		if final {
			if len(partial) > 0 {
				line(string(partial))
			}
			return
		}
		select {
		case <-stop:
			final = true
		case <-time.After(pause):
			pause = min(pause*2, 250*time.Millisecond)
		}
	}
}

func fileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// routineWarnings are what HAProxy says at WARNING level on every reload
// and every runtime change the router makes; at info level they would
// drown what matters (a server failing its checks, a worker dying).
var routineWarnings = []string{
	"stopped (cumulated conns", "Former worker", "Exiting Master", "All workers exited",
	"leaving forced maintenance", "going DOWN for maintenance", "is UP/READY",
	// An HTTPS frontend whose crt-list is still empty: certificates come
	// through the runtime API a moment later.
	"no SSL certificate specified for bind",
}

func routine(line string) bool {
	for _, w := range routineWarnings {
		if strings.Contains(line, w) {
			return true
		}
	}
	return false
}

// checkConfig runs haproxy -c on path.
func (r *Router) checkConfig(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.binary, "-c", "-f", path).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		var ee *exec.ExitError
		if msg == "" || !errors.As(err, &ee) {
			msg = err.Error()
		}
		return fmt.Errorf("haproxy -c: %s", firstAlert(msg))
	}
	return nil
}

// firstAlert keeps the first [ALERT] line of HAProxy's output, the one that
// says what is wrong, else the first line.
func firstAlert(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "[ALERT]") {
			return strings.TrimSpace(l)
		}
	}
	return hap.FirstLine(out)
}
