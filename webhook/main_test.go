package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestMain lets the test binary play `flock git-hook`: the Remote's hook
// command re-executes it with FLOCK_TEST_HOOK=1.
func TestMain(m *testing.M) {
	if os.Getenv("FLOCK_TEST_HOOK") == "1" {
		os.Exit(HookMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fixtures is the folder of real GitHub payloads (see its SOURCES.md).
const fixtures = "testdata/github"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// testGitEnv isolates test git commands from the machine's configuration.
func testGitEnv() []string {
	return append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
}

// git runs git in dir and returns its trimmed output, failing the test on error.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = testGitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newApp makes a git work tree holding a tiny Node app and commits it.
func newApp(t testing.TB, name string) (dir, commit string) {
	t.Helper()
	testkit.RequireTools(t, "git")
	dir = t.TempDir()
	writeFile(t, dir, "package.json", `{"name": "`+name+`", "version": "1.0.0", "scripts": {"start": "node server.js"}}`+"\n")
	writeFile(t, dir, "server.js", "require('http').createServer((q, s) => s.end('hello\\n')).listen(process.env.PORT)\n")
	git(t, dir, "init", "-q", "--initial-branch=main")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "first")
	return dir, git(t, dir, "rev-parse", "HEAD")
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit changes a file in the work tree and commits it, returning the SHA.
func commit(t testing.TB, dir, file, content string) string {
	t.Helper()
	writeFile(t, dir, file, content)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "change "+file)
	return git(t, dir, "rev-parse", "HEAD")
}

// serveRepo serves the bare copy of a work tree read-only over smart HTTP
// with `git http-backend`, as GitHub would. When auth is set, requests must
// carry exactly that Authorization header.
func serveRepo(t testing.TB, work, auth string) string {
	t.Helper()
	root := t.TempDir()
	git(t, root, "clone", "-q", "--bare", work, filepath.Join(root, "repo.git"))
	gitPath, _ := exec.LookPath("git")
	h := &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth != "" && r.Header.Get("Authorization") != auth {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/repo.git"
}

// sign returns GitHub's X-Hub-Signature-256 of body.
func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// delivery builds a signed webhook request.
func delivery(secret, event, id string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-GitHub-Event", event)
	if id != "" {
		r.Header.Set("X-GitHub-Delivery", id)
	}
	if secret != "" {
		r.Header.Set("X-Hub-Signature-256", sign(secret, body))
	}
	return r
}

// runInBackground runs a Run(ctx) loop for the test's duration.
func runInBackground(t testing.TB, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// fetchIntoTemp returns a fetch that makes an empty source folder per job.
// The root is made here, on the test's goroutine, so that its removal is
// registered before runInBackground's stop and runs after the worker has
// returned: a worker calling t.TempDir itself could race the removal of the
// test's temp root and fail with "no such file or directory".
func fetchIntoTemp(t testing.TB) func(context.Context, Push, io.Writer) (string, error) {
	root := t.TempDir()
	return func(context.Context, Push, io.Writer) (string, error) {
		return os.MkdirTemp(root, "src")
	}
}
