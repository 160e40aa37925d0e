package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lineWriter passes whole lines to w, so a reader of the build log (an
// HTTP stream, a terminal) never sees half a line from a build step.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string // indents a build step's own output
	buf    []byte
}

// Write buffers p and writes every complete line it holds.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 { // a progress bar without newlines: cut it
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// emit writes one line; a failing log writer must not fail the build, so
// its errors are dropped.
func (l *lineWriter) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 { // keep the last state of a progress line
		line = line[i+1:]
	}
	_, _ = io.WriteString(l.w, l.prefix+string(line)+"\n")
}

// flush writes what is left of an unterminated last line.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}

// printf writes one line of the builder's own.
func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.w, format+"\n", args...)
}

// execLookPath is exec.LookPath: box.lookPath's way for Flock's own user.
var execLookPath = exec.LookPath

// run runs a build step in dir with its output indented in the log, as
// Flock's user or in the box x (runas.go). The step gets its own process
// group, killed as a whole when ctx ends and after the step exits, so no
// helper process outlives the build.
func run(ctx context.Context, lw *lineWriter, x *box, dir string, env []string, name string, args ...string) error {
	bin, err := x.lookPath(name)
	if err != nil {
		return fmt.Errorf("%s is not installed on this machine (needed to build this app): %w", name, err)
	}
	out := &lineWriter{w: lw.w, prefix: "       "}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if x != nil {
		cmd.Env = append(cmd.Env, x.env()...)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = x.attr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers of the step; ESRCH when none
	}
	out.flush()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", name, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// output runs a short command and returns its trimmed standard output.
func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}
