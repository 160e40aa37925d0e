package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// copyExample copies an example app into a temp dir, so a test may change it.
func copyExample(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(t), "docs", "examples", name), dst).CombinedOutput()
	if err != nil {
		t.Fatalf("copy example: %v: %s", err, out)
	}
	return dst
}

// TestTour follows the README's tour: deploy, see the app at its URL,
// list, scale, redeploy, roll back, read logs and releases, destroy.
func TestTour(t *testing.T) {
	f := newFlock(t)
	f.start()
	app := copyExample(t, "hello")
	host := "hello.localhost"

	code, body, _ := f.get("nothing.localhost")
	if code != 404 {
		t.Errorf("unknown host: got %d %q, want 404", code, body)
	}

	out := f.mustCLI("deploy", app)
	if !strings.Contains(out, "http://hello.localhost:") {
		t.Errorf("flock deploy does not print the app's URL:\n%s", out)
	}
	code, body, _ = f.get(host)
	if code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Fatalf("GET %s right after deploy: %d %q", host, code, body)
	}
	code, _, _ = f.get("HELLO.localhost:1234")
	if code != 200 {
		t.Errorf("host routing must ignore case and port: got %d", code)
	}

	a := f.apps()["hello"]
	if a.State != "running" || a.Release != "v1" || a.HealthyCount() != a.Desired || a.Desired < 1 {
		t.Errorf("after deploy: %+v", a)
	}
	list := f.mustCLI("apps")
	if !strings.Contains(list, "hello") || !strings.Contains(list, "running") {
		t.Errorf("flock apps:\n%s", list)
	}

	f.mustCLI("scale", "hello", "3")
	testkit.WaitFor(t, 20*time.Second, "3 healthy instances", func() bool { return f.apps()["hello"].HealthyCount() == 3 })

	// A new release, then a rollback that runs v1's slug again.
	if err := os.WriteFile(filepath.Join(app, "VERSION"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.mustCLI("deploy", app)
	a = f.apps()["hello"]
	if a.Release != "v2" || a.Desired != 3 {
		t.Errorf("after redeploy: release %s desired %d, want v2 with 3 (the scale carries over)", a.Release, a.Desired)
	}
	out = f.mustCLI("rollback", "hello", "v1")
	if !strings.Contains(out, "no build") {
		t.Errorf("rollback log:\n%s", out)
	}
	if a = f.apps()["hello"]; a.Release != "v3" {
		t.Errorf("after rollback: release %s, want v3", a.Release)
	}
	rels := f.mustCLI("releases", "hello")
	if !strings.Contains(rels, "rollback to v1") || strings.Count(rels, "succeeded") != 3 {
		t.Errorf("flock releases:\n%s", rels)
	}
	if code, _, _ = f.get(host); code != 200 {
		t.Errorf("after rollback: %d", code)
	}

	logs := f.mustCLI("logs", "hello")
	if strings.TrimSpace(logs) == "" {
		t.Errorf("flock logs printed nothing")
	}

	f.mustCLI("destroy", "hello")
	testkit.WaitFor(t, 10*time.Second, "404 after destroy", func() bool { c, _, _ := f.get(host); return c == 404 })
	if _, err := f.cli("scale", "hello", "1"); err == nil {
		t.Errorf("scale of a destroyed app succeeded")
	}
}

// TestBadInputKeepsServing: a deploy that cannot work fails with a message
// naming the cause, and the running release keeps answering.
func TestBadInputKeepsServing(t *testing.T) {
	f := newFlock(t)
	f.start()
	app := copyExample(t, "hello")
	f.mustCLI("deploy", app)

	cases := []struct {
		name  string
		edit  func(dir string)
		cause string
	}{
		{"bad descriptor", func(dir string) {
			rewrite(t, filepath.Join(dir, "package.json"), `"instances": 1`, `"instances": -4`)
		}, "flock.instances"},
		{"exits at once", func(dir string) {
			os.WriteFile(filepath.Join(dir, "server.js"), []byte("process.exit(3)\n"), 0o644)
		}, "exit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyExample(t, "hello")
			tc.edit(dir)
			out, err := f.cli("deploy", dir)
			if err == nil {
				t.Fatalf("deploy succeeded:\n%s", out)
			}
			if !strings.Contains(out, tc.cause) {
				t.Errorf("the error does not name the cause %q:\n%s", tc.cause, out)
			}
			if code, body, _ := f.get("hello.localhost"); code != 200 {
				t.Errorf("old release stopped serving: %d %q", code, body)
			}
			if a := f.apps()["hello"]; a.Release != "v1" || a.State != "running" {
				t.Errorf("app after a failed deploy: %s %s", a.Release, a.State)
			}
		})
	}
}

func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestartAfterSIGKILL: a Flock killed with SIGKILL and started again
// brings every app back to its desired instances; a sleeping app stays
// asleep.
func TestRestartAfterSIGKILL(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	f.mustCLI("scale", "hello", "2")
	py := copyExample(t, "python")
	f.mustCLI("deploy", py)
	f.mustCLI("sleep", "hello-python")
	f.kill()

	f.start()
	testkit.WaitFor(t, 30*time.Second, "hello back at 2 healthy instances", func() bool {
		return f.apps()["hello"].HealthyCount() == 2
	})
	if code, body, _ := f.get("hello.localhost"); code != 200 {
		t.Errorf("after restart: %d %q", code, body)
	}
	if a := f.apps()["hello-python"]; a.State != "sleeping" || len(a.Instances) != 0 {
		t.Errorf("python after restart: %s with %d instances, want sleeping with none", a.State, len(a.Instances))
	}
}

// TestSleepAndWake: a sleeping app has no process; its next request wakes
// it and is answered, with the cold start in a header.
func TestSleepAndWake(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 10*time.Second, "no instance", func() bool { return len(f.apps()["hello"].Instances) == 0 })
	if s := f.apps()["hello"].State; s != "sleeping" {
		t.Fatalf("state %s, want sleeping", s)
	}
	code, body, h := f.get("hello.localhost")
	if code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Fatalf("first request to a sleeping app: %d %q", code, body)
	}
	if h.Get("X-Flock-Cold-Start") == "" {
		t.Errorf("no X-Flock-Cold-Start on the woken response: %v", h)
	}
	testkit.WaitFor(t, 10*time.Second, "running again", func() bool { return f.apps()["hello"].State == "running" })
}

// TestIdleAppSleeps: with a short idle time the scaler puts an unused app
// to sleep on its own.
func TestIdleAppSleeps(t *testing.T) {
	f := newFlock(t, "--idle", "2s", "--scale-every", "1s")
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	testkit.WaitFor(t, 30*time.Second, "the idle app asleep", func() bool { return f.apps()["hello"].State == "sleeping" })
	if code, _, _ := f.get("hello.localhost"); code != 200 {
		t.Errorf("wake by request: %d", code)
	}
}
