package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
)

// releaseWaitDelay bounds how long the release command's output may stay
// open after the command itself exited (a child it left behind).
const releaseWaitDelay = 2 * time.Second

// RunRelease runs command once for spec's release: the release phase
// (Procfile "release:"), before any instance of the release starts. It
// runs as an instance would, in the unpacked release folder, in the
// app's box (its uid and a cgroup with the release's limits) and with the
// release's environment but no port, and its output goes to log, each
// line prefixed with "release: ". Whatever the command left running is
// killed when it exits. It holds the app's lock, so no Deploy, Scale or
// Remove of the app runs meanwhile.
func (s *Scheduler) RunRelease(ctx context.Context, spec deploy.Spec, command string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	if err := validate(spec); err != nil {
		return fmt.Errorf("release phase of %s %s: %w", spec.App, spec.Release, err)
	}
	if strings.TrimSpace(command) == "" || strings.ContainsRune(command, 0) {
		return fmt.Errorf("release phase of %s %s: empty command: %w", spec.App, spec.Release, deploy.ErrInvalid)
	}
	a, err := s.lock(ctx, spec.App, true)
	if err != nil {
		return fmt.Errorf("release phase of %s %s: %w", spec.App, spec.Release, err)
	}
	defer a.unlock()
	rel, err := s.prepare(spec)
	if err != nil {
		return fmt.Errorf("release phase of %s %s: %w", spec.App, spec.Release, err)
	}
	run := *rel
	run.command = command
	id := spec.App + "." + spec.Release + ".release"
	one := &instance{s: s, app: spec.App, rel: &run, id: id,
		sandbox: filepath.Join(s.appDir(spec.App), "instances", id)}
	defer os.RemoveAll(one.sandbox)
	out, err := one.openSandbox() // makes the sandbox (HOME, TMPDIR) in the app's box
	if err != nil {
		return fmt.Errorf("release phase of %s %s: %w", spec.App, spec.Release, err)
	}
	out.Close()
	pw := &prefixWriter{w: log, prefix: "release: "}
	cmd, cg, err := one.launch(s.environ(one, one.sandbox), pw)
	if err != nil {
		return fmt.Errorf("release phase of %s %s: %w", spec.App, spec.Release, err)
	}
	cmd.WaitDelay = releaseWaitDelay
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		procgroup.Kill(pgid)
		<-done
		werr = ctx.Err()
	}
	procgroup.Kill(pgid) // what it left in its group
	if cg != "" {
		killCgroup(cg) // and what left the group
		removeCgroup(cg)
	}
	pw.flush()
	switch {
	case errors.Is(werr, context.Canceled), errors.Is(werr, context.DeadlineExceeded):
		return fmt.Errorf("%q did not end: %w", command, werr)
	case cmd.ProcessState != nil && !cmd.ProcessState.Success():
		msg := fmt.Sprintf("%q exited with %s", command, exitStatus(cmd.ProcessState))
		if first := firstError(pw.lines()); first != "" {
			msg += ": " + first
		}
		return errors.New(msg)
	case werr != nil && !errors.Is(werr, exec.ErrWaitDelay):
		return fmt.Errorf("%q: %w", command, werr)
	}
	return nil
}

// prefixWriter writes whole lines to w with a prefix, and keeps the last
// lines for the error message.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
	last   []string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.emit(string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > maxLine {
		p.emit(string(p.buf))
		p.buf = p.buf[:0]
	}
	return len(b), nil
}

func (p *prefixWriter) emit(line string) {
	line = strings.TrimRight(line, "\r")
	fmt.Fprintln(p.w, p.prefix+line)
	if len(p.last) >= 200 {
		p.last = p.last[1:]
	}
	p.last = append(p.last, line)
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit(string(p.buf))
		p.buf = p.buf[:0]
	}
}

func (p *prefixWriter) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.last...)
}

var _ deploy.ReleaseRunner = (*Scheduler)(nil)
