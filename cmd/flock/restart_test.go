package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestKillNineLosesNoRequest: while Flock is killed with SIGKILL (or
// exits on SIGUSR2, for an upgrade) and is started again on the same data
// dir, the app's instances and HAProxy keep serving a steady load (no
// request fails), the new Flock adopts the very same processes (no
// restart, no duplicate), and SIGTERM then stops every app process and
// HAProxy.
func TestKillNineLosesNoRequest(t *testing.T) {
	tests := []struct {
		name string
		down func(t testing.TB, f *flock)
	}{
		{name: "kill -9", down: killNine},
		{name: "SIGUSR2 for an upgrade", down: func(t testing.TB, f *flock) {
			f.cmd.Process.Signal(syscall.SIGUSR2)
			select {
			case <-f.exited:
			case <-time.After(20 * time.Second):
				t.Fatal("flock did not exit on SIGUSR2")
			}
			if code := f.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("flock exited with %d on SIGUSR2, want 0:\n%s", code, f.out.String())
			}
			f.cmd = nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { restartUnderLoad(t, tt.down) })
	}
}

func killNine(_ testing.TB, f *flock) { f.kill() }

// BenchmarkKillNineRestart reports the figure docs/benchmarks.md records:
// requests sent and failed through HAProxy across a kill -9 of Flock and
// its restart (TestKillNineLosesNoRequest asserts 0 failed).
func BenchmarkKillNineRestart(b *testing.B) {
	var sent, failed int64
	for b.Loop() {
		s, f := restartUnderLoad(b, killNine)
		sent, failed = sent+s, failed+f
	}
	b.ReportMetric(float64(sent)/float64(b.N), "requests")
	b.ReportMetric(float64(failed)/float64(b.N), "failed")
}

// restartUnderLoad takes Flock down with down and starts it again under a
// steady load, checks that it adopted the same processes, and returns the
// requests sent and failed.
func restartUnderLoad(t testing.TB, down func(testing.TB, *flock)) (sent, failed int64) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	f.mustCLI("scale", "hello", "2")
	testkit.WaitFor(t, 30*time.Second, "2 healthy instances", func() bool { return f.apps()["hello"].HealthyCount() == 2 })
	ids := instanceIDs(f)
	testkit.WaitFor(t, 10*time.Second, "the processes of those 2 instances only", func() bool {
		return slices.Equal(procInstances(f.appProcs("hello")), ids)
	})
	before := f.appProcs("hello")
	master := f.haproxyPid()
	t.Logf("app processes: %v", describe(before))

	l := startE2ELoad(f.http, "hello.localhost", 4)
	defer l.finish()
	l.await(t, 200)

	down(t, f)
	gone := l.sent.Load()
	l.await(t, 200) // served while no Flock runs
	t.Logf("%d requests while Flock was down", l.sent.Load()-gone)

	f.start()
	testkit.WaitFor(t, 30*time.Second, "hello running with its 2 instances", func() bool {
		a := f.apps()["hello"]
		return a.State == "running" && a.HealthyCount() == 2
	})
	l.await(t, 500) // and after the restart

	sent, failed = l.finish()
	t.Logf("Flock down and restarted under load: %d requests, %d failed", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
	if after := f.appProcs("hello"); !slices.Equal(after, before) {
		t.Errorf("app processes after the restart: %v, want the same as before: %v", describe(after), describe(before))
	}
	if got := instanceIDs(f); !slices.Equal(got, ids) {
		t.Errorf("instances after the restart: %v, want %v (adopted)", got, ids)
	}
	if p := f.haproxyPid(); p != master {
		t.Errorf("haproxy master %d after the restart, want %d (adopted)", p, master)
	}
	if out := f.mustCLI("logs", "hello"); !strings.Contains(out, "adopted after a restart of Flock") {
		t.Errorf("flock logs does not say the instances were adopted:\n%s", out)
	}

	f.stop()
	testkit.WaitFor(t, 10*time.Second, "no app process and no haproxy left after SIGTERM", func() bool {
		return len(f.appProcs("hello")) == 0 && len(f.haproxyProcs()) == 0
	})
	return sent, failed
}

// appProcs lists the living processes (sorted pids) whose environment says
// they run app for this Flock: their TMPDIR is in its data dir (other
// tests on this machine may run an app of the same name).
func (f *flock) appProcs(app string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !procgroup.Alive(pid) {
			continue
		}
		if procEnv(pid, "FLOCK_APP") == app && strings.HasPrefix(procEnv(pid, "TMPDIR"), f.dataDir+"/") {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// haproxyProcs lists the living HAProxy processes (master and workers) on
// this Flock's configuration.
func (f *flock) haproxyProcs() []int {
	var out []int
	for _, pid := range procgroup.List() {
		if procgroup.Alive(pid) && slices.Contains(procgroup.Cmdline(pid), filepath.Join(f.dataDir, "haproxy", "haproxy.cfg")) {
			out = append(out, pid)
		}
	}
	return out
}

// procInstances lists the distinct FLOCK_INSTANCE of pids, sorted.
func procInstances(pids []int) []string {
	var out []string
	for _, pid := range pids {
		if id := procEnv(pid, "FLOCK_INSTANCE"); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// describe names each pid's instance and command, for failure messages.
func describe(pids []int) []string {
	var out []string
	for _, pid := range pids {
		out = append(out, fmt.Sprintf("%d %s %q", pid, procEnv(pid, "FLOCK_INSTANCE"), strings.Join(procgroup.Cmdline(pid), " ")))
	}
	return out
}

func procEnv(pid int, key string) string {
	for _, kv := range procgroup.Environ(pid) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func (f *flock) haproxyPid() int {
	b, err := os.ReadFile(filepath.Join(f.dataDir, "haproxy", "haproxy.pid"))
	if err != nil {
		f.t.Fatalf("haproxy pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func instanceIDs(f *flock) []string {
	var ids []string
	for _, in := range f.apps()["hello"].Instances {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	return ids
}

// e2eLoad is a few clients looping requests through HAProxy.
type e2eLoad struct {
	sent, failed atomic.Int64
	lastErr      atomic.Value
	stop         chan struct{}
	once         sync.Once
	wg           sync.WaitGroup
}

func startE2ELoad(addr, host string, n int) *e2eLoad {
	l := &e2eLoad{stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				l.sent.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.lastErr.Store(time.Now().Format("15:04:05.000") + ": " + err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("%s: status %d: %.100s", time.Now().Format("15:04:05.000"), resp.StatusCode, body))
				}
			}
		}()
	}
	return l
}

// await waits until n more requests were sent.
func (l *e2eLoad) await(t testing.TB, n int64) {
	t.Helper()
	want := l.sent.Load() + n
	testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more requests", n), func() bool { return l.sent.Load() >= want })
}

func (l *e2eLoad) finish() (sent, failed int64) {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.sent.Load(), l.failed.Load()
}
