package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// peekServer is a Node app that tries what a hostile app would: read any
// path it is given, tell its uid, and allocate memory on request (or at
// boot with BOOT_HOG_MB).
const peekServer = `const http = require('http'), fs = require('fs');
const hog = (mb) => { global.h = global.h || []; for (let i = 0; i < mb; i++) global.h.push(Buffer.alloc(1 << 20, 1)); };
if (process.env.BOOT_HOG_MB) hog(+process.env.BOOT_HOG_MB);
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/id') return res.end(process.getuid() + ' ' + process.env.HOME);
  if (u.pathname === '/hog') { hog(+u.searchParams.get('mb')); return res.end('survived'); }
  if (u.pathname === '/read') {
    try {
      const p = u.searchParams.get('path');
      return res.end(fs.statSync(p).isDirectory() ? fs.readdirSync(p).join('\n') : fs.readFileSync(p));
    } catch (e) { res.statusCode = 403; return res.end(String(e.code)); }
  }
  res.end('ok');
}).listen(process.env.PORT, process.env.HOST);
`

// writePeek writes the peek app named name with the given flock keys.
func writePeek(t *testing.T, name, flockKeys string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o755)
	pkg := fmt.Sprintf(`{"name": %q, "version": "1.0.0", "scripts": {"start": "node server.js"}, "flock": {%s}}`, name, flockKeys)
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.js"), []byte(peekServer), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// appGet sends a request for path to app through HAProxy.
func (f *flock) appGet(app, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+path, nil)
	req.Host = app + ".localhost"
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestAppsCannotReachFlockOrEachOther: a Node app deployed through the
// real Flock runs under a uid of its own and cannot read Flock's token,
// store, slugs or environment, nor another app's files.
func TestAppsCannotReachFlockOrEachOther(t *testing.T) {
	testkit.RequireRoot(t)
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", writePeek(t, "peek", ""))
	f.mustCLI("deploy", writePeek(t, "other", ""))

	code, id := f.appGet("peek", "/id")
	var uid int
	var home string
	fmt.Sscan(id, &uid, &home)
	if code != 200 || uid == 0 {
		t.Fatalf("peek runs as %q (%d); want a uid of its own", id, code)
	}
	if code, body := f.appGet("peek", "/read?path="+filepath.Join(home, "..", "..", "releases")); code != 200 || body == "" {
		t.Errorf("peek cannot list its own releases: %d %q", code, body)
	}
	others := filepath.Join(f.dataDir, "instances", "apps", "other")
	for _, p := range []string{
		filepath.Join(f.dataDir, "token"),
		filepath.Join(f.dataDir, "flock.db"),
		filepath.Join(f.dataDir, "artifacts"),
		filepath.Join(f.dataDir, "artifacts", "other", "v1.tar.gz"),
		filepath.Join(f.dataDir, "haproxy"),
		f.dataDir,
		filepath.Join(others, "releases", "v1", "server.js"),
		others,
		fmt.Sprintf("/proc/%d/environ", f.cmd.Process.Pid),
	} {
		if code, body := f.appGet("peek", "/read?path="+p); code != 403 {
			t.Errorf("peek read %s: %d %.80q; want it denied", p, code, body)
		}
	}
}

// TestOutOfMemoryIsToldEverywhere: an app past its mem is killed, and
// flock apps (JSON and table) says "out of memory (limit N MiB)"; one
// that needs more than its mem to boot fails its deploy saying so.
func TestOutOfMemoryIsToldEverywhere(t *testing.T) {
	testkit.RequireRoot(t)
	f := newFlock(t)
	f.start()
	if out, err := f.cli("deploy", writePeek(t, "boothog", `"mem": 48, "env": {"BOOT_HOG_MB": "200"}`)); err == nil ||
		!strings.Contains(out, "out of memory (limit 48 MiB)") {
		t.Errorf("deploy of an app that needs 200 MiB under 48: %v\n%s", err, out)
	}
	f.mustCLI("deploy", writePeek(t, "hog", `"mem": 64`))
	a := f.apps()["hog"]
	if !a.MemoryEnforced {
		t.Fatal("memoryEnforced is false on a host with a writable memory cgroup")
	}
	f.appGet("hog", "/hog?mb=200")
	want := "out of memory (limit 64 MiB)"
	testkit.WaitFor(t, 30*time.Second, "flock apps --json to say "+want, func() bool {
		for _, in := range f.apps()["hog"].Instances {
			if in.LastExit == want {
				return true
			}
		}
		return false
	})
	if out := f.mustCLI("apps"); !strings.Contains(out, want) {
		t.Errorf("flock apps does not say %q:\n%s", want, out)
	}
	testkit.WaitFor(t, 30*time.Second, "hog to answer again", func() bool { c, _ := f.appGet("hog", "/"); return c == 200 })
}
