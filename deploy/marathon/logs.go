package marathon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Output Logs shows of each file before it follows.
const (
	recentBytes = 16 << 10 // the end of each stdout and stderr: some 200 lines
	maxLogLine  = 16 << 10 // longer lines are cut, as the embedded scheduler cuts them
	maxReads    = 64       // reads of one file per poll (4 MiB), so one busy task cannot starve the others
)

// Logs implements deploy.Scheduler: it reads the stdout and stderr of the
// app's running tasks (and of its process types' tasks) from their Mesos
// agents' sandboxes, each line prefixed with its task's id as the
// embedded scheduler prefixes its instances' lines. It shows the end of
// each file, then with follow polls the files from where it stopped and
// picks up tasks started meanwhile, until ctx ends. An agent that cannot
// be read costs a "[flock]" note, not the others' output.
func (s *Scheduler) Logs(ctx context.Context, app string, follow bool, w io.Writer) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("logs %q: %w", app, deploy.ErrInvalid)
	}
	ag := newAgents(s.cfg.AgentPort, &http.Client{Timeout: 10 * time.Second})
	out := bufio.NewWriter(w)
	files := map[string]*sandboxFile{}
	away := false // Marathon did not answer the last time: said once
	for first := true; ; first = false {
		tasks, err := s.logTasks(ctx, app)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && first:
			return fmt.Errorf("logs %s: %w", app, err)
		case err != nil:
			// Marathon away a moment: keep following the tasks known.
			if !away {
				away = true
				fmt.Fprintf(out, "[flock] task list: %s\n", err)
			}
			tasks = knownTasks(files)
		default:
			away = false
		}
		live := map[string]bool{}
		for _, t := range tasks {
			for _, name := range []string{"stdout", "stderr"} {
				key := t.ID + "/" + name
				live[key] = true
				f := files[key]
				if f == nil {
					// Tasks there at the start show their recent output;
					// later ones all of it.
					f = &sandboxFile{task: t, name: name, tail: first}
					files[key] = f
				}
				f.poll(ctx, ag, out)
			}
		}
		for key := range files {
			if !live[key] {
				delete(files, key)
			}
		}
		if err := flushLogs(out, w); err != nil || !follow {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.pollEvery):
		}
	}
}

// knownTasks are the tasks of files, sorted by id.
func knownTasks(files map[string]*sandboxFile) []mTask {
	byID := map[string]mTask{}
	for _, f := range files {
		byID[f.task.ID] = f.task
	}
	out := make([]mTask, 0, len(byID))
	for _, t := range byID {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b mTask) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// logTasks lists the running tasks of app and of its process types,
// sorted by id so that the output keeps one order.
func (s *Scheduler) logTasks(ctx context.Context, app string) ([]mTask, error) {
	names := []string{app}
	s.mu.Lock()
	for name := range s.apps {
		if parent, _, ok := deploy.ParentApp(name); ok && parent == app {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	slices.Sort(names)
	var tasks []mTask
	for _, name := range names {
		a, err := s.api.App(ctx, s.appID(name))
		if errors.Is(err, errNotFound) {
			continue // never deployed, or removed: nothing runs
		}
		if err != nil {
			return nil, err
		}
		for _, t := range a.Tasks {
			if t.running() {
				tasks = append(tasks, t)
			}
		}
	}
	slices.SortFunc(tasks, func(a, b mTask) int { return strings.Compare(a.ID, b.ID) })
	return tasks, nil
}

// sandboxFile follows one file of one task's sandbox.
type sandboxFile struct {
	task mTask
	name string // "stdout" or "stderr"
	tail bool   // start near the end, not at the start

	path    string // in the agent's file system; "" until the sandbox is found
	started bool   // off is set
	off     int64
	cut     bool   // the first line read may be the end of a longer one
	partial []byte // the start of a line not ended yet
	note    string // the last problem reported, not repeated
}

// poll writes the file's new complete lines to out.
func (f *sandboxFile) poll(ctx context.Context, ag *agents, out io.Writer) {
	host := f.task.Host
	if f.path == "" {
		dir, err := ag.sandbox(ctx, host, f.task.ID)
		if err != nil {
			f.problem(out, err)
			return
		}
		f.path = strings.TrimSuffix(dir, "/") + "/" + f.name
	}
	if !f.started {
		if f.tail {
			_, size, err := ag.read(ctx, host, f.path, -1)
			if err != nil {
				f.problem(out, err)
				return
			}
			f.off = max(size-recentBytes, 0)
			f.cut = f.off > 0
		}
		f.started = true
	}
	for range maxReads {
		data, at, err := ag.read(ctx, host, f.path, f.off)
		if err != nil {
			f.problem(out, err)
			return
		}
		if at < f.off {
			// The file is shorter than what was read: rotated or
			// truncated. Start it over.
			f.off, f.partial, f.cut = 0, nil, false
			continue
		}
		f.note = ""
		if data == "" {
			return
		}
		f.off = at + int64(len(data))
		f.lines(data, out)
	}
}

// lines writes every complete line of data, after what was left of the
// last read, and keeps the rest.
func (f *sandboxFile) lines(data string, out io.Writer) {
	buf := append(f.partial, data...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := buf[:i]
		buf = buf[i+1:]
		if f.cut {
			f.cut = false
			continue
		}
		f.write(out, line)
	}
	if len(buf) > maxLogLine {
		f.write(out, buf)
		buf = nil
	}
	f.partial = append([]byte(nil), buf...)
}

func (f *sandboxFile) write(out io.Writer, line []byte) {
	line = []byte(strings.TrimSuffix(string(line), "\r"))
	if len(line) > maxLogLine {
		line = line[:maxLogLine]
	}
	fmt.Fprintf(out, "%s %s\n", f.task.ID, line)
}

// problem notes once why the file cannot be read now; a later poll
// tries again.
func (f *sandboxFile) problem(out io.Writer, err error) {
	msg := fmt.Sprintf("%s: %v", f.name, err)
	if msg == f.note {
		return
	}
	f.note = msg
	fmt.Fprintf(out, "%s [flock] %s unreadable: %s\n", f.task.ID, f.name, err)
}

// flushLogs pushes buffered lines out, through an http.ResponseWriter too.
func flushLogs(bw *bufio.Writer, w io.Writer) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if f, ok := w.(interface{ Flush() }); ok {
		f.Flush()
	}
	return nil
}
