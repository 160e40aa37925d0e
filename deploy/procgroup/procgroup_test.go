package procgroup

import (
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestMain doubles as the processes the tests start: with
// PROCGROUP_TEST_ROLE set, the test binary is a shell-like leader that
// starts a child in its group and then behaves as the role says.
func TestMain(m *testing.M) {
	switch os.Getenv("PROCGROUP_TEST_ROLE") {
	case "":
		os.Exit(m.Run())
	case "child":
		child()
	case "leader":
		leader()
	}
}

// leader starts a child in its own group (as `sh -c` starts an app) and
// exits on SIGTERM, or ignores it with PROCGROUP_TEST_STUBBORN=1.
func leader() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "PROCGROUP_TEST_ROLE=child")
	c.Stdout = os.Stdout // the child says when it is ready
	if err := c.Start(); err != nil {
		os.Exit(2)
	}
	for range sig {
		if os.Getenv("PROCGROUP_TEST_STUBBORN") != "1" {
			os.Exit(0)
		}
	}
}

// child ignores SIGTERM as long as its leader is stubborn: only SIGKILL
// to the group ends a stubborn group. It prints its pid once ready.
func child() {
	if os.Getenv("PROCGROUP_TEST_STUBBORN") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	os.Stdout.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	select {}
}

type group struct {
	leader, child int
	done          chan struct{}
}

// startGroup starts a leader with one child through Start.
func startGroup(t *testing.T, stubborn bool) *group {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROCGROUP_TEST_ROLE=leader", "PROCGROUP_TEST_MARK="+t.Name())
	if stubborn {
		cmd.Env = append(cmd.Env, "PROCGROUP_TEST_STUBBORN=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	g := &group{leader: cmd.Process.Pid, done: make(chan struct{})}
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	g.child, err = strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", buf[:n], err)
	}
	go func() {
		cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		Kill(g.leader)
		<-g.done
		WaitGone([]int{g.child}, 5*time.Second)
	})
	return g
}

func TestStartMakesAGroupLeader(t *testing.T) {
	g := startGroup(t, false)
	info, ok := Stat(g.leader)
	if !ok {
		t.Fatal("no /proc entry for the leader")
	}
	if info.PGRP != g.leader || info.PPID != os.Getpid() || info.Start == 0 {
		t.Errorf("leader stat %+v: want its own group %d, parent %d and a start time", info, g.leader, os.Getpid())
	}
	if ci, _ := Stat(g.child); ci.PGRP != g.leader {
		t.Errorf("child's group %d, want the leader's %d", ci.PGRP, g.leader)
	}
	if ParentOf(g.child) != g.leader {
		t.Errorf("ParentOf(child) = %d, want %d", ParentOf(g.child), g.leader)
	}
	if StartTime(g.leader) != info.Start {
		t.Error("StartTime disagrees with Stat")
	}
	if args := Cmdline(g.leader); len(args) != 1 || args[0] != os.Args[0] {
		t.Errorf("Cmdline = %q, want [%q]", args, os.Args[0])
	}
	if GroupGone(g.leader) {
		t.Error("GroupGone of a running group")
	}
}

func TestTerminatePolitely(t *testing.T) {
	g := startGroup(t, false)
	if killed := Terminate(g.leader, g.done, 5*time.Second); killed {
		t.Error("Terminate needed SIGKILL for a group that leaves on SIGTERM")
	}
	testkit.WaitFor(t, 5*time.Second, "the child gone", func() bool { return !Alive(g.child) })
}

func TestTerminateEscalatesToSIGKILL(t *testing.T) {
	g := startGroup(t, true)
	start := time.Now()
	if killed := Terminate(g.leader, g.done, 200*time.Millisecond); !killed {
		t.Error("Terminate did not report the SIGKILL a stubborn group needed")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("SIGKILL after %s, before the grace period", d)
	}
	testkit.WaitFor(t, 5*time.Second, "the stubborn child gone", func() bool { return GroupGone(g.leader) })
}

func TestExitedOfAChildAndOfAStranger(t *testing.T) {
	g := startGroup(t, false)
	if Exited(g.leader, g.done) || Exited(g.child, nil) {
		t.Fatal("Exited of running processes")
	}
	Kill(g.leader)
	if !WaitExited(g.leader, g.done, 5*time.Second) {
		t.Error("WaitExited: the killed leader did not exit")
	}
	// The child is not ours: it becomes a zombie of init, or goes.
	if !WaitExited(g.child, nil, 5*time.Second) {
		t.Error("WaitExited: the killed child (not our child) did not exit")
	}
}

func TestMembersNeedTheMarker(t *testing.T) {
	g := startGroup(t, false)
	got := Members(g.leader, "PROCGROUP_TEST_MARK="+t.Name())
	slices.Sort(got)
	want := []int{g.leader, g.child}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Members = %v, want leader and child %v", got, want)
	}
	if got := Members(g.leader, "PROCGROUP_TEST_MARK=someone-else"); got != nil {
		t.Errorf("Members with a marker nobody carries = %v, want none: a recycled pgid is not ours", got)
	}
	if Members(1, "X=1") != nil || Members(0, "X=1") != nil {
		t.Error("Members of init or of no group")
	}
}

func TestStatOfAGonePid(t *testing.T) {
	g := startGroup(t, false)
	Kill(g.leader)
	<-g.done // reaped: the pid names nothing now
	if _, ok := Stat(g.leader); ok {
		t.Skip("pid reused at once")
	}
	if Alive(g.leader) || StartTime(g.leader) != 0 || ParentOf(g.leader) != 0 || Cmdline(g.leader) != nil {
		t.Error("a gone pid has no state, start, parent or command line")
	}
}

func TestBootID(t *testing.T) {
	if id := BootID(); len(id) != 36 {
		t.Errorf("BootID = %q, want a UUID", id)
	}
}

func TestStartKeepsTheCallersAttributes(t *testing.T) {
	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if cmd.SysProcAttr.Pdeathsig != syscall.SIGKILL || !cmd.SysProcAttr.Setpgid {
		t.Errorf("SysProcAttr %+v: want the caller's Pdeathsig and Setpgid", cmd.SysProcAttr)
	}
}

func TestWatchAStrangerUntilItExits(t *testing.T) {
	g := startGroup(t, false)
	start := StartTime(g.child)
	if _, err := Watch(g.child, func() bool { return StartTime(g.child) == start+1 }); err != ErrExited {
		t.Errorf("Watch of a pid that is no longer the one meant: %v, want ErrExited", err)
	}
	exited, err := Watch(g.child, func() bool { return StartTime(g.child) == start })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		t.Fatal("closed while the child runs")
	case <-time.After(50 * time.Millisecond):
	}
	Kill(g.leader)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed 5s after the child was killed")
	}
}
