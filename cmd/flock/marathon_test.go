package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestMarathonScheduler: `flock up --scheduler marathon` against a recorded
// Marathon that runs real tasks deploys, routes, configures, sleeps, wakes,
// follows the logs of, and destroys an app with a worker, as the embedded
// scheduler does. The web process and the worker are two Marathon apps in
// the app's group (/flock/hello/web, /flock/hello/worker).
func TestMarathonScheduler(t *testing.T) {
	srv := marathontest.New(marathontest.Options{RunTasks: true})
	t.Cleanup(srv.Close)
	f := newFlock(t, "--scheduler", "marathon", "--marathon-url", srv.URL, "--mesos-agent-port", strconv.Itoa(srv.Agent().Port))
	f.start()
	dir := copyExample(t, "hello")
	writeFiles(t, dir, map[string]string{
		"Procfile": "web: node server.js\nworker: node worker.js\n",
		"server.js": `const port = Number(process.env.PORT);
require("http").createServer((q, r) => r.end("Hello from Flock GREETING=" + (process.env.GREETING || "unset") + "\\n"))
  .listen(port, () => console.log("hello listening on port " + port));
process.on("SIGTERM", () => process.exit(0));`,
		"worker.js": `console.log("worker started, GREETING=" + (process.env.GREETING || "unset"));
setInterval(() => {}, 1000);`,
	})

	out := f.mustCLI("deploy", dir)
	if !strings.Contains(out, "http://hello.localhost:") {
		t.Errorf("deploy output:\n%s", out)
	}
	if ids := srv.AppsIn("/flock/hello"); strings.Join(ids, " ") != "/flock/hello/web /flock/hello/worker" {
		t.Fatalf("Marathon apps in /flock/hello after deploy: %v, want web and worker", ids)
	}
	testkit.WaitFor(t, 20*time.Second, "hello routed through HAProxy", func() bool {
		code, body, _ := f.get("hello.localhost")
		return code == 200 && strings.Contains(body, "Hello from Flock GREETING=unset")
	})
	testkit.WaitFor(t, 20*time.Second, "the worker running on Marathon", workerRunning(f, srv, 1))

	// A config var reaches both processes: Marathon's definitions and the
	// tasks they run.
	f.mustCLI("config", "set", "hello", "GREETING=from-config")
	for _, id := range []string{"/flock/hello/web", "/flock/hello/worker"} {
		if env, _ := srv.App(id)["env"].(map[string]any); env["GREETING"] != "from-config" {
			t.Errorf("%s env after config set: %v", id, env)
		}
	}
	testkit.WaitFor(t, 20*time.Second, "the web process answering with the config var", func() bool {
		code, body, _ := f.get("hello.localhost")
		return code == 200 && strings.Contains(body, "GREETING=from-config")
	})

	// flock logs reads the tasks' sandboxes from their Mesos agents: the
	// web task's and the worker's.
	testkit.WaitFor(t, 20*time.Second, "both processes' output in flock logs", func() bool {
		out, _ := f.cli("logs", "hello")
		return strings.Count(out, " listening on port ") == 1 && strings.Count(out, "worker started, GREETING=from-config") == 1
	})
	follow := f.follow("logs", "hello", "--follow")
	// The follower has read the running tasks before they go to sleep.
	testkit.WaitFor(t, 20*time.Second, "flock logs --follow showing the running tasks", func() bool {
		out := follow.String()
		return strings.Contains(out, " listening on port ") && strings.Contains(out, "worker started, GREETING=from-config")
	})

	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 20*time.Second, "no task left", func() bool {
		return len(f.apps()["hello"].Instances) == 0 && workerRunning(f, srv, 0)()
	})
	code, body, h := f.get("hello.localhost")
	if code != 200 || h.Get("X-Flock-Cold-Start") == "" || !strings.Contains(body, "GREETING=from-config") {
		t.Errorf("request to the sleeping app: %d %q cold-start %q", code, body, h.Get("X-Flock-Cold-Start"))
	}
	testkit.WaitFor(t, 20*time.Second, "the worker woken with the app", workerRunning(f, srv, 1))

	// The follower saw the tasks the wake started, from their first line.
	testkit.WaitFor(t, 20*time.Second, "the woken tasks' output in flock logs --follow", func() bool {
		out := follow.String()
		return strings.Count(out, " listening on port ") == 2 && strings.Count(out, "worker started, GREETING=from-config") == 2
	})

	f.mustCLI("destroy", "hello")
	testkit.WaitFor(t, 20*time.Second, "404 after destroy", func() bool { c, _, _ := f.get("hello.localhost"); return c == 404 })
	if ids := srv.AppsIn("/flock"); len(ids) != 0 {
		t.Errorf("Marathon still has %v after destroy", ids)
	}
}

// workerRunning reports whether hello's worker has n instances: in flock
// apps (all healthy) and in Marathon (its own app, n running tasks).
func workerRunning(f *flock, srv *marathontest.Server, n int) func() bool {
	return func() bool {
		for _, p := range f.apps()["hello"].Processes {
			if p.Type != "worker" || len(p.Instances) != n {
				continue
			}
			for _, in := range p.Instances {
				if !in.Healthy {
					return false
				}
			}
			running := 0
			for _, task := range srv.Tasks("/flock/hello/worker") {
				if task.(map[string]any)["state"] == "TASK_RUNNING" {
					running++
				}
			}
			app := srv.App("/flock/hello/worker")
			return app != nil && app["instances"] == float64(n) && running == n
		}
		return false
	}
}

// follow runs a client command that does not end by itself (logs
// --follow) until the test ends, and returns its output so far.
func (f *flock) follow(args ...string) *testkit.Buffer {
	f.t.Helper()
	full := append([]string{"--api-url", "http://" + f.api, "--data-dir", f.dataDir}, args...)
	out := &testkit.Buffer{}
	cmd := exec.Command(flockBin, full...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}
