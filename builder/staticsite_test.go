package builder

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// fakeFlock stands for the flock binary in start commands the tests only
// read; its path needs quoting.
var fakeFlock = []string{"/opt/my flock/flock", "static"}

const serveRoot = `exec '/opt/my flock/flock' static`

// TestStaticSiteDetection: a tree with index.html and no other start
// command is a static site, served by the StaticServer; any start command
// wins over it; a Node site with a build script is served from the folder
// its build wrote.
func TestStaticSiteDetection(t *testing.T) {
	testkit.RequireTools(t, "node")
	t.Parallel()
	const page = "<!doctype html><h1>hi</h1>"
	buildTo := func(dir string) string {
		return `{"name":"front","scripts":{"build":"mkdir -p ` + dir + ` && cp index.html ` + dir + `/"}}`
	}
	tests := []struct {
		name, cmd, want, wantLog string
		tree                     map[string]string
	}{
		{"only files", "", serveRoot, "Static site detected: served by Flock (the source's root)",
			map[string]string{"index.html": page, "style.css": "body{}", "flock.json": `{"instances":1}`}},
		{"Procfile without web", "", serveRoot, "Static site detected",
			map[string]string{"index.html": page, "Procfile": "clock: ./tick\n"}},
		{"Procfile web wins", "", "./serve", "Procfile app detected",
			map[string]string{"index.html": page, "Procfile": "web: ./serve\n"}},
		{"flock.cmd wins", "./serve", "./serve", "start command: ./serve",
			map[string]string{"index.html": page}},
		{"npm start wins", "", "exec node a.js", "Node app detected",
			map[string]string{"index.html": page, "package.json": `{"scripts":{"start":"node a.js"}}`}},
		{"node server.js wins", "", "node server.js", "Node app detected",
			map[string]string{"index.html": page, "package.json": `{}`, "server.js": ""}},
		{"package.json without start", "", serveRoot, "start command: flock static",
			map[string]string{"index.html": page, "package.json": `{"name":"front"}`}},
		{"built into dist", "", serveRoot + " --dir dist", "Static site detected: served by Flock (dist/)",
			map[string]string{"index.html": page, "package.json": buildTo("dist")}},
		{"built into build", "", serveRoot + " --dir build", "start command: flock static --dir build",
			map[string]string{"index.html": page, "package.json": buildTo("build")}},
		{"heroku-postbuild into public", "", serveRoot + " --dir public", "(public/)",
			map[string]string{"package.json": `{"scripts":{"heroku-postbuild":"mkdir -p public && echo hi > public/index.html"}}`}},
		{"build writes no site", "", serveRoot, "(the source's root)",
			map[string]string{"index.html": page, "package.json": `{"scripts":{"build":"mkdir -p dist && echo x > dist/app.js"}}`}},
	}
	b := newBuilder(t, t.TempDir())
	b.static = fakeFlock
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tt.tree)
			var log testkit.Buffer
			_, command, err := b.Build(context.Background(), src, "site", "v"+strconv.Itoa(i+1), tt.cmd, &log)
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, log.String())
			}
			if command != tt.want && !strings.HasSuffix(command, "; "+tt.want) {
				t.Errorf("command = %q, want %q", command, tt.want)
			}
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log does not say %q:\n%s", tt.wantLog, log.String())
			}
		})
	}
}

// TestStaticSiteNeedsServer: without a StaticServer (Flock on Marathon)
// a static site fails to build, saying why and what to do.
func TestStaticSiteNeedsServer(t *testing.T) {
	t.Parallel()
	b := newBuilder(t, t.TempDir())
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.html": "hi"})
	var log testkit.Buffer
	_, _, err := b.Build(context.Background(), src, "site", "v1", "", &log)
	const want = "static sites are served by the flock binary, which only the embedded scheduler"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if !strings.Contains(log.String(), "Static site detected") || !strings.Contains(log.String(), "Procfile") {
		t.Errorf("log does not say why:\n%s", log.String())
	}
}

// TestStaticSiteServes builds a front-end project (index.html, a
// package.json with a dependency and a build script that writes dist/)
// and runs its slug as a scheduler would, with this test binary playing
// `flock static`: dist/ is served, the project's files are not, and the
// slug holds no node_modules.
func TestStaticSiteServes(t *testing.T) {
	testkit.RequireTools(t, "node", "npm")
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"package.json":     `{"name":"front","version":"1.0.0","scripts":{"build":"node build.js"},"dependencies":{"dep":"file:./dep"}}`,
		"dep/package.json": `{"name":"dep","version":"1.0.0","main":"index.js"}`,
		"dep/index.js":     `module.exports = "built by dep";`,
		"build.js": `const fs = require("fs"); fs.mkdirSync("dist/assets", {recursive: true});
fs.writeFileSync("dist/index.html", "<h1>" + require("dep") + "</h1>");
fs.writeFileSync("dist/assets/app.css", "h1{color:red}");`,
		"index.html": "<h1>source page</h1>",
		".env":       "SECRET=1",
	})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, t.TempDir())
	b.static = []string{"env", "FLOCK_TEST_ROLE=static", exe}
	var log testkit.Buffer
	slug, command, err := b.Build(context.Background(), src, "front", "v1", "", &log)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "Removing node_modules") {
		t.Errorf("log does not say node_modules was removed:\n%s", log.String())
	}
	if !strings.HasSuffix(command, " --dir dist") {
		t.Errorf("command = %q, want it to serve dist", command)
	}
	for _, f := range files(t, unpackSlug(t, slug)) {
		if strings.HasPrefix(f, "node_modules/") {
			t.Errorf("slug holds %s: a static site needs no node_modules", f)
			break
		}
	}
	a := runSlug(t, slug, command, "/", "<h1>built by dep</h1>")
	for path, want := range map[string]int{
		"/assets/app.css": 200, "/index.html": 200, "/assets/": 404,
		"/package.json": 404, "/build.js": 404, "/.env": 404, "/../package.json": 404,
	} {
		resp, err := http.Get(a.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/assets/app.css" && resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Errorf("GET %s Content-Type = %q", path, resp.Header.Get("Content-Type"))
		}
	}
	if err := a.stop(t); err != nil {
		t.Errorf("the static server did not exit cleanly on SIGTERM: %v", err)
	}
}
