package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestGitHubDeployPanic: a panic in the deploy of a GitHub push fails that
// push (reported to GitHub naming the panic); the worker lives on and the
// next push deploys.
func TestGitHubDeployPanic(t *testing.T) {
	testkit.RequireTools(t, "git")
	work, first := newApp(t, "hello-world")
	second := commit(t, work, "server.js", "// second\n")
	cloneURL := serveRepo(t, work, "")
	api := &fakeGitHubAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	var calls atomic.Int64
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		if calls.Add(1) == 1 {
			var m map[string]int
			m["boom"]++
		}
		return "http://hello-world.localhost:8000", nil
	}
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Token: "ghp_test", APIURL: apiSrv.URL, Logger: discardLogger()}, deploy)
	runInBackground(t, g.Run)
	for i, sha := range []string{first, second} {
		body := edit(t, fixture(t, "push-branch-master.json"), map[string]any{"repository.clone_url": cloneURL, "after": sha})
		if code, out := serve(g, delivery(testSecret, "push", fmt.Sprint("delivery-", i), body)); code != 202 {
			t.Fatalf("push %d: got %d %s", i+1, code, out)
		}
		testkit.WaitFor(t, 20*time.Second, "the push's final status", func() bool { return len(api.sent()) == 2*(i+1) })
	}
	sent := api.sent()
	if s := sent[1]; s.State != "failure" || !strings.Contains(s.Description, "panic") {
		t.Errorf("status of the push whose deploy panicked: %+v, want a failure naming the panic", s)
	}
	if s := sent[3]; s.State != "success" {
		t.Errorf("status of the next push: %+v, want success", s)
	}
}
