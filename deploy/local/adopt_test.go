package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
	"golang.org/x/sys/unix"
)

// killedFlock runs a Flock (the test binary as "parent") that deploys the
// app "leftover" on dir, then kills it with SIGKILL, as a crash would. It
// returns the instance that Flock reported.
func killedFlock(t *testing.T, dir string) deploy.Instance {
	t.Helper()
	// Orphans of the killed parent come to this process instead of PID 1
	// (which may never reap them), so the test can collect them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Logf("no subreaper (%v): killed apps may stay zombies", err)
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FLOCK_TEST_ROLE=parent", "GORACE=atexit_sleep_ms=0", "FLOCK_TEST_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("parent: %v", err)
	}
	var list []deploy.Instance
	if err := json.Unmarshal([]byte(line), &list); err != nil || len(list) != 1 {
		t.Fatalf("parent said %q", line)
	}
	pid := info(t, list[0].Port).Pid
	t.Cleanup(func() {
		// Whatever the test left: the app and its shell, then reap them.
		for _, p := range procgroup.Members(pid, "FLOCK_INSTANCE="+list[0].ID) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		for {
			if p, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); p <= 0 {
				break
			}
		}
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	return list[0]
}

// TestRestartedSchedulerAdoptsInstances: a Flock killed with SIGKILL
// leaves its app serving (and logging: its output does not go through a
// pipe the dead Flock held); a new Scheduler on the same Dir adopts the
// very same process, healthy, with its port, keeps it when the release is
// deployed again, tails its output, and restarts it when it dies.
func TestRestartedSchedulerAdoptsInstances(t *testing.T) {
	dir := t.TempDir()
	was := killedFlock(t, dir)
	pid := info(t, was.Port).Pid
	// While no Flock runs, the app serves and writes output.
	for i := range 20 {
		if _, err := get(was.Port, "/say?msg=while+flock+is+down+"+strconv.Itoa(i)); err != nil {
			t.Fatalf("request %d while Flock is down: %v", i, err)
		}
	}

	s, err := New(Config{Dir: dir, StopGrace: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	list := instances(t, s, "leftover")
	if len(list) != 1 || list[0].ID != was.ID || list[0].Port != was.Port || !list[0].Healthy || !list[0].StartedAt.Equal(was.StartedAt) {
		t.Fatalf("after the restart: %+v, want %+v adopted and healthy", list, was)
	}
	if got := info(t, was.Port).Pid; got != pid {
		t.Errorf("app pid %d after the restart, want %d (adopted, not restarted)", got, pid)
	}
	testkit.WaitFor(t, 5*time.Second, "the lines written while Flock was down in the logs", func() bool {
		var b testkit.Buffer
		s.Logs(ctx, "leftover", false, &b)
		return strings.Count(b.String(), " while flock is down ") == 20
	})
	get(was.Port, "/say?msg=after+the+adoption")
	testkit.WaitFor(t, 5*time.Second, "new output in the logs", func() bool {
		var b testkit.Buffer
		s.Logs(ctx, "leftover", false, &b)
		return strings.Contains(b.String(), was.ID+" after the adoption\n") && strings.Count(b.String(), " while flock is down ") == 20
	})

	// Deploying the same release again (the service's reconcile) keeps it.
	if err := s.Deploy(ctx, parentSpec(), nil); err != nil {
		t.Fatal(err)
	}
	if list := instances(t, s, "leftover"); len(list) != 1 || list[0].ID != was.ID || info(t, was.Port).Pid != pid {
		t.Fatalf("after the reconcile: %+v", list)
	}

	// An adopted instance that dies is restarted, as any other.
	get(was.Port, "/exit")
	testkit.WaitFor(t, 10*time.Second, "the adopted instance restarted", func() bool {
		list := instances(t, s, "leftover")
		if len(list) != 1 || list[0].ID != was.ID || !list[0].Healthy {
			return false
		}
		body, err := get(list[0].Port, "/info")
		return err == nil && !strings.Contains(body, `"pid":`+strconv.Itoa(pid)+`,`)
	})

	// Stopping the scheduler stops adopted instances too.
	now := info(t, instances(t, s, "leftover")[0].Port).Pid
	cancel()
	<-done
	done <- nil
	if procgroup.Alive(now) {
		t.Errorf("pid %d survives Run", now)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("state file left after Run: %v", err)
	}
}

// TestInstanceDeadWhileFlockWasDownIsReplaced: an instance whose process
// died while no Flock ran is not adopted; deploying its release starts a
// new one.
func TestInstanceDeadWhileFlockWasDownIsReplaced(t *testing.T) {
	dir := t.TempDir()
	was := killedFlock(t, dir)
	get(was.Port, "/exit")
	testkit.WaitFor(t, 5*time.Second, "the app and its shell gone", func() bool { return len(marked("FLOCK_INSTANCE="+was.ID)) == 0 })
	s := startSchedulerOn(t, dir)
	if list := instances(t, s, "leftover"); len(list) != 0 {
		t.Fatalf("a dead instance was adopted: %+v", list)
	}
	if _, err := os.Stat(filepath.Join(s.appDir("leftover"), "instances", was.ID)); !os.IsNotExist(err) {
		t.Errorf("the dead instance's sandbox is left: %v", err)
	}
	if err := s.Deploy(context.Background(), parentSpec(), nil); err != nil {
		t.Fatal(err)
	}
	if list := instances(t, s, "leftover"); len(list) != 1 || list[0].ID == was.ID || !list[0].Healthy {
		t.Errorf("after the deploy: %+v", list)
	}
}

// TestAdoptionGuardsAgainstPidReuse: a state entry adopts its process
// only if the pid still names the process it recorded (same boot, same
// start time). A process that took over the pid is neither adopted nor
// killed.
func TestAdoptionGuardsAgainstPidReuse(t *testing.T) {
	sleeper := exec.Command("sleep", "30")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pid := sleeper.Process.Pid
	start := procgroup.StartTime(pid)
	spec := parentSpec()
	spec.Command, spec.Descriptor.Ports = "sleep 30", 0 // no port: judged by staying up
	tests := []struct {
		name  string
		boot  string
		start uint64
		adopt bool
	}{
		{name: "pid reused", boot: procgroup.BootID(), start: start + 1},
		{name: "other boot", boot: "00000000-0000-0000-0000-000000000000", start: start},
		{name: "no start time", boot: procgroup.BootID()},
		{name: "same process", boot: procgroup.BootID(), start: start, adopt: true}, // last: its Run stops it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st := stateFile{Boot: tt.boot, Releases: map[string]deploy.Spec{"leftover/v1": spec}, Instances: []stateEntry{{
				ID: "leftover.v1.abcdef", App: "leftover", Release: "v1", Seq: 1, PGID: pid, Start: tt.start,
				StartedAt: time.Now(), Healthy: true,
			}}}
			b, _ := json.Marshal(st)
			if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := New(Config{Dir: dir, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			list := instances(t, s, "leftover")
			if got := len(list) == 1; got != tt.adopt {
				t.Errorf("adopted = %v, want %v (%+v)", got, tt.adopt, list)
			}
			if !procgroup.Alive(pid) {
				t.Fatal("the process was killed")
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			s.Run(ctx)
			if procgroup.Alive(pid) != !tt.adopt {
				t.Errorf("after Run: alive = %v; an adopted process is stopped with the scheduler, another is not touched", procgroup.Alive(pid))
			}
		})
	}
}

// parentSpec is the release runParent deploys.
func parentSpec() deploy.Spec {
	spec := appSpec("leftover", "v1", 1)
	spec.Command = `"$FLOCK_TEST_BIN" & wait`
	return spec
}

// startSchedulerOn runs a Scheduler on dir until the test ends.
func startSchedulerOn(t *testing.T, dir string) *Scheduler {
	t.Helper()
	s, err := New(Config{Dir: dir, StopGrace: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// marked lists the living processes that carry marker in their environment.
func marked(marker string) []int {
	var out []int
	for _, pid := range procgroup.List() {
		if procgroup.Alive(pid) && slices.Contains(procgroup.Environ(pid), marker) {
			out = append(out, pid)
		}
	}
	return out
}

// TestOutputFileIsKeptSmall: once Flock has read an instance's output.log
// past its limit, it frees what it read; the app goes on appending, and no
// line is lost on the way to the app log.
func TestOutputFileIsKeptSmall(t *testing.T) {
	s := startScheduler(t, nil)
	s.outputMax = 2000
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	in := instances(t, s, "web")[0]
	for i := range 300 {
		if _, err := get(in.Port, fmt.Sprintf("/say?msg=line+%03d+of+a+chatty+app+that+writes+a+lot", i)); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "every line in the app log", func() bool {
		var b testkit.Buffer
		s.Logs(ctx, "web", false, &b)
		return strings.Contains(b.String(), in.ID+" line 299 of a chatty app that writes a lot\n")
	})
	b, err := os.ReadFile(filepath.Join(s.appDir("web"), "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if want := fmt.Sprintf("%s line %03d of a chatty app that writes a lot\n", in.ID, i); strings.Count(string(b), want) != 1 {
			t.Errorf("line %d is in app.log %d times, want once", i, strings.Count(string(b), want))
		}
	}
	st, err := os.Stat(filepath.Join(s.appDir("web"), "instances", in.ID, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The app wrote some 13 kB: what is left on disk (blocks, when holes
	// are punched; bytes, when the file is emptied) is at most the limit
	// and two blocks.
	if used := min(st.Sys().(*syscall.Stat_t).Blocks*512, st.Size()); used > 2000+8192 {
		t.Errorf("output.log uses %d bytes of disk (size %d), want what was read freed past 2000", used, st.Size())
	}
}
