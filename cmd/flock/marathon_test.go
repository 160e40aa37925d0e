package main

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestMarathonScheduler: `flock up --scheduler marathon` against a recorded
// Marathon that runs real tasks deploys, routes, sleeps, wakes and
// destroys an app, as the embedded scheduler does.
func TestMarathonScheduler(t *testing.T) {
	srv := marathontest.New(marathontest.Options{RunTasks: true})
	t.Cleanup(srv.Close)
	f := newFlock(t, "--scheduler", "marathon", "--marathon-url", srv.URL, "--mesos-agent-port", strconv.Itoa(srv.Agent().Port))
	f.start()

	out := f.mustCLI("deploy", copyExample(t, "hello"))
	if !strings.Contains(out, "http://hello.localhost:") {
		t.Errorf("deploy output:\n%s", out)
	}
	if app := srv.App("/flock/hello"); app == nil {
		t.Fatal("no /flock/hello in Marathon after deploy")
	}
	testkit.WaitFor(t, 20*time.Second, "hello routed through HAProxy", func() bool {
		code, body, _ := f.get("hello.localhost")
		return code == 200 && strings.Contains(body, "Hello from Flock")
	})

	// flock logs reads the task's sandbox from its Mesos agent.
	testkit.WaitFor(t, 20*time.Second, "the task's output in flock logs", func() bool {
		out, _ := f.cli("logs", "hello")
		return strings.Count(out, " listening on port ") == 1
	})
	follow := f.follow("logs", "hello", "--follow")

	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 20*time.Second, "no task left", func() bool { return len(f.apps()["hello"].Instances) == 0 })
	code, body, h := f.get("hello.localhost")
	if code != 200 || h.Get("X-Flock-Cold-Start") == "" {
		t.Errorf("request to the sleeping app: %d %q cold-start %q", code, body, h.Get("X-Flock-Cold-Start"))
	}

	// The follower saw the task the wake started, from its first line.
	testkit.WaitFor(t, 20*time.Second, "the woken task's output in flock logs --follow", func() bool {
		return strings.Count(follow.String(), " listening on port ") == 2
	})

	f.mustCLI("destroy", "hello")
	testkit.WaitFor(t, 20*time.Second, "404 after destroy", func() bool { c, _, _ := f.get("hello.localhost"); return c == 404 })
	if app := srv.App("/flock/hello"); app != nil {
		t.Errorf("Marathon still has /flock/hello after destroy")
	}
}

// follow runs a client command that does not end by itself (logs
// --follow) until the test ends, and returns its output so far.
func (f *flock) follow(args ...string) *lockedBuffer {
	f.t.Helper()
	full := append([]string{"--api-url", "http://" + f.api, "--data-dir", f.dataDir}, args...)
	out := &lockedBuffer{}
	cmd := exec.Command(flockBin, full...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}

// lockedBuffer is a bytes.Buffer for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
