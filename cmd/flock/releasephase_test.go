package main

import (
	"strings"
	"testing"
)

// TestReleasePhase: a Procfile's release command runs once per release,
// in the release's slug, before any instance starts (the app reads what
// it wrote); a failing one fails the deploy with its error, no instance of
// that release starts and the running release keeps serving. Process
// types Flock does not run are said, not silently dropped.
func TestReleasePhase(t *testing.T) {
	f := newFlock(t)
	f.start()
	dir := t.TempDir()
	files := map[string]string{
		"package.json": `{"name":"migrating","version":"1.0.0","flock":{"stableSeconds":0}}`,
		"Procfile":     "web: node server.js\nrelease: node migrate.js\nworker: node worker.js\n",
		"migrate.js":   `require("fs").writeFileSync("schema.txt", "schema of " + process.env.FLOCK_RELEASE); console.log("migrated to " + process.env.FLOCK_RELEASE);`,
		"server.js": `const schema = require("fs").readFileSync("schema.txt", "utf8");
require("http").createServer((q, r) => r.end(schema)).listen(+process.env.PORT, process.env.HOST);`,
		"worker.js": `setInterval(() => {}, 1000);`,
	}
	writeFiles(t, dir, files)
	out := f.mustCLI("deploy", dir)
	for _, want := range []string{"Running the release command of v1: node migrate.js", "release: migrated to v1", "Starting 1 worker instance(s) of v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	if code, body := f.getPath("migrating.localhost", "/"); code != 200 || body != "schema of v1" {
		t.Fatalf("the app after its release phase: %d %q", code, body)
	}

	files["migrate.js"] = `console.error("Error: migration failed: column exists"); process.exit(2);`
	writeFiles(t, dir, files)
	out, err := f.cli("deploy", dir)
	if err == nil {
		t.Fatalf("a deploy whose release command fails succeeded:\n%s", out)
	}
	for _, want := range []string{"exited with status 2", "Error: migration failed: column exists", "running release keeps serving"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed deploy output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Starting 1 instance(s) of v2") {
		t.Errorf("instances of v2 were started after its release command failed:\n%s", out)
	}
	if code, body := f.getPath("migrating.localhost", "/"); code != 200 || body != "schema of v1" {
		t.Errorf("after the failed release phase: %d %q, want v1 serving", code, body)
	}
}
