package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

const crasher = `const fs = require("fs"), path = require("path"), http = require("http");
const marker = path.join(process.env.TMPDIR, "crashed");
if (fs.existsSync(marker)) {
  console.error("Error: boom: missing DATABASE_URL");
  process.exit(1);
}
http.createServer((req, res) => {
  if (req.url === "/crash") { fs.writeFileSync(marker, "x"); res.end("bye"); process.exit(1); }
  res.end("up");
}).listen(+process.env.PORT, process.env.HOST);
`

// TestCrashedApp: an app that was live and then keeps exiting is shown
// as crashed (not a green "running 0/1") with its own error line, in the
// API and the CLI, and its requests get a 503 page that names the app and
// its state, not a 404 or a wait for a wake that is not coming.
func TestCrashedApp(t *testing.T) {
	f := newFlock(t)
	f.start()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"package.json": `{"name":"crasher","version":"1.0.0","scripts":{"start":"node server.js"},"flock":{"stableSeconds":0}}`,
		"server.js":    crasher,
	})
	f.mustCLI("deploy", dir)
	if code, body := f.getPath("crasher.localhost", "/"); code != 200 || body != "up" {
		t.Fatalf("crasher before the crash: %d %q", code, body)
	}
	f.getPath("crasher.localhost", "/crash")
	// The first run ended without a word (/crash); the runs after it say
	// why they end.
	testkit.WaitFor(t, 30*time.Second, "crasher to be crashed, with its error", func() bool {
		a := f.apps()["crasher"]
		return a.State == "crashed" && strings.Contains(a.Error, "Error: boom: missing DATABASE_URL")
	})
	if out := f.mustCLI("apps"); !strings.Contains(out, "crashed") || !strings.Contains(out, "Error: boom") {
		t.Errorf("flock apps:\n%s", out)
	}
	code, body := f.getPath("crasher.localhost", "/")
	if code != 503 || !strings.Contains(body, "crasher has crashed") {
		t.Errorf("a request to the crashed app: %d %q", code, body)
	}
}
