package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestGitHubReplayDoesNotRollBack: signed push deliveries sent again under
// new delivery ids, of a commit the app ran or of an older one, are
// acknowledged and leave the running commit alone.
func TestGitHubReplayDoesNotRollBack(t *testing.T) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	const secret = "replay-secret"
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(secret), 0o600)
	f := newFlock(t, "--github-secret-file", file)
	f.start()

	// The repository, served over smart HTTP as GitHub would.
	dir := copyExample(t, "hello")
	var commits []string
	for i, msg := range []string{"first", "second", "third"} {
		os.WriteFile(filepath.Join(dir, "VERSION"), []byte(msg+"\n"), 0o644)
		steps := [][]string{{"add", "."}, {"commit", "-qm", msg}}
		if i == 0 {
			steps = append([][]string{{"init", "-q", "-b", "main"}}, steps...)
		}
		for _, args := range steps {
			if out, err := git(t, dir, args...); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
		sha, _ := git(t, dir, "rev-parse", "HEAD")
		commits = append(commits, strings.TrimSpace(sha))
	}
	root := t.TempDir()
	if out, err := git(t, root, "clone", "-q", "--bare", dir, filepath.Join(root, "hello.git")); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	repo := httptest.NewServer(&cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	t.Cleanup(repo.Close)

	n := 0
	send := func(sha string) (int, string) {
		t.Helper()
		n++
		body, _ := json.Marshal(map[string]any{
			"ref": "refs/heads/main", "after": sha, "pusher": map[string]any{"name": "octo"},
			"repository": map[string]any{"name": "hello", "full_name": "octo/hello", "default_branch": "main",
				"clone_url": repo.URL + "/hello.git"},
		})
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return call(t, f, "POST", "/hooks/github", string(body), map[string]string{
			"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d" + string(rune('0'+n)),
			"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(m.Sum(nil)),
		})
	}
	running := func() string { return f.apps()["hello"].Commit }
	deploy := func(sha string) {
		t.Helper()
		if code, body := send(sha); code != http.StatusAccepted {
			t.Fatalf("push %s: %d %s", sha[:7], code, body)
		}
		testkit.WaitFor(t, 90*time.Second, "hello running "+sha[:7], func() bool { return running() == sha })
	}
	deploy(commits[0])
	deploy(commits[2])

	if code, body := send(commits[2]); code != 200 || !strings.Contains(body, "is already deployed") {
		t.Errorf("replay of the running commit: %d %s", code, body)
	}
	if code, body := send(commits[0]); code != 200 || !strings.Contains(body, "was deployed before (v1)") || !strings.Contains(body, "flock rollback hello v1") {
		t.Errorf("replay of the commit ran before: %d %s", code, body)
	}
	// Never deployed, but an ancestor of the running commit: git tells.
	if code, body := send(commits[1]); code != http.StatusAccepted {
		t.Fatalf("push of an older commit: %d %s", code, body)
	}
	testkit.WaitFor(t, 60*time.Second, "the older push ignored", func() bool {
		return strings.Contains(f.out.String(), "github push ignored")
	})
	if got := running(); got != commits[2] {
		t.Errorf("running %s after the replays, want %s", got, commits[2])
	}
}
