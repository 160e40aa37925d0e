package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

func TestLogsRecentAndFollow(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	in := instances(t, s, "web")[0]
	get(in.Port, "/say?msg=first+line")
	waitFor(t, 5*time.Second, "the first line in the logs", func() bool {
		var b syncBuffer
		s.Logs(ctx, "web", false, &b)
		return strings.Contains(b.String(), in.ID+" first line\n")
	})
	if b, err := os.ReadFile(filepath.Join(s.appDir("web"), "instances", in.ID, "output.log")); err != nil ||
		!strings.Contains(string(b), "first line\n") {
		t.Errorf("instance output.log: %q, %v", b, err)
	}

	fctx, cancel := context.WithCancel(ctx)
	var b syncBuffer
	done := make(chan error, 1)
	go func() { done <- s.Logs(fctx, "web", true, &b) }()
	waitFor(t, 5*time.Second, "the recent lines", func() bool { return strings.Contains(b.String(), "first line") })
	get(in.Port, "/say?msg=second+line")
	waitFor(t, 5*time.Second, "the followed line", func() bool {
		return strings.Contains(b.String(), in.ID+" second line\n")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Logs did not return when its context ended")
	}

	// The recent lines survive a restart of the scheduler (read from app.log).
	s2, err := New(Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s2.cfg.Dir = s.cfg.Dir
	var again syncBuffer
	if err := s2.Logs(ctx, "web", false, &again); err != nil || !strings.Contains(again.String(), in.ID+" second line") {
		t.Errorf("Logs from disk = %v:\n%s", err, again.String())
	}
	if err := s.Logs(ctx, "nope", false, &again); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Logs of an unknown app = %v, want ErrNotFound", err)
	}
}

func TestReapSparesProcessesWithoutTheMarker(t *testing.T) {
	dir := t.TempDir()
	sleeper := exec.Command("sleep", "30")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	state := `{"instances":[{"id":"web.v1.abcdef","app":"web","pgid":` + strconv.Itoa(sleeper.Process.Pid) + `}]}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: dir, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	if !alive(sleeper.Process.Pid) {
		t.Error("a process without the instance's marker was killed")
	}
}

func TestValidateRejectsHostileSpecs(t *testing.T) {
	good := appSpec("web", "v1", 1)
	tests := []struct {
		name string
		edit func(*deploy.Spec)
	}{
		{"app name with a slash", func(s *deploy.Spec) { s.App = "../etc" }},
		{"upper-case app", func(s *deploy.Spec) { s.App = "Web" }},
		{"release escaping", func(s *deploy.Spec) { s.Release = "../v1" }},
		{"release with dots", func(s *deploy.Spec) { s.Release = "v1..2" }},
		{"empty command", func(s *deploy.Spec) { s.Command = " " }},
		{"env key with =", func(s *deploy.Spec) { s.Env = map[string]string{"A=B": "c"} }},
		{"env value with NUL", func(s *deploy.Spec) { s.Env = map[string]string{"A": "b\x00c"} }},
		{"negative instances", func(s *deploy.Spec) { s.Instances = -1 }},
		{"check path without slash", func(s *deploy.Spec) { s.Descriptor.Checks[0].Path = "health" }},
		{"check path with a host", func(s *deploy.Spec) { s.Descriptor.Checks[0].Path = "//evil.example/" }},
		{"check port out of range", func(s *deploy.Spec) { s.Descriptor.Checks[0].PortIndex = 3 }},
	}
	s := startScheduler(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good
			spec.Env = map[string]string{}
			for k, v := range good.Env {
				spec.Env[k] = v
			}
			spec.Descriptor.Checks = append([]deploy.Check(nil), good.Descriptor.Checks...)
			tt.edit(&spec)
			if err := s.Deploy(context.Background(), spec, nil); !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("Deploy = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestChecksDefaults(t *testing.T) {
	got, err := checksOf(deploy.Descriptor{Ports: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := check{interval: 10 * time.Second, timeout: 5 * time.Second, grace: 30 * time.Second, maxFailures: 3}
	if len(got) != 1 || got[0] != want {
		t.Errorf("default check = %+v, want %+v", got, want)
	}
	if d := fastProbe(0); d != 5*time.Millisecond {
		t.Errorf("first probe pause %s", d)
	}
	if d := fastProbe(time.Hour); d != 50*time.Millisecond {
		t.Errorf("longest probe pause %s", d)
	}
}

// TestCgroupsOnAFakeHierarchy exercises the cgroup v2 set-up on a folder
// laid out like /sys/fs/cgroup (the real one is read-only or v1 on most
// test machines).
func TestCgroupsOnAFakeHierarchy(t *testing.T) {
	root := t.TempDir()
	self := filepath.Join(t.TempDir(), "cgroup")
	write := func(path, v string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(self, "0::/flock.service\n")
	write(filepath.Join(root, "cgroup.controllers"), "cpu io memory pids\n")
	write(filepath.Join(root, "flock.service", "cgroup.subtree_control"), "memory\n")
	cg, err := detectCgroups(root, self, "/data")
	if err != nil {
		// The per-Dir parent's subtree_control does not exist in a plain folder:
		// create it as the kernel would and try again.
		parents, _ := filepath.Glob(filepath.Join(root, "flock.service", "flock-*"))
		if len(parents) != 1 {
			t.Fatalf("detect: %v", err)
		}
		write(filepath.Join(parents[0], "cgroup.subtree_control"), "")
		if cg, err = detectCgroups(root, self, "/data"); err != nil {
			t.Fatal(err)
		}
	}
	if !cg.enabled() {
		t.Fatal("cgroups not enabled")
	}
	inst := filepath.Join(cg.parent, "web.v1.abcdef")
	write(filepath.Join(inst, "memory.max"), "")
	path, f, err := cg.create("web.v1.abcdef", 32)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(filepath.Join(path, "memory.max")); string(b) != "33554432" {
		t.Errorf("memory.max = %q, want 32 MiB", b)
	}
	if _, err := detectCgroups(t.TempDir(), self, "/data"); err == nil {
		t.Error("a folder without cgroup.controllers passed as cgroup v2")
	}
}

func TestMemoryNotEnforcedWithoutCgroupV2(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		t.Skip("this host has cgroup v2; nothing to check")
	}
	s := startScheduler(t, nil)
	if s.MemoryEnforced() {
		t.Error("MemoryEnforced without cgroup v2")
	}
	if err := s.Deploy(context.Background(), appSpec("web", "v1", 1), nil); err != nil {
		t.Fatalf("deploy without cgroups: %v", err)
	}
}
