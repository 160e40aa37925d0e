package marathontest

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is the process of one task (Options.RunTasks), like a Mesos
// executor: sandbox dir, fetched URIs, `sh -c cmd`.
type proc struct {
	mu       sync.Mutex
	cmd      *exec.Cmd
	quitting bool
	quit     chan struct{}
	done     chan struct{}
}

// stop sends SIGTERM to the task's process group, waits up to 5 s, then
// SIGKILLs it.
func (p *proc) stop() {
	p.mu.Lock()
	if p.quitting {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.quitting = true
	close(p.quit)
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		<-p.done
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// launch starts t's process in the background. Caller holds s.mu.
func (s *Server) launch(t *task, a map[string]any) {
	p := &proc{quit: make(chan struct{}), done: make(chan struct{})}
	t.proc = p
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(p.done)
		err := s.run(t, p, a)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch t.State {
		case "TASK_KILLING": // the kill is complete
			s.removeLocked(t, "TASK_KILLED", "")
			return
		case "TASK_STAGING", "TASK_RUNNING":
		default: // already ended
			return
		}
		// Exited on its own (or never started): Marathon replaces it
		// after the app's launch delay, so a crash loop does not spin.
		s.removeLocked(t, "TASK_FAILED", fmt.Sprint(err))
		s.failedLocked(t.AppID)
	}()
}

// run prepares the sandbox, runs the command and checks its health until
// it exits or is stopped.
func (s *Server) run(t *task, p *proc, a map[string]any) error {
	if c, ok := a["container"].(map[string]any); ok && c["type"] == "DOCKER" {
		<-p.quit // no Docker here: the task stays staging, as with no agent able to pull
		return nil
	}
	dir := filepath.Join(s.tmp, t.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if fetch, ok := a["fetch"].([]any); ok {
		for _, f := range fetch {
			m, _ := f.(map[string]any)
			extract, _ := m["extract"].(bool)
			if err := fetchURI(fmt.Sprint(m["uri"]), dir, extract); err != nil {
				return err
			}
		}
	}
	cmdline, _ := a["cmd"].(string)
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if env, ok := a["env"].(map[string]any); ok {
		for k, v := range env {
			if s, ok := v.(string); ok {
				cmd.Env = append(cmd.Env, k+"="+s)
			}
		}
	}
	for i, port := range t.Ports {
		cmd.Env = append(cmd.Env, "PORT"+strconv.Itoa(i)+"="+strconv.Itoa(port))
	}
	if len(t.Ports) > 0 {
		cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(t.Ports[0]))
	}
	cmd.Env = append(cmd.Env, "HOST="+t.Host, "MESOS_SANDBOX="+dir, "MESOS_TASK_ID="+t.ID, "MARATHON_APP_ID="+t.AppID)
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		return err
	}
	defer out.Close()
	errs, err := os.Create(filepath.Join(dir, "stderr")) // Mesos keeps the two apart
	if err != nil {
		return err
	}
	defer errs.Close()
	cmd.Stdout, cmd.Stderr = out, errs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.mu.Lock()
	if p.quitting {
		p.mu.Unlock()
		return nil
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.cmd = cmd
	p.mu.Unlock()

	s.mu.Lock()
	t.State, t.StartedAt = "TASK_RUNNING", s.now()
	s.push(statusEvent(t))
	s.mu.Unlock()

	exited := make(chan struct{})
	go s.check(t, a, exited)
	err = cmd.Wait()
	close(exited)
	return err
}

// check runs the app's first health check on t every CheckEvery.
func (s *Server) check(t *task, a map[string]any, exited <-chan struct{}) {
	checks, _ := a["healthChecks"].([]any)
	if len(checks) == 0 {
		return
	}
	hc, _ := checks[0].(map[string]any)
	idx := toInt(hc["portIndex"])
	if idx >= len(t.Ports) {
		idx = 0
	}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Ports[idx]))
	pth, _ := hc["path"].(string)
	client := &http.Client{Timeout: time.Second}
	started := time.Now()
	grace := time.Duration(num(hc, "gracePeriodSeconds", 300) * float64(s.opts.Second))
	tick := time.NewTicker(s.opts.CheckEvery)
	defer tick.Stop()
	for {
		ok := false
		if strings.Contains(fmt.Sprint(hc["protocol"]), "HTTP") {
			resp, err := client.Get("http://" + addr + pth)
			if err == nil {
				resp.Body.Close()
				ok = resp.StatusCode >= 200 && resp.StatusCode < 400
			}
		} else if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			ok = true
		}
		s.mu.Lock()
		if !ok && t.Alive == nil && time.Since(started) < grace {
			// Marathon ignores failures within gracePeriodSeconds
			// until the first success.
		} else if t.Alive == nil || *t.Alive != ok {
			t.Alive = &ok
			if t.State == "TASK_RUNNING" {
				s.push(healthEvent(t))
			}
		}
		s.mu.Unlock()
		select {
		case <-exited:
			return
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// fetchURI downloads uri into dir, extracting a .tar.gz when asked, as the
// Mesos fetcher does.
func fetchURI(uri, dir string, extract bool) error {
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Get(uri)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: status %d", uri, resp.StatusCode)
	}
	name := path.Base(strings.SplitN(uri, "?", 2)[0])
	if extract && (strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz")) {
		return untar(resp.Body, dir)
	}
	f, err := os.Create(filepath.Join(dir, filepath.Base(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// untar extracts a gzipped tar into dir, refusing paths that leave it.
func untar(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("untar: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("untar: %w", err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("untar: %q leaves the sandbox", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			target := filepath.Join(filepath.Dir(dst), h.Linkname)
			if filepath.IsAbs(h.Linkname) || !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
				continue
			}
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		}
	}
}

// freePorts picks n free ports on 127.0.0.1.
func freePorts(n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			break
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
