package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// readSlugFile returns a file of a slug, trimmed.
func readSlugFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("slug lacks %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// TestBuildRunsAsTheAppsUID: the app's install scripts, its dependency's
// install script and its build script run as the app's uid, cannot read
// Flock's token or another app's build files, and leave no process
// behind; the slug, written by Flock, holds what they wrote.
func TestBuildRunsAsTheAppsUID(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "node", "npm")
	flockDir := t.TempDir() // Flock's own: 0700, like the data dir
	token := filepath.Join(flockDir, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, t.TempDir())

	// Another app keeps a file in its own build HOME.
	other := t.TempDir()
	writeTree(t, other, map[string]string{
		"package.json": `{"name":"other","version":"1.0.0","scripts":{"postinstall":"echo private > \"$HOME/private\" && echo \"$HOME\" > home.txt"}}`,
		"server.js":    "",
	})
	otherSlug, _, err := b.Build(context.Background(), other, "other", "v1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherHome := readSlugFile(t, unpackSlug(t, otherSlug), "home.txt")
	otherFile := filepath.Join(otherHome, "private")
	if _, err := os.Stat(otherFile); err != nil {
		t.Fatalf("the other app's build left no file in its HOME: %v", err)
	}

	sleep := fmt.Sprintf("%d.%d", 40, time.Now().UnixNano()%1000000)
	try := func(what, path string) string {
		return fmt.Sprintf(`(cat %q >/dev/null 2>&1 && echo read || echo denied) > %s-read.txt; (echo x >> %q) 2>/dev/null && echo wrote > %s-write.txt || echo denied > %s-write.txt; `,
			path, what, path, what, what)
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"package.json": `{"name":"boxed","version":"1.0.0","dependencies":{"dep":"file:./dep"},"scripts":{` +
			`"postinstall":` + strconv.Quote("id -u > uid-postinstall.txt; "+try("token", token)+try("other", otherFile)+
			"(setsid nohup sleep "+sleep+" >/dev/null 2>&1 &)") + `,` +
			`"build":"id -u > uid-build.txt"}}`,
		"dep/package.json": `{"name":"dep","version":"1.0.0","scripts":{"install":"id -u > \"$INIT_CWD/uid-dependency.txt\""}}`,
		"server.js":        "",
	})
	var log testkit.Buffer
	slug, _, err := b.Build(context.Background(), src, "boxed", "v1", "", &log)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	uid, _, _ := testRunAs("boxed")
	if !strings.Contains(log.String(), fmt.Sprintf("Building as uid %d", uid)) {
		t.Errorf("the build log does not say which uid builds:\n%s", log.String())
	}
	dir := unpackSlug(t, slug)
	for _, f := range []string{"uid-postinstall.txt", "uid-dependency.txt", "uid-build.txt"} {
		if got := readSlugFile(t, dir, f); got != strconv.Itoa(uid) {
			t.Errorf("%s = %s, want the app's uid %d", f, got, uid)
		}
	}
	for _, f := range []string{"token-read.txt", "token-write.txt", "other-read.txt", "other-write.txt"} {
		if got := readSlugFile(t, dir, f); got != "denied" {
			t.Errorf("%s = %s, want denied", f, got)
		}
	}
	if got, _ := os.ReadFile(token); string(got) != "s3cret\n" {
		t.Errorf("token changed: %q", got)
	}
	if pid := findProc("sleep\x00" + sleep + "\x00"); pid != 0 {
		t.Errorf("a process the build started in the background outlived it: pid %d", pid)
	}
}

// TestBuildCacheIsPerApp: two apps with the same lockfile get a
// node_modules cache each: app a's build, which rewrites a cached file in
// place, changes nothing in app b's next slug, and b's first build runs
// npm rather than linking a's files.
func TestBuildCacheIsPerApp(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "node", "npm")
	pkg := func(scripts string) string {
		return `{"name":"same","version":"1.0.0","dependencies":{"ms":"2.1.3"},"scripts":{` + scripts + `}}`
	}
	a, bsrc := t.TempDir(), t.TempDir()
	writeTree(t, a, map[string]string{"package.json": pkg(""), "server.js": ""})
	lockfile(t, a)
	lock, err := os.ReadFile(filepath.Join(a, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, bsrc, map[string]string{"package.json": pkg(""), "server.js": "", "package-lock.json": string(lock)})
	writeTree(t, a, map[string]string{"package.json": pkg(`"postinstall":"echo tampered >> node_modules/ms/index.js"`)})
	bl := newBuilder(t, t.TempDir())
	build := func(src, app, release string) string {
		var log testkit.Buffer
		_, _, err := bl.Build(context.Background(), src, app, release, "", &log)
		if err != nil {
			t.Fatalf("build %s %s: %v\n%s", app, release, err, log.String())
		}
		return log.String()
	}
	build(bsrc, "app-b", "v1")
	if log := build(a, "app-a", "v1"); !strings.Contains(log, "npm ci") {
		t.Errorf("app a's first build used another app's cache:\n%s", log)
	}
	build(a, "app-a", "v2") // from a's cache, tampered again
	var log testkit.Buffer
	slug, _, err := bl.Build(context.Background(), bsrc, "app-b", "v2", "", &log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "Restored node_modules from the build cache") {
		t.Errorf("app b's second build did not use its cache:\n%s", log.String())
	}
	if got := readSlugFile(t, unpackSlug(t, slug), "node_modules/ms/index.js"); strings.Contains(got, "tampered") {
		t.Errorf("app a's build changed app b's cached node_modules")
	}
}
