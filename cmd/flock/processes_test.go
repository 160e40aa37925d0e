package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestProcessTypes: a Procfile's worker runs beside the web process,
// unrouted; it shows in flock apps, logs into flock logs, is scaled with
// `flock scale APP worker=N` (a plain N stays the web process), sleeps and
// wakes with the app, and a release without the line stops it.
func TestProcessTypes(t *testing.T) {
	f := newFlock(t)
	f.start()
	dir := t.TempDir()
	files := map[string]string{
		"package.json": `{"name":"jobs","version":"1.0.0","flock":{"stableSeconds":0}}`,
		"Procfile":     "web: node server.js\nworker: node worker.js\n",
		"server.js":    `require("http").createServer((q, r) => r.end("web " + process.env.FLOCK_RELEASE)).listen(+process.env.PORT, process.env.HOST);`,
		"worker.js":    `console.log("worker started, PORT=" + (process.env.PORT || "none")); setInterval(() => console.log("worker tick"), 200);`,
	}
	writeFiles(t, dir, files)
	f.mustCLI("deploy", dir)
	worker := func() deploy.Process {
		for _, p := range f.apps()["jobs"].Processes {
			if p.Type == "worker" {
				return p
			}
		}
		return deploy.Process{}
	}
	running := func(want int) func() bool {
		return func() bool {
			p := worker()
			healthy := 0
			for _, in := range p.Instances {
				if in.Healthy {
					healthy++
				}
			}
			return p.Desired == want && healthy == want && len(p.Instances) == want
		}
	}
	testkit.WaitFor(t, 20*time.Second, "1 worker running", running(1))
	workers := 0
	for _, pid := range f.appProcs("jobs") {
		if procEnv(pid, "FLOCK_PROCESS") == "worker" {
			workers++
		}
	}
	if workers == 0 {
		t.Errorf("no process runs with FLOCK_APP=jobs FLOCK_PROCESS=worker")
	}
	if code, body := f.getPath("jobs.localhost", "/"); code != 200 || body != "web v1" {
		t.Errorf("jobs through HAProxy: %d %q, want the web process", code, body)
	}
	testkit.WaitFor(t, 10*time.Second, "the worker's output in flock logs", func() bool {
		out, _ := f.cli("logs", "jobs")
		return strings.Contains(out, "worker started, PORT=none") && strings.Contains(out, "worker tick")
	})
	if out := f.mustCLI("apps"); !strings.Contains(out, "worker:1/1") {
		t.Errorf("flock apps does not show the worker:\n%s", out)
	}

	f.mustCLI("scale", "jobs", "worker=2")
	testkit.WaitFor(t, 20*time.Second, "2 workers", running(2))
	if a := f.apps()["jobs"]; a.Desired != 1 {
		t.Errorf("scaling the worker changed web to %d", a.Desired)
	}
	if out, err := f.cli("scale", "jobs", "clock=1"); err == nil || !strings.Contains(out, `no process type "clock"`) {
		t.Errorf("scale of a type the Procfile lacks: %v\n%s", err, out)
	}

	f.mustCLI("sleep", "jobs")
	testkit.WaitFor(t, 20*time.Second, "the workers asleep with the app", func() bool { return len(worker().Instances) == 0 })
	f.mustCLI("wake", "jobs")
	testkit.WaitFor(t, 20*time.Second, "2 workers after the wake", running(2))

	files["Procfile"] = "web: node server.js\n"
	writeFiles(t, dir, files)
	f.mustCLI("deploy", dir)
	if p := f.apps()["jobs"].Processes; len(p) != 0 {
		t.Errorf("processes after a release without the worker: %+v", p)
	}
	testkit.WaitFor(t, 20*time.Second, "no worker process left", func() bool {
		for _, pid := range f.appProcs("jobs") {
			if procEnv(pid, "FLOCK_PROCESS") == "worker" {
				return false
			}
		}
		return true
	})
	if out, err := f.cli("deploy", "--app", "bad--name", dir); err == nil || !strings.Contains(out, "process types") {
		t.Errorf("an app name with -- was accepted: %v\n%s", err, out)
	}
}
