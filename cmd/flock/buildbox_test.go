package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestBuildsRunAsTheAppsUID: `flock deploy` of an app whose postinstall
// prints its uid and tries to read Flock's token: the deploy log shows
// the uid the app's running instance has (not root's), and the read
// failed. The running app reaches its own build folder, not another
// app's, nor the list of build work folders.
func TestBuildsRunAsTheAppsUID(t *testing.T) {
	testkit.RequireRoot(t)
	f := newFlock(t)
	f.start()
	dir := filepath.Join(t.TempDir(), "buildas")
	os.MkdirAll(dir, 0o755)
	token := filepath.Join(f.dataDir, "token")
	pkg := fmt.Sprintf(`{"name":"buildas","version":"1.0.0","scripts":{"start":"node server.js",
  "postinstall":%q}}`, fmt.Sprintf("echo build-uid=$(id -u); cat %s >/dev/null 2>&1 && r=READ || r=DENIED; echo token-$r", token))
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.js"), []byte(peekServer), 0o644); err != nil {
		t.Fatal(err)
	}
	out := f.mustCLI("deploy", dir)
	code, id := f.appGet("buildas", "/id")
	var uid int
	fmt.Sscan(id, &uid)
	if code != 200 || uid == 0 {
		t.Fatalf("the app runs as %q (%d); want a uid of its own", id, code)
	}
	if !strings.Contains(out, "build-uid="+strconv.Itoa(uid)) {
		t.Errorf("the deploy log does not show the build running as the app's uid %d:\n%s", uid, out)
	}
	if !strings.Contains(out, "token-DENIED") || strings.Contains(out, "token-READ") {
		t.Errorf("the build read Flock's token:\n%s", out)
	}
	f.mustCLI("deploy", writePeek(t, "other", ""))
	_, otherID := f.appGet("other", "/id")
	var otherUID int
	fmt.Sscan(otherID, &otherUID)
	if otherUID == 0 || otherUID == uid {
		t.Fatalf("the other app runs as %q; want a uid of its own", otherID)
	}
	cache := filepath.Join(f.dataDir, "cache")
	if code, body := f.appGet("buildas", "/read?path="+filepath.Join(cache, "uid", strconv.Itoa(uid), "home")); code != 200 {
		t.Errorf("the app cannot reach its own build HOME: %d %q", code, body)
	}
	for _, p := range []string{
		filepath.Join(cache, "uid", strconv.Itoa(otherUID), "home"),
		filepath.Join(cache, "uid"),
		filepath.Join(cache, "work"),
		cache,
	} {
		if code, body := f.appGet("buildas", "/read?path="+p); code != 403 {
			t.Errorf("the app read %s: %d %.80q; want it denied", p, code, body)
		}
	}
}
