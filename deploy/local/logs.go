package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy"
	"golang.org/x/sys/unix"
)

const (
	recentLines = 200      // lines Logs writes before following
	lastLines   = 8        // lines of an instance quoted when it fails
	maxAppLog   = 10 << 20 // app.log is rotated to app.log.1 past this size
	maxLine     = 16 << 10 // longer lines are cut
)

// appLog is an app's combined output: the file apps/<app>/app.log, the
// last lines in memory, and the followers of `flock logs --follow`.
type appLog struct {
	path string

	mu     sync.Mutex
	f      *os.File
	size   int64
	ring   []string // the last recentLines lines, oldest first
	subs   map[chan string]struct{}
	closed bool // the app was removed or the scheduler stopped: drop late lines
}

// openAppLog opens path for appending and loads its last lines, so the
// recent output survives a restart of Flock.
func openAppLog(path string) *appLog {
	l := &appLog{path: path, subs: map[chan string]struct{}{}}
	if f, err := os.Open(path); err == nil {
		if st, err := f.Stat(); err == nil {
			l.size = st.Size()
			off := max(st.Size()-64<<10, 0)
			buf := make([]byte, st.Size()-off)
			if n, _ := f.ReadAt(buf, off); n > 0 {
				lines := bytes.Split(bytes.TrimRight(buf[:n], "\n"), []byte("\n"))
				if off > 0 && len(lines) > 0 {
					lines = lines[1:] // probably cut in the middle
				}
				for _, ln := range lines[max(len(lines)-recentLines, 0):] {
					l.ring = append(l.ring, string(ln))
				}
			}
		}
		f.Close()
	}
	return l
}

// write records one line ("<instance> <text>").
func (l *appLog) write(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if len(l.ring) >= recentLines {
		copy(l.ring, l.ring[1:])
		l.ring = l.ring[:recentLines-1]
	}
	l.ring = append(l.ring, line)
	for ch := range l.subs {
		select {
		case ch <- line:
		default: // a follower that does not keep up loses lines, never stalls the app
		}
	}
	if l.f == nil || l.size > maxAppLog {
		if l.f != nil {
			l.f.Close()
			os.Rename(l.path, l.path+".1")
			l.size = 0
		}
		if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
			l.f = nil
			return
		}
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			l.f = nil
			return
		}
		l.f = f
	}
	n, _ := l.f.WriteString(line + "\n")
	l.size += int64(n)
}

func (l *appLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	for ch := range l.subs {
		delete(l.subs, ch)
		close(ch)
	}
}

// Logs writes the app's last lines of output to w, each prefixed with the
// id of the instance that wrote it (or "[flock]" notes about it), then,
// with follow, new lines until ctx ends. It works for an app that exists
// only on disk (after a restart of Flock, before the app is deployed
// again); an app never seen is ErrNotFound.
func (s *Scheduler) Logs(ctx context.Context, app string, follow bool, w io.Writer) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("logs %q: %w", app, deploy.ErrInvalid)
	}
	l := s.appLog(app, false)
	if l == nil {
		return fmt.Errorf("logs %s: %w", app, deploy.ErrNotFound)
	}
	var ch chan string
	l.mu.Lock()
	recent := append([]string(nil), l.ring...)
	if follow {
		ch = make(chan string, 1024)
		l.subs[ch] = struct{}{}
	}
	l.mu.Unlock()
	if ch != nil {
		defer func() {
			l.mu.Lock()
			delete(l.subs, ch)
			l.mu.Unlock()
		}()
	}
	bw := bufio.NewWriter(w)
	for _, line := range recent {
		bw.WriteString(line + "\n")
	}
	if err := flush(bw, w); err != nil || !follow {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-ch:
			if !ok {
				return nil // the app was removed or the scheduler stopped
			}
			bw.WriteString(line + "\n")
			for more := true; more; {
				select {
				case line, ok = <-ch:
					if ok {
						bw.WriteString(line + "\n")
					}
					more = ok
				default:
					more = false
				}
			}
			if err := flush(bw, w); err != nil {
				return err
			}
		}
	}
}

// flush pushes buffered lines out, through an http.ResponseWriter too.
func flush(bw *bufio.Writer, w io.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if f, ok := w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return nil
}

// appLog returns app's log, opening it when the app is known or has a log
// on disk; create opens it for an app about to be deployed.
func (s *Scheduler) appLog(app string, create bool) *appLog {
	if parent, _, ok := deploy.ParentApp(app); ok {
		app, create = parent, true // a process type logs into its app's log
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[app]; l != nil {
		return l
	}
	path := filepath.Join(s.appDir(app), "app.log")
	if _, err := os.Stat(path); !create && errors.Is(err, fs.ErrNotExist) && s.apps[app] == nil {
		return nil
	}
	l := openAppLog(path)
	s.logs[app] = l
	return l
}

// Tail pauses: how long the tail waits for more output, from a few
// milliseconds after the last output up to tailPauseMax when idle.
const (
	tailPauseMin = 5 * time.Millisecond
	tailPauseMax = 200 * time.Millisecond
)

// tail copies what the instance's processes append to its output.log, line
// by line, to the app log and its last lines (quoted when it fails). The
// processes write that file themselves rather than a pipe Flock reads: a
// pipe would break when Flock dies, and an app writing to it would get
// EPIPE or SIGPIPE, so an app could not outlive a crash of Flock. How far
// the file was read is kept in output.offset, so a restarted Flock that
// adopts the instance goes on from there: lines written while Flock was
// down reach the app log then, and none twice.
//
// The file does not grow without bounds on disk: once 8 MiB
// (Scheduler.outputMax) more have been read, the part read is punched out
// of it (fallocate PUNCH_HOLE: the blocks are freed, the offsets stay, so
// a line the app appends meanwhile is never lost). On a file system
// without hole punching the file is emptied instead (the app appends with
// O_APPEND, so its next line starts the file again), and a line written
// in the instant between the last read and the truncation is lost. tail
// returns once exited is closed and the file is read to its end, closing
// done.
func (in *instance) tail(exited <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	// O_NOFOLLOW: the sandbox may belong to the app, which must not swap
	// in a link to a file of Flock's for Flock to read and truncate.
	f, err := os.OpenFile(filepath.Join(in.sandbox, "output.log"), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		in.note("cannot read the instance's output: %v", err)
		return
	}
	defer f.Close()
	pos, err := os.OpenFile(filepath.Join(in.sandbox, "output.offset"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		in.note("cannot keep the output offset: %v", err)
		return
	}
	defer pos.Close()
	saved := make([]byte, 24)
	n, _ := pos.ReadAt(saved, 0)
	off, _ := strconv.ParseInt(strings.TrimSpace(string(saved[:n])), 10, 64)
	save := func() { pos.WriteAt([]byte(fmt.Sprintf("%020d\n", off)), 0) }
	buf := make([]byte, 64<<10)
	freed := int64(0) // offsets below are punched out of the file
	var partial []byte
	pause := tailPauseMin
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	final := false
	for {
		n, _ := f.ReadAt(buf, off)
		if n > 0 {
			off += int64(n)
			partial = in.lines(append(partial, buf[:n]...))
			save()
			pause = tailPauseMin
			continue
		}
		if st, err := f.Stat(); err == nil && st.Size() < off {
			off, partial = 0, nil // emptied by somebody else: start again
			save()
			continue
		}
		if final {
			if len(partial) > 0 {
				in.line(partial)
			}
			return
		}
		if off-freed > in.s.outputMax {
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, off); err == nil {
				freed = off
			} else if f.Truncate(0) == nil {
				off, freed = 0, 0
				save()
			}
		}
		timer.Reset(pause)
		select {
		case <-exited:
			final = true
		case <-in.s.done: // Run ended detached: the next Flock tails from here (output.offset)
			return
		case <-timer.C:
			pause = min(pause*2, tailPauseMax)
		}
	}
}

// lines records each complete line of b and returns what is left of it
// (an unfinished line); a line longer than maxLine is cut there.
func (in *instance) lines(b []byte) []byte {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) >= maxLine {
				in.line(b[:maxLine])
				b = b[maxLine:]
				continue
			}
			return append([]byte(nil), b...)
		}
		if i > maxLine {
			in.line(b[:maxLine])
			b = b[maxLine:]
			continue
		}
		in.line(b[:i])
		b = b[i+1:]
	}
}

// line records one line of the instance's output.
func (in *instance) line(b []byte) {
	text := string(bytes.TrimRight(b, "\r\n"))
	in.log.write(in.id + " " + text)
	in.mu.Lock()
	if len(in.last) >= lastLines {
		in.last = in.last[1:]
	}
	in.last = append(in.last, text)
	if in.firstErr == "" && errorLine(text) {
		in.firstErr = strings.TrimSpace(text)
	}
	in.mu.Unlock()
}

// note writes a line about an instance from Flock itself into the app log.
func (in *instance) note(format string, args ...any) {
	in.log.write(in.id + " [flock] " + fmt.Sprintf(format, args...))
}
