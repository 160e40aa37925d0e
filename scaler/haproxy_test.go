package scaler

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router/hap"
)

// serve runs h on a fresh loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// haproxy is a real HAProxy in master-worker mode, as Flock runs it.
type haproxy struct {
	master, admin string // sockets
	front, stats  string // host:port
}

const haproxyCfg = `global
  stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 60s
frontend fe_http
  bind %[2]s
  default_backend app_app1
backend app_app1
  server app1_task1 %[3]s check inter 500ms
  server waker %[4]s backup
listen stats
  bind %[5]s
  stats enable
  stats uri /stats
`

func startHAProxy(t *testing.T, instance, waker string) *haproxy {
	t.Helper()
	bin := testkit.RequireHAProxy(t)
	dir := t.TempDir()
	var lastErr string
	for range 3 { // a free port can be taken before HAProxy binds it
		h := &haproxy{
			master: filepath.Join(dir, "master.sock"), admin: filepath.Join(dir, "admin.sock"),
			front: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), stats: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
		}
		cfg := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyCfg, dir, h.front, instance, waker, h.stats), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "-W", "-S", h.master, "-f", cfg)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		stop := func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		up := func() bool {
			c, err := net.Dial("tcp", h.front)
			if err != nil {
				return false
			}
			c.Close()
			_, err = MasterStats(h.master)(context.Background())
			return err == nil
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				deadline = time.Time{}
				continue
			default:
			}
			if up() {
				t.Cleanup(stop)
				return h
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		lastErr = out.String()
	}
	t.Fatalf("haproxy did not start: %s", lastErr)
	return nil
}

// workers returns the current worker's pid and the old workers', or 0
// while the master is re-executing itself for a reload.
func (h *haproxy) workers() (int, []int) {
	b, err := cli(context.Background(), h.master, "show proc")
	if err != nil {
		return 0, nil
	}
	cur, old, err := parseProc(b)
	if err != nil {
		return 0, nil
	}
	return cur, old
}

// reload reloads HAProxy through the master CLI, as the router does, and
// waits until the new worker runs and the old ones without connections
// are gone (oldLeft of them remain).
func (h *haproxy) reload(t *testing.T, oldLeft int) {
	t.Helper()
	before, _ := h.workers()
	if _, err := cli(context.Background(), h.master, "reload"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the reload", func() bool {
		cur, old := h.workers()
		return cur != 0 && cur != before && len(old) == oldLeft
	})
}

// backendRow reads app_app1's BACKEND row from a stats source.
func backendRow(t *testing.T, stats StatsFunc) Row {
	t.Helper()
	b, err := stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := hap.ParseStats(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Proxy == "app_app1" && r.Server == Backend {
			return r
		}
	}
	t.Fatalf("no app_app1 BACKEND row in %s", b)
	return Row{}
}

// TestRealHAProxy runs the scaler on a real HAProxy: traffic keeps the
// app awake, a reload is neither activity nor idleness, no traffic for
// the idle time puts the app to sleep, and a stream held open keeps it
// awake across reloads (seen through the old workers, MasterStats).
func TestRealHAProxy(t *testing.T) {
	const idleFor = 3 * time.Second
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: hello\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	instance := serve(t, mux)
	wakerAddr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "waker\n") }))
	h := startHAProxy(t, instance, wakerAddr)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(t *testing.T) {
		t.Helper()
		resp, err := client.Get("http://" + h.front + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET through haproxy: %s", resp.Status)
		}
	}

	p := newFakePlatform(deploy.App{Name: "app1", State: deploy.StateRunning, Desired: 1, IdleTimeout: idleFor})
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, MasterStats(h.master))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tick := func(t *testing.T) {
		t.Helper()
		if err := s.Tick(ctx); err != nil {
			t.Fatalf("tick: %v", err)
		}
	}
	// tickFor ticks every 100 ms for d and fails if the app was put to sleep.
	tickFor := func(t *testing.T, d time.Duration, during func(*testing.T)) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if during != nil {
				during(t)
			}
			tick(t)
			if c := p.takeCalls(); len(c) > 0 {
				t.Fatalf("calls while active: %v", c)
			}
		}
	}
	// tickUntilSleep ticks until the scaler puts the app to sleep.
	tickUntilSleep := func(t *testing.T) time.Time {
		t.Helper()
		var slept time.Time
		testkit.WaitFor(t, 10*idleFor, "sleep", func() bool {
			tick(t)
			if c := p.takeCalls(); len(c) > 0 {
				if len(c) != 1 || c[0] != "sleep app1" {
					t.Fatalf("calls: %v", c)
				}
				slept = time.Now()
				return true
			}
			return false
		})
		return slept
	}

	t.Run("traffic keeps the app awake", func(t *testing.T) {
		tickFor(t, 3*idleFor/2, get)
	})

	t.Run("a reload resets the counters and is not idleness", func(t *testing.T) {
		get(t)
		tick(t)
		before, _ := s.LastActive("app1")
		if got := backendRow(t, MasterStats(h.master)).Stot; got < 10 {
			t.Fatalf("stot before reload = %d, want the traffic's", got)
		}
		h.reload(t, 0)
		if got := backendRow(t, MasterStats(h.master)); got.Stot != 0 || got.LastSess != -1 {
			t.Fatalf("after reload: stot %d, lastsess %d; want 0 and -1", got.Stot, got.LastSess)
		}
		tick(t)
		if c := p.takeCalls(); len(c) > 0 {
			t.Fatalf("calls right after a reload: %v", c)
		}
		// Fewer requests than before the reload are still activity.
		sent := time.Now()
		get(t)
		testkit.WaitFor(t, 5*time.Second, "lastsess to count", func() bool {
			tick(t)
			last, _ := s.LastActive("app1")
			return last.After(before) && !last.Before(sent.Add(-time.Second))
		})
	})

	t.Run("no traffic for the idle time puts the app to sleep", func(t *testing.T) {
		last := time.Now()
		get(t)
		slept := tickUntilSleep(t)
		if d := slept.Sub(last); d < idleFor {
			t.Errorf("slept %s after the last request, want at least %s", d, idleFor)
		}
		if got := p.app("app1").State; got != deploy.StateSleeping {
			t.Errorf("state %s, want sleeping", got)
		}
	})

	t.Run("an open stream keeps the app awake across reloads", func(t *testing.T) {
		p.update("app1", state(deploy.StateRunning)) // woken
		tick(t)
		resp, err := client.Get("http://" + h.front + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: hello") {
			t.Fatalf("stream: %q, %v", line, err)
		}
		h.reload(t, 1) // the old worker stays for the stream
		h.reload(t, 1) // the second reload's old worker has nothing open and goes
		if got := backendRow(t, HTTPStats("http://"+h.stats+"/stats;csv")).Scur; got != 0 {
			t.Errorf("current worker alone: scur %d, want 0 (the stream is on the old worker)", got)
		}
		if got := backendRow(t, MasterStats(h.master)).Scur; got != 1 {
			t.Errorf("all workers: scur %d, want 1", got)
		}
		tickFor(t, 3*idleFor/2, nil)

		releaseOnce.Do(func() { close(release) })
		resp.Body.Close()
		closed := time.Now()
		seen, _ := s.LastActive("app1") // the last tick that saw the stream
		if closed.Sub(seen) > time.Second {
			t.Errorf("last active %s before the stream closed, want the last tick's time", closed.Sub(seen))
		}
		testkit.WaitFor(t, 10*time.Second, "the old worker to exit", func() bool {
			cur, old := h.workers()
			return cur != 0 && len(old) == 0
		})
		if d := tickUntilSleep(t).Sub(seen); d < idleFor {
			t.Errorf("slept %s after the stream was last seen, want at least %s", d, idleFor)
		}
	})
}

func TestRealHAProxySources(t *testing.T) {
	instance := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h := startHAProxy(t, instance, instance)
	for name, stats := range map[string]StatsFunc{
		"http":   HTTPStats("http://" + h.stats + "/stats;csv"),
		"socket": SocketStats(h.admin),
		"master": MasterStats(h.master),
	} {
		t.Run(name, func(t *testing.T) {
			r := backendRow(t, stats)
			if r.Dumps != 1 || r.Status != "UP" {
				t.Errorf("app_app1: %+v", r)
			}
		})
	}
	t.Run("missing socket", func(t *testing.T) {
		if _, err := MasterStats(filepath.Join(t.TempDir(), "none.sock"))(context.Background()); err == nil {
			t.Error("no error")
		}
	})
}
