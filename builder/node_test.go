package builder

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// lockfile writes package-lock.json for the tree in dir with the real
// npm (it asks the npm registry for the versions).
func lockfile(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
	}
}

// unpackSlug extracts a slug into a new folder.
func unpackSlug(t *testing.T, slug string) string {
	t.Helper()
	f, err := os.Open(slug)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	if err := Unpack(f, dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	return dir
}

const tsServer = `import { createServer } from "node:http";
const msg: string = "MESSAGE";
createServer((_req, res) => { res.end(msg); }).listen(Number(process.env.PORT), "127.0.0.1");
`

// TestBuildTypeScript: a TypeScript app whose compiler is a
// devDependency builds as on Heroku: devDependencies are installed, the
// build script runs (on every build, also when node_modules comes from
// the cache), and the slug holds the compiled app without the compiler.
func TestBuildTypeScript(t *testing.T) {
	testkit.RequireTools(t, "node", "npm")
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"package.json": `{"name":"ts-app","version":"1.0.0","private":true,
  "scripts":{"build":"tsc","start":"node dist/server.js"},
  "devDependencies":{"typescript":"5.6.3","@types/node":"20.17.6"}}`,
		"tsconfig.json": `{"compilerOptions":{"target":"es2022","module":"commonjs","outDir":"dist","strict":true,"skipLibCheck":true,"types":["node"]},"include":["src"]}`,
		"src/server.ts": strings.Replace(tsServer, "MESSAGE", "first build", 1),
	})
	lockfile(t, src)
	b := newBuilder(t, t.TempDir())
	for i, msg := range []string{"first build", "second build"} {
		writeTree(t, src, map[string]string{"src/server.ts": strings.Replace(tsServer, "MESSAGE", msg, 1)})
		var log testkit.Buffer
		release := "v" + strconv.Itoa(i+1)
		slug, command, err := b.Build(context.Background(), src, "ts-app", release, "", &log)
		if err != nil {
			t.Fatalf("build %s: %v\n%s", release, err, log.String())
		}
		for _, want := range []string{"Running build: tsc", "Pruning devDependencies"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("build %s log lacks %q:\n%s", release, want, log.String())
			}
		}
		if i == 1 && !strings.Contains(log.String(), "Restored node_modules from the build cache") {
			t.Errorf("second build did not use the cache:\n%s", log.String())
		}
		dir := unpackSlug(t, slug)
		if fileExists(filepath.Join(dir, "node_modules", "typescript")) {
			t.Errorf("slug %s still holds the typescript devDependency", release)
		}
		a := runSlug(t, slug, command, "/", msg)
		a.stop(t)
	}
}

// TestBuildPostinstallOnCacheHit: the build cache restores node_modules
// but never skips the app's own build: a "postinstall" that builds from
// the source runs again after a source change with the lockfile unchanged
// (the Next.js redeploy that served 502).
func TestBuildPostinstallOnCacheHit(t *testing.T) {
	testkit.RequireTools(t, "node", "npm")
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"package.json": `{"name":"gen-app","version":"1.0.0","private":true,
  "scripts":{"postinstall":"node gen.js","start":"node server.js"},"dependencies":{"ms":"2.1.3"}}`,
		"gen.js":    `require("fs").mkdirSync("out",{recursive:true}); require("fs").writeFileSync("out/page.txt", require("fs").readFileSync("page.src"));`,
		"server.js": `require("http").createServer((q,r)=>r.end(require("fs").readFileSync("out/page.txt"))).listen(+process.env.PORT,"127.0.0.1");`,
		"page.src":  "version one",
	})
	lockfile(t, src)
	b := newBuilder(t, t.TempDir())
	for i, page := range []string{"version one", "version two"} {
		writeTree(t, src, map[string]string{"page.src": page})
		var log testkit.Buffer
		slug, _, err := b.Build(context.Background(), src, "gen-app", "v"+strconv.Itoa(i+1), "", &log)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		got, err := os.ReadFile(filepath.Join(unpackSlug(t, slug), "out", "page.txt"))
		if err != nil || string(got) != page {
			t.Errorf("build %d: out/page.txt = %q, %v; want %q (the postinstall build was skipped?)\n%s", i+1, got, err, page, log.String())
		}
		if i == 1 && !strings.Contains(log.String(), "Running postinstall: node gen.js") {
			t.Errorf("second build did not run postinstall:\n%s", log.String())
		}
	}
}

// TestStartScriptWithoutNpm: a start script runs as npm would run it
// (prestart first, node_modules/.bin on PATH, npm_package_* set) but with
// no npm process and no shell in front: the app's pid is the one the
// scheduler started.
func TestStartScriptWithoutNpm(t *testing.T) {
	testkit.RequireTools(t, "node")
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"package.json": `{"name":"plain","version":"2.3.4","config":{"greeting":"it's me"},
  "scripts":{"prestart":"echo ran > prestart.txt","start":"node server.js"}}`,
		"server.js": `require("http").createServer((q,r)=>r.end([process.pid, process.env.npm_package_name,
  process.env.npm_package_version, process.env.npm_package_config_greeting,
  require("fs").existsSync("prestart.txt"), process.env.PATH.split(":")[0].endsWith("/node_modules/.bin")].join("|")))
  .listen(+process.env.PORT,"127.0.0.1");`,
	})
	b := newBuilder(t, t.TempDir())
	var log testkit.Buffer
	slug, command, err := b.Build(context.Background(), src, "plain", "v1", "", &log)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "start command: npm start (node server.js), run without npm") {
		t.Errorf("build log:\n%s", log.String())
	}
	a := runSlug(t, slug, command, "/", "|plain|2.3.4|it's me|true|true")
	body := get(t, a.url+"/")
	if pid, _, _ := strings.Cut(body, "|"); pid != strconv.Itoa(a.cmd.Process.Pid) {
		t.Errorf("the app runs as pid %s, not as the started process %d (something runs in front of it)", pid, a.cmd.Process.Pid)
	}
	a.stop(t)
}

// TestEnginesWarning: a node that does not match engines.node is said in
// the build log (Flock runs the app with the node it has).
func TestEnginesWarning(t *testing.T) {
	testkit.RequireTools(t, "node")
	b := newBuilder(t, t.TempDir())
	for _, tc := range []struct{ engines, want string }{
		{">=99", `Warning: package.json engines.node is ">=99"`},
		{"not a range!", `is not a version range Flock understands`},
		{">=10", ""},
	} {
		src := t.TempDir()
		writeTree(t, src, map[string]string{
			"package.json": `{"name":"e","engines":{"node":"` + tc.engines + `"}}`,
			"server.js":    "",
		})
		var log testkit.Buffer
		if _, _, err := b.Build(context.Background(), src, "e", "v1", "", &log); err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		if tc.want == "" && strings.Contains(log.String(), "Warning") || tc.want != "" && !strings.Contains(log.String(), tc.want) {
			t.Errorf("engines %q: log:\n%s", tc.engines, log.String())
		}
	}
}

// get returns the body of a GET of url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildYarnAndPnpm: a yarn.lock or pnpm-lock.yaml installs with that
// package manager (through corepack), with devDependencies for the
// build, pruned from the slug, and the app runs from the slug.
func TestBuildYarnAndPnpm(t *testing.T) {
	testkit.RequireTools(t, "node", "corepack")
	for _, pm := range []string{"yarn", "pnpm"} {
		t.Run(pm, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string]string{
				"package.json": `{"name":"pm-app","version":"1.0.0","private":true,
  "scripts":{"build":"node -e \"require('is-number'); require('fs').writeFileSync('built.txt', 'built')\"","start":"node server.js"},
  "dependencies":{"ms":"2.1.3"},"devDependencies":{"is-number":"7.0.0"}}`,
				"server.js": `const ms = require("ms"); require("http").createServer((q,r)=>r.end(require("fs").readFileSync("built.txt","utf8")+" "+ms(60000))).listen(+process.env.PORT,"127.0.0.1");`,
			})
			lock := exec.Command("corepack", pm, "install")
			lock.Dir = src
			lock.Env = append(os.Environ(), "COREPACK_ENABLE_DOWNLOAD_PROMPT=0", "COREPACK_DEFAULT_TO_LATEST=0")
			if out, err := lock.CombinedOutput(); err != nil {
				t.Fatalf("corepack %s install: %v\n%s", pm, err, out)
			}
			os.RemoveAll(filepath.Join(src, "node_modules"))
			b := newBuilder(t, t.TempDir())
			var log testkit.Buffer
			slug, command, err := b.Build(context.Background(), src, "pm-app", "v1", "", &log)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, log.String())
			}
			for _, want := range []string{"Installing dependencies with " + pm, "Running build", "Pruning devDependencies"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
			dir := unpackSlug(t, slug)
			if fileExists(filepath.Join(dir, "node_modules", "is-number")) {
				t.Errorf("the devDependency is-number is still in the slug")
			}
			a := runSlug(t, slug, command, "/", "built 1m")
			a.stop(t)
		})
	}
}
