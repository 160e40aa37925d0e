package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
)

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without Dir succeeded")
	}
	dir := t.TempDir()
	b, err := New(Config{Dir: filepath.Join(dir, "store")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New created the store folder: it must start nothing")
	}
	if want := filepath.Join(dir, "store", ".cache"); b.cache != want {
		t.Errorf("default cache = %s, want %s", b.cache, want)
	}
}

func TestBuildHello(t *testing.T) {
	testkit.RequireTools(t, "node")
	t.Parallel()
	b := newBuilder(t, t.TempDir())
	var log testkit.Buffer
	slug, command, err := b.Build(context.Background(), filepath.Join(examples, "hello"), "hello", "v1", "", &log)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if want, _ := b.Path("hello", "v1"); slug != want {
		t.Errorf("slug = %s, want %s", slug, want)
	}
	if command != "node server.js" {
		t.Errorf("command = %q, want %q", command, "node server.js")
	}
	for _, want := range []string{"-----> Node app detected", "No dependencies in package.json: skipping npm", "-----> Built hello v1"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	a := runSlug(t, slug, command, "/", "Hello from Flock (release v1)")
	if err := a.stop(t); err != nil {
		t.Errorf("hello did not exit cleanly on SIGTERM: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(b.cache, "work", "*")); len(left) > 0 {
		t.Errorf("work folders left behind: %v", left)
	}
}

// TestBuildExpressCached builds the express example twice: the second
// build must restore node_modules from the cache without running npm,
// which is proved by taking npm off PATH for it; and the slug starts with
// the start script run without npm (npm is off PATH).
func TestBuildExpressCached(t *testing.T) {
	testkit.RequireTools(t, "node", "npm")
	b := newBuilder(t, t.TempDir())
	src := filepath.Join(examples, "express")
	var first testkit.Buffer
	if _, _, err := b.Build(context.Background(), src, "hello-express", "v1", "", &first); err != nil {
		t.Fatalf("first build: %v\n%s", err, first.String())
	}
	if !strings.Contains(first.String(), "Installing dependencies with npm ci (package-lock.json)") {
		t.Errorf("first build did not run npm ci:\n%s", first.String())
	}

	// node, sh, and the tools the app's uid links node_modules with.
	onlyNode := t.TempDir()
	if err := os.Chmod(onlyNode, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "sh", "rm", "cp", "touch"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(onlyNode, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", onlyNode)
	var second testkit.Buffer
	slug, command, err := b.Build(context.Background(), src, "hello-express", "v2", "", &second)
	if err != nil {
		t.Fatalf("second build: %v\n%s", err, second.String())
	}
	if !strings.Contains(second.String(), "Restored node_modules from the build cache (package-lock.json unchanged)") {
		t.Errorf("second build did not report a cache hit:\n%s", second.String())
	}
	if strings.Contains(second.String(), "npm ci") {
		t.Errorf("second build ran npm:\n%s", second.String())
	}
	if !strings.HasSuffix(command, "; exec node server.js") {
		t.Errorf("command = %q, want the start script run without npm", command)
	}
	a := runSlug(t, slug, command, "/healthz", `"release":"v1"`)
	if err := a.stop(t); err != nil {
		t.Errorf("express did not exit cleanly on SIGTERM: %v", err)
	}
}

func TestBuildPython(t *testing.T) {
	testkit.RequireTools(t, "python3")
	t.Parallel()
	b := newBuilder(t, t.TempDir())
	var log testkit.Buffer
	slug, command, err := b.Build(context.Background(), filepath.Join(examples, "python"), "hello-python", "v1", "", &log)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if !strings.HasSuffix(command, "; python3 app.py") {
		t.Errorf("command = %q, want the Procfile's web line after the venv setup", command)
	}
	for _, want := range []string{"-----> Python app detected", "requirements.txt lists nothing: skipping pip"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	a := runSlug(t, slug, command, "/", "(release v1)")
	if err := a.stop(t); err != nil {
		t.Errorf("python app did not exit cleanly on SIGTERM: %v", err)
	}
}

func TestBuildGo(t *testing.T) {
	testkit.RequireTools(t, "go")
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"go.mod": "module example.com/hi\n\ngo 1.21\n",
		"main.go": `package main

import ("fmt"; "net/http"; "os")

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "go says hi ", os.Getenv("FLOCK_RELEASE")) })
	http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
`})
	b := newBuilder(t, t.TempDir())
	var log testkit.Buffer
	slug, command, err := b.Build(context.Background(), src, "hi", "v1", "", &log)
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if command != "./app" {
		t.Errorf("command = %q, want ./app", command)
	}
	runSlug(t, slug, command, "/", "go says hi v1")
}

func TestBuildStartCommand(t *testing.T) {
	testkit.RequireTools(t, "node")
	t.Parallel()
	tests := []struct {
		name    string
		tree    map[string]string
		cmd     string
		want    string
		wantErr string
	}{
		{"cmd wins over Procfile", map[string]string{"Procfile": "web: ./run\n", "package.json": `{"scripts":{"start":"x"}}`}, "node other.js", "node other.js", ""},
		{"Procfile wins over npm start", map[string]string{"Procfile": "worker: x\nweb:  node web.js \n", "package.json": `{"scripts":{"start":"x"}}`}, "", "node web.js", ""},
		{"npm start", map[string]string{"package.json": `{"scripts":{"start":"node a.js"}}`}, "", `export PATH="$PWD/node_modules/.bin:$PATH" npm_package_json="$PWD/package.json" npm_package_name='' npm_package_version='' npm_lifecycle_event='start' npm_lifecycle_script='node a.js'; exec node a.js`, ""},
		{"node main", map[string]string{"package.json": `{"main":"lib/index.js"}`, "lib/index.js": ""}, "", "node lib/index.js", ""},
		{"node server.js", map[string]string{"package.json": `{}`, "server.js": ""}, "", "node server.js", ""},
		{"Procfile only", map[string]string{"Procfile": "web: ./serve --port $PORT\n"}, "", "./serve --port $PORT", ""},
		{"node without entry point", map[string]string{"package.json": `{"main":"missing.js"}`}, "", "", "no start command"},
		{"Procfile without web", map[string]string{"Procfile": "worker: x\n"}, "", "", "no start command"},
		{"nothing to build", map[string]string{"README.md": "hi"}, "", "", "no start command: the source has no package.json"},
		{"bad package.json", map[string]string{"package.json": `{`}, "", "", "package.json is not valid JSON"},
		{"link out of the app", map[string]string{"Procfile": "web: x\n", "secret": "@/etc/passwd"}, "", "", `secret: symbolic link to "/etc/passwd" points outside the app folder`},
	}
	b := newBuilder(t, t.TempDir())
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, tt.tree)
			var log testkit.Buffer
			release := "v" + strconv.Itoa(i+1)
			slug, command, err := b.Build(context.Background(), src, "start", release, tt.cmd, &log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if !strings.Contains(log.String(), tt.wantErr) {
					t.Errorf("log does not say why:\n%s", log.String())
				}
				if p, _ := b.Path("start", release); fileExists(p) {
					t.Errorf("failed build left a slug at %s", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, log.String())
			}
			if command != tt.want {
				t.Errorf("command = %q, want %q", command, tt.want)
			}
			if !fileExists(slug) {
				t.Errorf("no slug at %s", slug)
			}
		})
	}
}

func TestBuildFails(t *testing.T) {
	testkit.RequireTools(t, "go")
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"go.mod": "module x\n\ngo 1.21\n", "main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	b := newBuilder(t, t.TempDir())
	var log testkit.Buffer
	_, _, err := b.Build(context.Background(), src, "broken", "v1", "", &log)
	if err == nil {
		t.Fatal("Build of a broken Go app succeeded")
	}
	if !strings.Contains(log.String(), "       ./main.go:3:15: undefined: undefinedThing") {
		t.Errorf("log does not show the compiler's error, indented:\n%s", log.String())
	}
	if !strings.Contains(log.String(), " !     Build failed:") {
		t.Errorf("log does not end with the failure:\n%s", log.String())
	}
}

func TestBuildRejectsNames(t *testing.T) {
	t.Parallel()
	b := newBuilder(t, t.TempDir())
	src := t.TempDir()
	writeTree(t, src, map[string]string{"Procfile": "web: x\n"})
	for _, tt := range []struct{ app, release string }{
		{"../etc", "v1"}, {"App", "v1"}, {"a/b", "v1"}, {"", "v1"}, {"ok", "1"}, {"ok", "v1/../../x"}, {"ok", "v"}, {"ok", "v1.tar"},
	} {
		if _, _, err := b.Build(context.Background(), src, tt.app, tt.release, "", nil); err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("Build(%q, %q) error = %v, want invalid name", tt.app, tt.release, err)
		}
	}
	if entries, _ := os.ReadDir(b.dir); len(entries) > 0 {
		t.Errorf("rejected builds touched the store: %v", entries)
	}
}

// TestBuildCancel cancels a build while npm runs a slow install script:
// Build must return promptly and kill the step's whole process group.
// The script runs as the app's uid in a pid namespace of its own when the
// test runs as root, so the test finds its sleep by its command line.
func TestBuildCancel(t *testing.T) {
	testkit.RequireTools(t, "node", "npm")
	t.Parallel()
	src := t.TempDir()
	marks := t.TempDir()
	if err := os.Chmod(marks, 0o777); err != nil { // the build's uid writes there
		t.Fatal(err)
	}
	started := filepath.Join(marks, "started")
	sleep := fmt.Sprintf("%d.%d", 30, time.Now().UnixNano()%1000000) // a command line no other process has
	writeTree(t, src, map[string]string{
		"package.json":     `{"name":"slow","scripts":{"preinstall":"echo started > ` + started + ` && sleep ` + sleep + `"},"dependencies":{"dep":"file:./dep"}}`,
		"dep/package.json": `{"name":"dep","version":"1.0.0"}`,
		"server.js":        "",
	})
	b := newBuilder(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log testkit.Buffer
	done := make(chan error, 1)
	go func() { _, _, err := b.Build(ctx, src, "slow", "v1", "", &log); done <- err }()
	var pid int
	testkit.WaitFor(t, 30*time.Second, "the install script to start", func() bool {
		pid = findProc("sleep\x00" + sleep + "\x00")
		return fileExists(started) && pid > 0
	})
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Build did not return within 10s of cancel")
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Build took %s to return after cancel", d)
	}
	testkit.WaitFor(t, 5*time.Second, "the install script to be killed", func() bool { return !procgroup.Alive(pid) })
}

// findProc returns the pid of a process whose command line is cmdline
// (arguments ended by NULs), 0 when none runs.
func findProc(cmdline string) int {
	want := strings.Split(strings.TrimRight(cmdline, "\x00"), "\x00")
	for _, pid := range procgroup.List() {
		if slices.Equal(procgroup.Cmdline(pid), want) {
			return pid
		}
	}
	return 0
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
