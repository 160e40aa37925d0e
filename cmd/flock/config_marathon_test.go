package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestMarathonConfigVars: on the Marathon scheduler a config change
// reaches Marathon's app definition (env) and the tasks it starts, and an
// added domain routes to them.
func TestMarathonConfigVars(t *testing.T) {
	srv := marathontest.New(marathontest.Options{RunTasks: true})
	t.Cleanup(srv.Close)
	f := newFlock(t, "--scheduler", "marathon", "--marathon-url", srv.URL)
	f.start()
	f.mustCLI("create", "envapp")
	f.mustCLI("config", "set", "envapp", "GREETING=before")
	f.mustCLI("deploy", "--app", "envapp", copyEnvApp(t))
	testkit.WaitFor(t, 20*time.Second, "envapp serving its config", func() bool {
		c, b := f.getPath("envapp.localhost", "/GREETING")
		return c == 200 && b == "before"
	})
	out := f.mustCLI("config", "set", "envapp", "GREETING=on-marathon")
	if !strings.Contains(out, "v2 is live") {
		t.Errorf("config set said:\n%s", out)
	}
	app := srv.App("/flock/envapp/web")
	env, _ := app["env"].(map[string]any)
	if env["GREETING"] != "on-marathon" || env["COLOR"] != "blue" {
		t.Errorf("Marathon's app definition env: %v", env)
	}
	testkit.WaitFor(t, 20*time.Second, "the new value served", func() bool {
		c, b := f.getPath("envapp.localhost", "/GREETING")
		return c == 200 && b == "on-marathon"
	})
	f.mustCLI("domains", "add", "envapp", "www.example.test")
	testkit.WaitFor(t, 20*time.Second, "the added domain routed", func() bool {
		c, b := f.getPath("www.example.test", "/COLOR")
		return c == 200 && b == "blue"
	})
}
