package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
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

	dieAfter(t, dir, 150)
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

// TestHandoverUnderLoad: a new release takes the traffic as soon as its
// instances pass their checks, long before its stability window ends and
// the command says "live"; under load no request fails. A release that
// then dies within its window gives the traffic back to the old one.
func TestHandoverUnderLoad(t *testing.T) {
	f := newFlock(t)
	f.start()
	dir := copyExample(t, "hello")
	setDescriptorKey(t, dir, "stableSeconds", 10) // far longer than a handover takes
	f.mustCLI("deploy", dir)
	f.mustCLI("scale", "hello", "2")
	testkit.WaitFor(t, 20*time.Second, "2 healthy instances", func() bool { return f.apps()["hello"].HealthyCount() == 2 })

	load := startE2ELoad(f.http, "hello.localhost", 4)
	load.await(t, 50)
	type cliResult struct {
		out string
		err error
	}
	done := make(chan cliResult, 1)
	go func() {
		out, err := f.cli("config", "set", "hello", "GREETING=bonjour")
		done <- cliResult{out, err}
	}()
	testkit.WaitFor(t, 30*time.Second, "v2 serving every request", func() bool {
		for range 4 { // both instances, round robin
			if _, body, _ := f.get("hello.localhost"); !strings.Contains(body, "(release v2)") {
				return false
			}
		}
		return true
	})
	select {
	case r := <-done:
		t.Fatalf("config set returned before v2's 10 s window ended (%v):\n%s", r.err, r.out)
	default:
	}
	r := <-done
	if r.err != nil || !strings.Contains(r.out, "v2 is live") || !strings.Contains(r.out, "out of rotation") {
		t.Fatalf("config set: %v\n%s", r.err, r.out)
	}
	load.await(t, 50)
	if sent, failed := load.finish(); failed > 0 {
		t.Errorf("%d of %d requests failed during the handover; last: %v", failed, sent, load.lastErr.Load())
	}

	// A release that passes its checks, then dies within its window.
	load = startE2ELoad(f.http, "hello.localhost", 4)
	load.await(t, 50)
	dieAfter(t, dir, 500)
	if out, err := f.cli("deploy", dir); err == nil || !strings.Contains(out, "back in rotation") {
		t.Fatalf("deploy of an app that dies in its window: %v\n%s", err, out)
	}
	load.await(t, 50)
	sent, failed := load.finish()
	t.Logf("%d of %d requests failed while the dying release gave the traffic back; last: %v", failed, sent, load.lastErr.Load())
	for range 4 {
		if code, body, _ := f.get("hello.localhost"); code != 200 || !strings.Contains(body, "(release v2)") {
			t.Errorf("after the failed deploy hello answers %d %q, want v2", code, body)
		}
	}
}

// setDescriptorKey sets a key of the "flock" descriptor in dir's package.json.
func setDescriptorKey(t *testing.T, dir, key string, value any) {
	t.Helper()
	path := filepath.Join(dir, "package.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkg map[string]any
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pkg["flock"].(map[string]any)[key] = value
	if b, err = json.MarshalIndent(pkg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dieAfter makes the hello app in dir throw ms after it starts listening,
// as an app missing its build or a config var does.
func dieAfter(t *testing.T, dir string, ms int) {
	t.Helper()
	server := filepath.Join(dir, "server.js")
	src, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	flap := fmt.Sprintf("%s\nsetTimeout(() => { throw new Error('boom: missing DATABASE_URL'); }, %d);\n", src, ms)
	if err := os.WriteFile(server, []byte(flap), 0o644); err != nil {
		t.Fatal(err)
	}
}
