package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
)

func TestDeployRunsHealthyInstancesWithTheirEnvironment(t *testing.T) {
	s := startScheduler(t, nil)
	spec := appSpec("web", "v1", 2)
	spec.Descriptor.Ports = 2
	spec.SlugPath = makeSlug(t, map[string]string{"Procfile": "web: ./server\n"})
	var log testkit.Buffer
	if err := s.Deploy(context.Background(), spec, &log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, log.String())
	}
	list := instances(t, s, "web")
	if len(list) != 2 {
		t.Fatalf("got %d instances, want 2: %+v", len(list), list)
	}
	seen := map[int]bool{}
	for _, in := range list {
		if !in.Healthy || in.Release != "v1" || in.Host != "127.0.0.1" || len(in.Ports) != 2 || in.Port != in.Ports[0] {
			t.Errorf("instance %+v: want healthy v1 on 127.0.0.1 with 2 ports", in)
		}
		for _, p := range in.Ports {
			if seen[p] {
				t.Errorf("port %d given twice", p)
			}
			seen[p] = true
		}
		body, err := get(in.Port, "/")
		if err != nil || body != "hello from "+in.ID {
			t.Errorf("GET / on %d = %q, %v", in.Port, body, err)
		}
		got := info(t, in.Port)
		want := map[string]string{
			"PORT": strconv.Itoa(in.Ports[0]), "PORT0": strconv.Itoa(in.Ports[0]), "PORT1": strconv.Itoa(in.Ports[1]),
			"HOST": "127.0.0.1", "FLOCK_APP": "web", "FLOCK_RELEASE": "v1", "FLOCK_INSTANCE": in.ID, "GREETING": "hi there",
		}
		for k, v := range want {
			if got.Env[k] != v {
				t.Errorf("%s: env %s = %q, want %q", in.ID, k, got.Env[k], v)
			}
		}
		if got.Env["PATH"] == "" || !strings.HasPrefix(got.Env["TMPDIR"], s.cfg.Dir) {
			t.Errorf("%s: PATH %q, TMPDIR %q", in.ID, got.Env["PATH"], got.Env["TMPDIR"])
		}
		if b, err := os.ReadFile(filepath.Join(got.Cwd, "Procfile")); err != nil || string(b) != "web: ./server\n" {
			t.Errorf("%s: cwd %s does not hold the unpacked slug: %v", in.ID, got.Cwd, err)
		}
	}
	if !strings.Contains(log.String(), "v1: live with 2 instance(s)") {
		t.Errorf("deploy log lacks the outcome:\n%s", log.String())
	}
}

func TestNewReleaseReplacesOldOnlyWhenHealthy(t *testing.T) {
	var drained atomic.Bool
	var s *Scheduler
	var mu sync.Mutex
	var atDrain [][]deploy.Instance
	s = startScheduler(t, func(c *Config) {
		c.Drainer = deploy.DrainFunc(func(ctx context.Context, app string, in deploy.Instance) error {
			drained.Store(true)
			list, _ := s.Instances(ctx, app)
			mu.Lock()
			atDrain = append(atDrain, list)
			mu.Unlock()
			return nil
		})
	})
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 2), nil); err != nil {
		t.Fatal(err)
	}
	old := instances(t, s, "web")

	// Requests to the old instances must all succeed until they are drained.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	hammered := make(chan struct{})
	go func() {
		defer close(hammered)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			port := old[i%2].Port
			_, err := get(port, "/")
			if drained.Load() {
				return
			}
			if err != nil {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
		}
	}()
	// The hammer is under way before the rollout (it could otherwise get
	// its first answer only after the 300 ms boot, on a busy machine).
	testkit.WaitFor(t, 10*time.Second, "a request answered by the old release", func() bool { return ok.Load() > 0 })
	err := s.Deploy(ctx, appSpec("web", "v2", 2, "APP_BOOT", "300ms"), nil)
	close(stop)
	<-hammered
	if err != nil {
		t.Fatal(err)
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("old release during the rollout: %d requests failed, %d succeeded", failed.Load(), ok.Load())
	}
	mu.Lock()
	if len(atDrain) != 2 {
		t.Errorf("drainer called %d times, want 2", len(atDrain))
	}
	for _, list := range atDrain {
		healthy := 0
		for _, in := range list {
			if in.Release == "v2" && in.Healthy {
				healthy++
			}
		}
		if healthy != 2 {
			t.Errorf("an old instance was drained while %d of 2 new ones were healthy: %+v", healthy, list)
		}
	}
	mu.Unlock()
	for _, in := range instances(t, s, "web") {
		if in.Release != "v2" || !in.Healthy {
			t.Errorf("after the rollout: %+v", in)
		}
	}
	for _, in := range old {
		if _, err := get(in.Port, "/"); err == nil {
			t.Errorf("old instance %s still answers", in.ID)
		}
	}
	if _, err := os.Stat(filepath.Join(s.appDir("web"), "releases", "v1")); !os.IsNotExist(err) {
		t.Errorf("v1's unpacked release was not removed: %v", err)
	}
}

func TestFailingReleaseLeavesOldOneServing(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		cause []string
	}{
		{name: "crashes at once", env: []string{"APP_MODE", "crash"},
			cause: []string{"exited with status 1 before passing its check", "fatal: cannot reach the database"}},
		{name: "never healthy", env: []string{"APP_MODE", "never"},
			cause: []string{"did not pass its check within 2s", "status 503", "listening on 1 port(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScheduler(t, nil)
			ctx := context.Background()
			if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
				t.Fatal(err)
			}
			old := instances(t, s, "web")
			bad := appSpec("web", "v2", 2, tt.env...)
			bad.Descriptor.Checks[0].GracePeriodSeconds = 1
			var log testkit.Buffer
			err := s.Deploy(ctx, bad, &log)
			if !errors.Is(err, deploy.ErrUnhealthy) {
				t.Fatalf("Deploy = %v, want ErrUnhealthy", err)
			}
			// The Service names the release around the error ("roll out web v2: ..."), the log line names it here.
			for _, c := range tt.cause {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not say %q", err, c)
				}
			}
			if !strings.Contains(log.String(), "the running release keeps serving") || !strings.Contains(log.String(), "v2: instances never became healthy") {
				t.Errorf("deploy log:\n%s", log.String())
			}
			if diff := cmp.Diff(old, instances(t, s, "web")); diff != "" {
				t.Errorf("instances changed (-before +after):\n%s", diff)
			}
			if _, err := get(old[0].Port, "/"); err != nil {
				t.Errorf("old release stopped answering: %v", err)
			}
			// Scaling still applies to the release that serves.
			if err := s.Scale(ctx, "web", 2); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 10*time.Second, "2 healthy v1 instances", func() bool {
				n := 0
				for _, in := range instances(t, s, "web") {
					if in.Release == "v1" && in.Healthy {
						n++
					}
				}
				return n == 2
			})
		})
	}
}

func TestCrashedInstanceIsRestarted(t *testing.T) {
	s := startScheduler(t, nil)
	if err := s.Deploy(context.Background(), appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	before := instances(t, s, "web")[0]
	pid := info(t, before.Port).Pid
	get(before.Port, "/exit") // the app dies answering; the error is expected
	testkit.WaitFor(t, 10*time.Second, "the instance to come back", func() bool {
		list := instances(t, s, "web")
		return len(list) == 1 && list[0].Healthy && list[0].StartedAt.After(before.StartedAt)
	})
	after := instances(t, s, "web")[0]
	if after.ID != before.ID {
		t.Errorf("restart changed the instance id: %s → %s", before.ID, after.ID)
	}
	if got := info(t, after.Port).Pid; got == pid {
		t.Errorf("same pid %d after the restart", got)
	}
	var logs testkit.Buffer
	if err := s.Logs(context.Background(), "web", false, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), before.ID+" [flock] instance "+before.ID+" exited with status 3") {
		t.Errorf("logs do not tell about the crash:\n%s", logs.String())
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	s := startScheduler(t, func(c *Config) { c.StopGrace = 300 * time.Millisecond })
	if err := s.Deploy(context.Background(), appSpec("web", "v1", 1, "APP_MODE", "ignore-term"), nil); err != nil {
		t.Fatal(err)
	}
	pid := info(t, instances(t, s, "web")[0].Port).Pid
	start := time.Now()
	if err := s.Scale(context.Background(), "web", 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("stopped after %s, before the grace period ended", took)
	}
	if procgroup.Alive(pid) {
		t.Errorf("pid %d survives", pid)
	}
	var logs testkit.Buffer
	s.Logs(context.Background(), "web", false, &logs)
	for _, want := range []string{"got SIGTERM, ignoring it", "stopped with SIGKILL after 300ms"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// TestRemoveForgetsTheApp: beyond the contract (schedtest's Remove),
// the app's folder (releases, sandboxes, app.log) goes, and so do its logs.
func TestRemoveForgetsTheApp(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.appDir("web")); !os.IsNotExist(err) {
		t.Errorf("app folder left: %v", err)
	}
	if err := s.Logs(ctx, "web", false, &testkit.Buffer{}); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Logs after Remove = %v, want ErrNotFound", err)
	}
}

func TestChangesReportEveryApp(t *testing.T) {
	s := startScheduler(t, nil)
	for i := 0; i < 1000; i++ { // nobody reads: must not block
		s.notify("a")
		s.notify("b")
	}
	s.notify("c")
	seen := map[string]bool{}
	testkit.WaitFor(t, 5*time.Second, "a, b and c", func() bool {
		for {
			select {
			case name := <-s.Changes():
				seen[name] = true
				continue
			default:
			}
			return seen["a"] && seen["b"] && seen["c"]
		}
	})
	if err := s.Deploy(context.Background(), appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "a change of web", func() bool {
		select {
		case name := <-s.Changes():
			return name == "web"
		default:
			return false
		}
	})
}
