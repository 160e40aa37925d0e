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
	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
)

func TestLogsRecentAndFollow(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	in := instances(t, s, "web")[0]
	get(in.Port, "/say?msg=first+line")
	testkit.WaitFor(t, 5*time.Second, "the first line in the logs", func() bool {
		var b testkit.Buffer
		s.Logs(ctx, "web", false, &b)
		return strings.Contains(b.String(), in.ID+" first line\n")
	})
	if b, err := os.ReadFile(filepath.Join(s.appDir("web"), "instances", in.ID, "output.log")); err != nil ||
		!strings.Contains(string(b), "first line\n") {
		t.Errorf("instance output.log: %q, %v", b, err)
	}

	fctx, cancel := context.WithCancel(ctx)
	var b testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- s.Logs(fctx, "web", true, &b) }()
	testkit.WaitFor(t, 5*time.Second, "the recent lines", func() bool { return strings.Contains(b.String(), "first line") })
	get(in.Port, "/say?msg=second+line")
	testkit.WaitFor(t, 5*time.Second, "the followed line", func() bool {
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
	var again testkit.Buffer
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
	if !procgroup.Alive(sleeper.Process.Pid) {
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
