package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testSecret = "It's a Secret to Everybody"

func noDeploy(t testing.TB) DeployFunc {
	return func(context.Context, Push, string, io.Writer) (string, error) {
		t.Error("DeployFunc called")
		return "", nil
	}
}

func newTestGitHub(t testing.TB, cfg GitHubConfig, deploy DeployFunc) *GitHub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	g, err := NewGitHub(cfg, deploy)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// serve sends r to h and returns the status and body.
func serve(h http.Handler, r *http.Request) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// edit rewrites fields of a JSON payload: keys are dotted paths.
func edit(t testing.TB, body []byte, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		obj := m
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			obj = obj[p].(map[string]any)
		}
		obj[parts[len(parts)-1]] = v
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGitHubDocumentedTestVector(t *testing.T) {
	// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := sign(testSecret, []byte("Hello, World!")); got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret}, noDeploy(t))
	r := delivery("", "ping", "1", []byte("Hello, World!"))
	r.Header.Set("X-Hub-Signature-256", want)
	// The signature passes; the body is not JSON, so 400, not 401.
	if code, body := serve(g, r); code != http.StatusBadRequest {
		t.Errorf("status %d (%s), want 400", code, body)
	}
}

func TestGitHubFixtures(t *testing.T) {
	tests := []struct {
		file, event string
		want        int
		wantBody    string
	}{
		{"ping.json", "ping", 200, "pong"},
		{"ping-organization.json", "ping", 200, "pong"},
		{"push-branch-master.json", "push", 202, `"app":"hello-world","commit":"199eddf46df50de8d02e99bf1c5fdb4101338224"`},
		{"push-branch-create-with-installation.json", "push", 202, `"commit":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"`},
		{"push-branch-create.json", "push", 200, "ignored: push to branch feature-branch; Flock deploys master"},
		{"push-branch-delete.json", "push", 200, "ignored: branch feature-branch was deleted"},
		{"push-tag-create.json", "push", 200, "ignored: tag push refs/tags/v0.0.1"},
		{"push-tag-delete.json", "push", 200, "ignored: tag push refs/tags/simple-tag"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			g := newTestGitHub(t, GitHubConfig{Secret: testSecret}, noDeploy(t))
			code, body := serve(g, delivery(testSecret, tt.event, "d-"+tt.file, fixture(t, tt.file)))
			if code != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.want, tt.wantBody)
			}
			wantPending := 0
			if tt.want == 202 {
				wantPending = 1
			}
			if g.Pending() != wantPending {
				t.Errorf("Pending = %d, want %d", g.Pending(), wantPending)
			}
		})
	}
}

func TestGitHubRefuses(t *testing.T) {
	push := fixture(t, "push-branch-master.json")
	withURL := func(u string) []byte { return edit(t, push, map[string]any{"repository.clone_url": u}) }
	tests := []struct {
		name   string
		cfg    GitHubConfig
		req    func() *http.Request
		want   int
		reason string
	}{
		{"no secret configured", GitHubConfig{}, func() *http.Request { return delivery(testSecret, "push", "1", push) },
			503, "--github-secret"},
		{"unsigned", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery("", "push", "1", push) },
			401, "missing"},
		{"wrong secret", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery("other", "push", "1", push) },
			401, "bad signature"},
		{"sha1 only", GitHubConfig{Secret: testSecret}, func() *http.Request {
			r := delivery("", "push", "1", push)
			r.Header.Set("X-Hub-Signature", "sha1=0123")
			return r
		}, 401, "missing"},
		{"body changed after signing", GitHubConfig{Secret: testSecret}, func() *http.Request {
			r := delivery(testSecret, "push", "1", push)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(push), "Codertocat", "Attacker", 1)))
			return r
		}, 401, "bad signature"},
		{"oversized", GitHubConfig{Secret: testSecret, MaxBody: 1024}, func() *http.Request { return delivery(testSecret, "push", "1", push) },
			413, "larger than 1024"},
		{"malformed json", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery(testSecret, "push", "1", []byte(`{"ref": `)) },
			400, "unexpected end of JSON input"},
		{"unknown event", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery(testSecret, "bogus", "1", []byte(`{}`)) },
			400, "bogus"},
		{"unhandled event", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery(testSecret, "issues", "1", []byte(`{}`)) },
			400, "Flock handles push and ping"},
		{"file clone url", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery(testSecret, "push", "1", withURL("file:///etc")) },
			400, "clone_url must be"},
		{"local path clone url", GitHubConfig{Secret: testSecret}, func() *http.Request { return delivery(testSecret, "push", "1", withURL("/srv/repo.git")) },
			400, "clone_url must be"},
		{"ext clone url", GitHubConfig{Secret: testSecret}, func() *http.Request {
			return delivery(testSecret, "push", "1", withURL("ext::sh -c touch% /tmp/pwned"))
		}, 400, "clone_url must be"},
		{"bad after", GitHubConfig{Secret: testSecret}, func() *http.Request {
			return delivery(testSecret, "push", "1", edit(t, push, map[string]any{"after": "--upload-pack=x"}))
		}, 400, "not a commit id"},
		{"GET", GitHubConfig{Secret: testSecret}, func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/hooks/github", nil)
		}, 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGitHub(t, tt.cfg, noDeploy(t))
			code, body := serve(g, tt.req())
			if code != tt.want || !strings.Contains(body, tt.reason) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.want, tt.reason)
			}
			if !strings.HasPrefix(body, `{"error":`) {
				t.Errorf("body %s is not a JSON error", body)
			}
			if g.Pending() != 0 {
				t.Errorf("a refused delivery was queued")
			}
		})
	}
}

func TestGitHubFormContentType(t *testing.T) {
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret}, noDeploy(t))
	body := []byte("payload=" + strings.ReplaceAll(string(fixture(t, "ping.json")), "&", "%26"))
	r := delivery(testSecret, "ping", "1", body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, out := serve(g, r); code != 200 {
		t.Errorf("got %d %s, want 200", code, out)
	}
}

func TestGitHubReplayDeploysOnce(t *testing.T) {
	body := fixture(t, "push-branch-master.json")
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret}, noDeploy(t))
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			code, _ := serve(g, delivery(testSecret, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body))
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if diff := cmp.Diff(map[int]int{202: 1, 200: 19}, codes); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	_, out := serve(g, delivery(testSecret, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", body))
	if !strings.Contains(out, "ignored: delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 was already received") {
		t.Errorf("replay answered %s", out)
	}
	if g.Pending() != 1 {
		t.Errorf("Pending = %d, want 1", g.Pending())
	}
}

func TestGitHubBranchOverride(t *testing.T) {
	body := fixture(t, "push-branch-master.json")
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Branch: func(repo string) string {
		if repo == "Codertocat/Hello-World" {
			return "production"
		}
		return ""
	}}, noDeploy(t))
	code, out := serve(g, delivery(testSecret, "push", "1", body))
	if code != 200 || !strings.Contains(out, "ignored: push to branch master; Flock deploys production") {
		t.Errorf("got %d %s", code, out)
	}
}

func TestGitHubQueueFull(t *testing.T) {
	body := fixture(t, "push-branch-master.json")
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, Queue: 1}, noDeploy(t))
	if code, out := serve(g, delivery(testSecret, "push", "a", body)); code != 202 {
		t.Fatalf("got %d %s", code, out)
	}
	if code, out := serve(g, delivery(testSecret, "push", "b", body)); code != 503 {
		t.Fatalf("got %d %s, want 503", code, out)
	}
	// GitHub's redelivery of b must not count as a replay.
	<-g.queue
	if code, out := serve(g, delivery(testSecret, "push", "b", body)); code != 202 {
		t.Errorf("redelivery got %d %s, want 202", code, out)
	}
}
