package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestDemoDeploysOnce: `make run` (flock up --demo) started again on the
// same data dir leaves the demo at one release; it deploys again only
// when the demo's source changed.
func TestDemoDeploysOnce(t *testing.T) {
	dir := copyExample(t, "hello")
	f := newFlock(t, "--demo", "--demo-dir", dir)
	startAndWaitDemo := func(want string) {
		t.Helper()
		f.start()
		testkit.WaitFor(t, 60*time.Second, "the demo decision: "+want, func() bool { return strings.Contains(f.out.String(), want) })
		testkit.WaitFor(t, 30*time.Second, "the demo serving", func() bool {
			code, body, _ := f.get("hello.localhost")
			return code == 200 && strings.Contains(body, "Hello")
		})
	}
	releases := func() string {
		t.Helper()
		out := f.mustCLI("releases", "hello")
		return out
	}

	startAndWaitDemo("demo app deployed")
	if v := f.apps()["hello"].Version; v != 1 {
		t.Fatalf("first start: hello at version %d, want 1", v)
	}
	f.stop()

	startAndWaitDemo("demo app is up to date")
	if v := f.apps()["hello"].Version; v != 1 {
		t.Fatalf("second start with the same source: hello at version %d, want 1\n%s", v, releases())
	}
	f.stop()

	// A change to the demo's source is deployed at the next start.
	src := filepath.Join(dir, "server.js")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, append(b, []byte("\n// edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	startAndWaitDemo("demo app deployed")
	if v := f.apps()["hello"].Version; v != 2 {
		t.Fatalf("start after an edit: hello at version %d, want 2\n%s", v, releases())
	}
}
