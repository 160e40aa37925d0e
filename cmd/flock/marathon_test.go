package main

import (
	"strings"
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
	f := newFlock(t, "--scheduler", "marathon", "--marathon-url", srv.URL)
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

	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 20*time.Second, "no task left", func() bool { return len(f.apps()["hello"].Instances) == 0 })
	code, body, h := f.get("hello.localhost")
	if code != 200 || h.Get("X-Flock-Cold-Start") == "" {
		t.Errorf("request to the sleeping app: %d %q cold-start %q", code, body, h.Get("X-Flock-Cold-Start"))
	}

	f.mustCLI("destroy", "hello")
	testkit.WaitFor(t, 20*time.Second, "404 after destroy", func() bool { c, _, _ := f.get("hello.localhost"); return c == 404 })
	if app := srv.App("/flock/hello"); app != nil {
		t.Errorf("Marathon still has /flock/hello after destroy")
	}
}
