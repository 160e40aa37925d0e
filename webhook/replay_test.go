package webhook

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestGitHubIgnoresDeployedAndOlderCommits: a signed push delivered again
// under a new delivery id must not take the app back. A push of the running
// commit, of a commit deployed before, or of an ancestor of the running
// commit is acknowledged and ignored; a newer commit still deploys.
func TestGitHubIgnoresDeployedAndOlderCommits(t *testing.T) {
	testkit.RequireTools(t, "git")
	work, first := newApp(t, "hello-world")
	second := commit(t, work, "server.js", "// second\n")
	third := commit(t, work, "server.js", "// third\n")
	fourth := commit(t, work, "server.js", "// fourth\n")
	cloneURL := serveRepo(t, work, "")

	// The app's history as Flock's store would tell it.
	var mu sync.Mutex
	current, releases := "", map[string]string{}
	deployed := make(chan string, 4)
	deploy := func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		current = p.Commit
		if releases[p.Commit] == "" {
			releases[p.Commit] = fmt.Sprintf("v%d", len(releases)+1)
		}
		deployed <- p.Commit
		return "http://hello-world.localhost", nil
	}
	var logs testkit.Buffer
	g := newTestGitHub(t, GitHubConfig{
		Secret: testSecret, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Deployed: func(app string) (string, map[string]string) {
			mu.Lock()
			defer mu.Unlock()
			if app != "hello-world" {
				t.Errorf("Deployed asked for %q", app)
			}
			out := map[string]string{}
			for k, v := range releases {
				out[k] = v
			}
			return current, out
		},
	}, deploy)
	runInBackground(t, g.Run)
	n := 0
	send := func(sha string) (int, string) {
		n++
		body := edit(t, fixture(t, "push-branch-master.json"), map[string]any{"repository.clone_url": cloneURL, "after": sha})
		return serve(g, delivery(testSecret, "push", fmt.Sprint("delivery-", n), body))
	}
	mustDeploy := func(t *testing.T, sha string) {
		t.Helper()
		if code, out := send(sha); code != http.StatusAccepted {
			t.Fatalf("push %s: %d %s, want 202", sha[:7], code, out)
		}
		select {
		case got := <-deployed:
			if got != sha {
				t.Fatalf("deployed %s, want %s", got, sha)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("push %s not deployed", sha[:7])
		}
		testkit.WaitFor(t, 5*time.Second, "job done", func() bool { return g.Pending() == 0 })
	}
	mustDeploy(t, second)
	mustDeploy(t, third)

	for _, tc := range []struct {
		name, sha, want string
	}{
		{"running commit", third, "ignored: commit " + third[:7] + " is already deployed"},
		{"commit deployed before", second, "ignored: commit " + second[:7] + " was deployed before (v1) and hello-world has moved on; to run it again: flock rollback hello-world v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := send(tc.sha)
			if code != http.StatusOK || !strings.Contains(out, tc.want) {
				t.Errorf("got %d %s, want 200 %q", code, out, tc.want)
			}
		})
	}

	t.Run("ancestor never deployed", func(t *testing.T) {
		// Only git can tell it is older: it is queued, fetched, compared
		// with the running commit and ignored.
		if code, out := send(first); code != http.StatusAccepted {
			t.Fatalf("got %d %s, want 202", code, out)
		}
		testkit.WaitFor(t, 30*time.Second, "job done", func() bool { return g.Pending() == 0 })
		select {
		case got := <-deployed:
			t.Fatalf("deployed %s, an ancestor of the running commit", got)
		default:
		}
		if !strings.Contains(logs.String(), "github push ignored") || !strings.Contains(logs.String(), "is an ancestor of "+third[:7]) {
			t.Errorf("no log line says why:\n%s", logs.String())
		}
	})

	t.Run("newer commit deploys", func(t *testing.T) {
		mustDeploy(t, fourth)
	})
}
