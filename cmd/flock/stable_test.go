package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployOfAppThatListensThenExits: "deploy succeeded" means the
// release stays up. An app that listens, then crashes 150 ms later (as
// create-next-app's output does without its build) passes its first
// check, so only the stability window catches it: the deploy fails with
// the app's own error line, and the running release keeps serving.
func TestDeployOfAppThatListensThenExits(t *testing.T) {
	f := newFlock(t)
	f.start()
	dir := copyExample(t, "hello")
	f.mustCLI("deploy", dir)

	server := filepath.Join(dir, "server.js")
	src, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	flap := string(src) + "\nsetTimeout(() => { throw new Error('boom: missing DATABASE_URL'); }, 150);\n"
	if err := os.WriteFile(server, []byte(flap), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := f.cli("deploy", dir)
	if err == nil {
		t.Fatalf("deploy of an app that exits 150 ms after it listens succeeded:\n%s", out)
	}
	for _, want := range []string{"after passing its check", "Error: boom: missing DATABASE_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if code, body, _ := f.get("hello.localhost"); code != 200 || !strings.Contains(body, "release v1") {
		t.Errorf("after the failed deploy hello answers %d %q, want v1", code, body)
	}
	if a := f.apps()["hello"]; a.Release != "v1" || a.State != "running" {
		t.Errorf("hello after the failed deploy: release %s, state %s; want v1 running", a.Release, a.State)
	}
}
