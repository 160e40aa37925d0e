package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
)

// fakeGitHubAPI plays the GitHub API's commit status endpoint.
type fakeGitHubAPI struct {
	mu       sync.Mutex
	statuses []sentStatus
}

type sentStatus struct {
	Path, Auth                             string
	State, Description, Context, TargetURL string
}

func (f *fakeGitHubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var s struct {
		State       string `json:"state"`
		Description string `json:"description"`
		Context     string `json:"context"`
		TargetURL   string `json:"target_url"`
	}
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&s) != nil {
		http.Error(w, "bad", 400)
		return
	}
	f.mu.Lock()
	f.statuses = append(f.statuses, sentStatus{r.URL.Path, r.Header.Get("Authorization"), s.State, s.Description, s.Context, s.TargetURL})
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(`{}`))
}

func (f *fakeGitHubAPI) sent() []sentStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentStatus(nil), f.statuses...)
}

func TestGitHubDeploysExactCommitAndReports(t *testing.T) {
	testkit.RequireTools(t, "git")
	const token = "ghp_testtoken"
	work, first := newApp(t, "hello-world")
	second := commit(t, work, "server.js", "// second\n")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
	cloneURL := serveRepo(t, work, basic) // private: needs the token
	api := &fakeGitHubAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	type deployed struct {
		Push   Push
		Server string
		HasGit bool
	}
	results := make(chan deployed, 2)
	fail := map[string]bool{second: true}
	var dirs []string // written by the worker before it sends on results
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		b, _ := os.ReadFile(filepath.Join(dir, "server.js"))
		_, err := os.Stat(filepath.Join(dir, ".git"))
		dirs = append(dirs, dir)
		results <- deployed{p, string(b), err == nil}
		if fail[p.Commit] {
			return "", errors.New("instances never became healthy")
		}
		return "http://hello-world.localhost:8000", nil
	}
	g := newTestGitHub(t, GitHubConfig{
		Secret: testSecret, Token: token, APIURL: apiSrv.URL, DashboardURL: "http://flock.example:8080/",
	}, deploy)
	runInBackground(t, g.Run)

	for i, sha := range []string{first, second} {
		body := edit(t, fixture(t, "push-branch-master.json"), map[string]any{
			"repository.clone_url": cloneURL, "after": sha,
		})
		if code, out := serve(g, delivery(testSecret, "push", fmt.Sprint("delivery-", i), body)); code != 202 {
			t.Fatalf("push %d: got %d %s", i, code, out)
		}
		var got deployed
		select {
		case got = <-results:
		case <-time.After(30 * time.Second):
			t.Fatal("DeployFunc not called")
		}
		want := deployed{
			Push: Push{Delivery: fmt.Sprint("delivery-", i), Repo: "Codertocat/Hello-World", Name: "hello-world",
				CloneURL: cloneURL, Ref: "refs/heads/master", Branch: "master", Commit: sha, Pusher: "Codertocat"},
			Server: "require('http').createServer((q, s) => s.end('hello\\n')).listen(process.env.PORT)\n",
		}
		if sha == second {
			want.Server = "// second\n"
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("push %d deployed (-want +got):\n%s", i, diff)
		}
		testkit.WaitFor(t, 20*time.Second, "final commit status", func() bool { return len(api.sent()) == 2*(i+1) })
	}
	testkit.WaitFor(t, 5*time.Second, "jobs done", func() bool { return g.Pending() == 0 })
	path := func(sha string) string { return "/api/v3/repos/Codertocat/Hello-World/statuses/" + sha }
	target := "http://flock.example:8080/apps/hello-world"
	want := []sentStatus{
		{path(first), "Bearer " + token, "pending", "Flock is deploying hello-world", "flock", target},
		{path(first), "Bearer " + token, "success", "Deployed to http://hello-world.localhost:8000", "flock", target},
		{path(second), "Bearer " + token, "pending", "Flock is deploying hello-world", "flock", target},
		{path(second), "Bearer " + token, "failure", "Deploy failed: instances never became healthy", "flock", target},
	}
	if diff := cmp.Diff(want, api.sent()); diff != "" {
		t.Errorf("statuses sent to GitHub (-want +got):\n%s", diff)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("checkout %s left behind", d)
		}
	}
}

func TestGitHubFetchFailureReported(t *testing.T) {
	testkit.RequireTools(t, "git")
	const token = "ghp_never_in_logs"
	api := &fakeGitHubAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(gone.Close)
	var logs testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Token: token, APIURL: apiSrv.URL, Logger: logger}, noDeploy(t))
	runInBackground(t, g.Run)
	body := edit(t, fixture(t, "push-branch-master.json"), map[string]any{"repository.clone_url": gone.URL + "/x.git"})
	if code, out := serve(g, delivery(testSecret, "push", "1", body)); code != 202 {
		t.Fatalf("got %d %s", code, out)
	}
	testkit.WaitFor(t, 20*time.Second, "2 commit statuses", func() bool { return len(api.sent()) == 2 })
	final := api.sent()[1]
	if final.State != "failure" || !strings.Contains(final.Description, "git fetch") {
		t.Errorf("final status %+v, want a failure naming git fetch", final)
	}
	testkit.WaitFor(t, 5*time.Second, "job done", func() bool { return g.Pending() == 0 })
	if strings.Contains(logs.String(), token) || strings.Contains(final.Description, token) {
		t.Errorf("the token leaked into the log or the status:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "github push failed") {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
}

func TestGitHubAnswersWhileDeploying(t *testing.T) {
	body := fixture(t, "push-branch-master.json")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Workers: 1}, func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "http://x.localhost", nil
	})
	g.fetch = fetchIntoTemp(t)
	runInBackground(t, g.Run)
	for i := range 5 {
		if code, out := serve(g, delivery(testSecret, "push", fmt.Sprint(i), body)); code != 202 {
			t.Fatalf("delivery %d while a deploy runs: %d %s", i, code, out)
		}
	}
	if g.Pending() != 5 {
		t.Errorf("Pending = %d, want 5", g.Pending())
	}
}

func TestCheckCloneURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://github.com/o/r.git", true},
		{"http://127.0.0.1:9/o/r.git", true},
		{"ssh://git@github.com/o/r.git", true},
		{"git@github.com:o/r.git", true},
		{"file:///etc/passwd", false},
		{"/srv/git/r.git", false},
		{"../r.git", false},
		{"ext::sh -c id", false},
		{"fd::3", false},
		{"git://github.com/o/r.git", false},
		{"ssh://-oProxyCommand=id/x", false},
		{"-oProxyCommand=id@host:x", false},
		{"https://", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if err := checkCloneURL(tt.url); (err == nil) != tt.ok {
				t.Errorf("checkCloneURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	tests := map[string]string{
		"Hello-World":                  "hello-world",
		"Hello_World.js":               "hello-world-js",
		"--x--":                        "x",
		"...":                          "",
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	}
	for in, want := range tests {
		if got := defaultName(in); got != want || (got != "" && !validName(got)) {
			t.Errorf("defaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuthHeaderOnlyToGitHub(t *testing.T) {
	g := newTestGitHub(t, GitHubConfig{Token: "tok", APIURL: "https://ghe.example.com"}, noDeploy(t))
	tests := []struct {
		url  string
		sent bool
	}{
		{"https://github.com/o/r.git", true},
		{"https://ghe.example.com/o/r.git", true},
		{"http://ghe.example.com/o/r.git", false}, // clear text over the network
		{"https://evil.example.com/o/r.git", false},
		{"git@github.com:o/r.git", false},
	}
	for _, tt := range tests {
		if got := g.authHeader(tt.url) != ""; got != tt.sent {
			t.Errorf("authHeader(%q) sent=%v, want %v", tt.url, got, tt.sent)
		}
	}
}

func TestGitHubOneDeployPerRepoAndSupersede(t *testing.T) {
	master := fixture(t, "push-branch-master.json")
	other := edit(t, master, map[string]any{"repository.full_name": "Codertocat/Other", "repository.name": "Other"})
	sha := func(c byte) string { return strings.Repeat(string(c), 40) }
	api := &fakeGitHubAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Token: "t", APIURL: apiSrv.URL},
		func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
			mu.Lock()
			order = append(order, p.Name+"@"+p.Commit[:1])
			mu.Unlock()
			if p.Commit == sha('1') {
				<-release // the first push of hello-world takes long
			}
			return "http://x.localhost", nil
		})
	g.fetch = fetchIntoTemp(t)
	deployed := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), order...)
	}
	runInBackground(t, g.Run)

	send := func(body []byte, c byte) {
		t.Helper()
		b := edit(t, body, map[string]any{"after": sha(c)})
		if code, out := serve(g, delivery(testSecret, "push", "d"+string(c), b)); code != 202 {
			t.Fatalf("push %c: %d %s", c, code, out)
		}
	}
	send(master, '1')
	testkit.WaitFor(t, 10*time.Second, "first deploy", func() bool { return len(deployed()) == 1 })
	send(master, '2') // parked behind 1
	send(master, '3') // supersedes 2
	send(other, '4')  // another repository: not held up by hello-world
	testkit.WaitFor(t, 10*time.Second, "other repository deployed", func() bool { return len(deployed()) == 2 })
	close(release)
	testkit.WaitFor(t, 10*time.Second, "all done", func() bool { return g.Pending() == 0 })
	if diff := cmp.Diff([]string{"hello-world@1", "other@4", "hello-world@3"}, deployed()); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	var superseded []sentStatus
	for _, s := range api.sent() {
		if s.State == "error" {
			superseded = append(superseded, s)
		}
	}
	if len(superseded) != 1 || !strings.HasSuffix(superseded[0].Path, sha('2')) ||
		superseded[0].Description != "Superseded by a newer push (3333333)" {
		t.Errorf("superseded statuses: %+v", superseded)
	}
}
