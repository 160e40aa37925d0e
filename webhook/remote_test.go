package webhook

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy/testkit"
)

const testToken = "s3cret-token"

// newTestRemote serves a Remote on 127.0.0.1 whose hook is this test
// binary (see TestMain).
func newTestRemote(t testing.TB, deploy DeployFunc) (*Remote, string, string) {
	t.Helper()
	testkit.RequireTools(t, "git")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rm, err := NewRemote(RemoteConfig{
		Dir:         dir,
		Token:       testToken,
		HookCommand: []string{"/usr/bin/env", "FLOCK_TEST_HOOK=1", exe},
		Unpack:      builder.Unpack,
		Logger:      discardLogger(),
	}, deploy)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/git/", rm)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return rm, srv.URL, dir
}

// remoteURL is the URL a user adds as a git remote, token as password.
func remoteURL(base, token, app string) string {
	return strings.Replace(base, "http://", "http://x:"+token+"@", 1) + "/git/" + app + ".git"
}

// push runs git push and hands each line it prints to onLine as it comes.
func push(t testing.TB, dir, url, refspec string, onLine func(string)) (string, error) {
	t.Helper()
	cmd := exec.Command("git", "push", url, refspec)
	cmd.Dir = dir
	cmd.Env = testGitEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r \x1b[K")
		out.WriteString(line + "\n")
		if onLine != nil {
			onLine(line)
		}
	}
	return out.String(), cmd.Wait()
}

func TestRemotePushDeploysAndStreams(t *testing.T) {
	work, sha := newApp(t, "hello")
	seen := make(chan struct{})
	var mu sync.Mutex
	var got Push
	var files []string
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		got = p
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			files = append(files, e.Name())
		}
		fmt.Fprintln(log, "-----> Building hello")
		// Block until the pusher has seen that line: it must stream.
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			return "", errors.New("first line never reached the pusher")
		}
		fmt.Fprintln(log, "-----> Rolling out")
		return "http://hello.localhost:8000", nil
	}
	_, base, reposDir := newTestRemote(t, deploy)
	var once sync.Once
	out, err := push(t, work, remoteURL(base, testToken, "hello"), "main", func(line string) {
		if line == "remote: -----> Building hello" {
			once.Do(func() { close(seen) })
		}
	})
	if err != nil {
		t.Fatalf("git push: %v\n%s", err, out)
	}
	for _, want := range []string{
		"remote: -----> Building hello\nremote: -----> Rolling out\nremote: -----> Deployed hello: http://hello.localhost:8000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := Push{Name: "hello", Ref: "refs/heads/main", Branch: "main", Commit: sha, Pusher: "git push"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Push (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"package.json", "server.js"}, files); diff != "" {
		t.Errorf("deployed tree (-want +got):\n%s", diff)
	}
	if head := git(t, filepath.Join(reposDir, "hello.git"), "rev-parse", "main"); head != sha {
		t.Errorf("remote main = %s, want %s", head, sha)
	}

	// The pushed app can be cloned back with the token.
	clone := filepath.Join(t.TempDir(), "clone")
	git(t, work, "clone", "-q", "--branch", "main", remoteURL(base, testToken, "hello"), clone)
	if head := git(t, clone, "rev-parse", "HEAD"); head != sha {
		t.Errorf("cloned HEAD = %s, want %s", head, sha)
	}
}

func TestRemoteFailedDeployRejectsPush(t *testing.T) {
	work, first := newApp(t, "hello")
	var fail atomic.Bool
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		fmt.Fprintln(log, "-----> Starting instances")
		if fail.Load() {
			return "", errors.New("instances never became healthy")
		}
		return "http://hello.localhost:8000", nil
	}
	_, base, reposDir := newTestRemote(t, deploy)
	url := remoteURL(base, testToken, "hello")
	if out, err := push(t, work, url, "main", nil); err != nil {
		t.Fatalf("first push: %v\n%s", err, out)
	}
	fail.Store(true)
	commit(t, work, "server.js", "process.exit(1)\n")
	out, err := push(t, work, url, "main", nil)
	if err == nil {
		t.Fatalf("git push of a failing deploy succeeded:\n%s", out)
	}
	for _, want := range []string{
		"remote: -----> Starting instances",
		"remote:  !     Deploy failed: instances never became healthy",
		"pre-receive hook declined",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if head := git(t, filepath.Join(reposDir, "hello.git"), "rev-parse", "main"); head != first {
		t.Errorf("remote main moved to %s after a failed deploy, want %s", head, first)
	}
}

func TestRemoteRejectsOtherRefs(t *testing.T) {
	work, _ := newApp(t, "hello")
	var called atomic.Bool
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		called.Store(true)
		return "", nil
	}
	_, base, _ := newTestRemote(t, deploy)
	url := remoteURL(base, testToken, "hello")
	git(t, work, "tag", "v1")
	tests := []struct {
		name, refspec, want string
	}{
		{"other branch", "main:feature", "Flock deploys the branch main (or master), not refs/heads/feature"},
		{"tag", "v1", "not refs/tags/v1"},
		{"two branches", "main:main main:master", "Push one branch at a time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("git", append([]string{"push", url}, strings.Fields(tt.refspec)...)...)
			cmd.Dir, cmd.Env = work, testGitEnv()
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("push %s succeeded:\n%s", tt.refspec, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
	if called.Load() {
		t.Error("DeployFunc called for a refused push")
	}
}

func TestRemoteLargePush(t *testing.T) {
	// Packs over 1 MiB come chunked, which net/http/cgi refuses unless spooled.
	work, _ := newApp(t, "big")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	sha := commit(t, work, "data.bin", string(blob))
	var size atomic.Int64
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		fi, err := os.Stat(filepath.Join(dir, "data.bin"))
		if err != nil {
			return "", err
		}
		size.Store(fi.Size())
		return "http://big.localhost", nil
	}
	_, base, _ := newTestRemote(t, deploy)
	if out, err := push(t, work, remoteURL(base, testToken, "big"), "main", nil); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if size.Load() != int64(len(blob)) {
		t.Errorf("deployed data.bin has %d bytes, want %d (commit %s)", size.Load(), len(blob), sha)
	}
}

func TestRemoteHTTP(t *testing.T) {
	_, base, _ := newTestRemote(t, func(context.Context, Push, string, io.Writer) (string, error) {
		t.Error("DeployFunc called")
		return "", nil
	})
	tests := []struct {
		name, method, path, user, pass string
		header                         map[string]string
		want                           int
	}{
		{name: "no token", path: "/git/hello.git/info/refs?service=git-receive-pack", want: 401},
		{name: "wrong token", path: "/git/hello.git/info/refs?service=git-receive-pack", user: "x", pass: "nope", want: 401},
		{name: "bad app name", path: "/git/Hello_World.git/info/refs?service=git-receive-pack", user: "x", pass: testToken, want: 400},
		{name: "leading dash", path: "/git/-x.git/info/refs", user: "x", pass: testToken, want: 400},
		{name: "not a repository", path: "/git/hello/info/refs", user: "x", pass: testToken, want: 404},
		{name: "fetch before any push", path: "/git/nothing.git/info/refs?service=git-upload-pack", user: "x", pass: testToken, want: 404},
		{name: "hook call without secret", method: "POST", path: "/git/hello.git/flock-deploy", want: 403},
		{name: "hook call with made-up secret", method: "POST", path: "/git/hello.git/flock-deploy",
			header: map[string]string{hookSecretHeader: "abc"}, want: 403},
		{name: "token as bearer", path: "/git/hello.git/info/refs?service=git-receive-pack",
			header: map[string]string{"Authorization": "Bearer " + testToken}, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, base+tt.path, strings.NewReader(""))
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate: git would not ask for the token")
			}
		})
	}
}

func TestRemoteRefusesDotDot(t *testing.T) {
	// Clients clean such paths; a hand-made request must not reach another repository.
	rm, _, _ := newTestRemote(t, noDeploy(t))
	r := httptest.NewRequest(http.MethodGet, "/git/hello.git/../other.git/info/refs", nil)
	r.SetBasicAuth("x", testToken)
	if code, body := serve(rm, r); code != http.StatusBadRequest {
		t.Errorf("got %d %s, want 400", code, body)
	}
}

func TestRemoteWrongTokenPush(t *testing.T) {
	work, _ := newApp(t, "hello")
	_, base, reposDir := newTestRemote(t, func(context.Context, Push, string, io.Writer) (string, error) {
		t.Error("DeployFunc called")
		return "", nil
	})
	out, err := push(t, work, remoteURL(base, "wrong", "hello"), "main", nil)
	if err == nil {
		t.Fatalf("push with a wrong token succeeded:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(reposDir, "hello.git")); err == nil {
		t.Error("a push with a wrong token created a repository")
	}
}

func TestHookScriptQuotes(t *testing.T) {
	got := string(hookScript([]string{"/opt/my flock/flock", "git-hook", "it's"}))
	want := "#!/bin/sh\n# Installed by Flock: deploys the pushed commit and streams the log back.\n" +
		`exec '/opt/my flock/flock' 'git-hook' 'it'\''s' "$@"` + "\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook script (-want +got):\n%s", diff)
	}
}

func TestRemoteHookWithoutFlock(t *testing.T) {
	// Run outside a push through Flock, the hook refuses rather than skip the deploy.
	t.Setenv("FLOCK_HOOK_URL", "")
	var out strings.Builder
	if code := HookMain(nil, strings.NewReader(""), &out, io.Discard); code == 0 {
		t.Errorf("HookMain without FLOCK_HOOK_URL returned 0")
	}
	if !strings.Contains(out.String(), "/git/<app>.git") {
		t.Errorf("no hint in %q", out.String())
	}
}

func TestRemotePusherLeavingCancelsDeploy(t *testing.T) {
	work, _ := newApp(t, "hello")
	started := make(chan struct{})
	cancelled := make(chan struct{})
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		fmt.Fprintln(log, "-----> Building")
		close(started)
		select {
		case <-ctx.Done():
			close(cancelled)
			return "", ctx.Err()
		case <-time.After(30 * time.Second):
			return "", errors.New("never cancelled")
		}
	}
	_, base, _ := newTestRemote(t, deploy)
	cmd := exec.Command("git", "push", remoteURL(base, testToken, "hello"), "main")
	cmd.Dir, cmd.Env = work, testGitEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // the pusher presses Ctrl-C
	cmd.Wait()
	select {
	case <-cancelled:
	case <-time.After(20 * time.Second):
		t.Fatal("deploy not cancelled after the pusher left")
	}
}
