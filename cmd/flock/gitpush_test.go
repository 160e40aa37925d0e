package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// git runs git in dir with a clean, prompt-free environment.
func git(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestGitPushDeploys: `git push` to Flock's remote deploys, the build log
// streams back as remote: lines ending with the URL, and a push whose
// release cannot start is rejected while the old release keeps serving.
// The repository is made with git's own defaults (`git init`: master on
// Debian's git 2.39, main where init.defaultBranch says so) and pushed
// with the README's line, `git push flock HEAD:main`, then by the local
// branch's own name: main and master both deploy.
func TestGitPushDeploys(t *testing.T) {
	testkit.RequireTools(t, "git")
	f := newFlock(t)
	f.start()
	dir := copyExample(t, "hello")
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-qm", "first"}} {
		if out, err := git(t, dir, args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	remote := "http://flock:" + f.token() + "@" + f.api + "/git/pushed.git"

	git(t, dir, "remote", "add", "flock", remote)
	out, err := git(t, dir, "push", "flock", "HEAD:main")
	if err != nil {
		t.Fatalf("git push: %v\n%s\nflock:\n%s", err, out, f.out.String())
	}
	if !strings.Contains(out, "remote:") || !strings.Contains(out, "http://pushed.localhost:") {
		t.Errorf("push output lacks the streamed log and URL:\n%s", out)
	}
	if code, body, _ := f.get("pushed.localhost"); code != 200 || !strings.Contains(body, "Hello from Flock") {
		t.Fatalf("pushed app: %d %q", code, body)
	}

	// A broken commit is rejected and v1 keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "server.js"), []byte("process.exit(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "commit", "-qam", "broken")
	branch, _ := git(t, dir, "branch", "--show-current")
	out, err = git(t, dir, "push", "flock", strings.TrimSpace(branch))
	if err == nil {
		t.Errorf("push of a broken release was accepted:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "deploy failed") {
		t.Errorf("push of branch %q was not deployed (want a failed deploy):\n%s", strings.TrimSpace(branch), out)
	}
	if code, _, _ := f.get("pushed.localhost"); code != 200 {
		t.Errorf("old release stopped serving after a rejected push: %d", code)
	}

	// Without the token: refused.
	out, err = git(t, dir, "push", "http://"+f.api+"/git/pushed.git", "main")
	if err == nil {
		t.Errorf("push without the token was accepted:\n%s", out)
	}
}
