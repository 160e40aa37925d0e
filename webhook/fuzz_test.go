package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzGitHubHandler sends arbitrary deliveries, signed or not. The handler
// must never panic, never queue a push without a valid signature, and only
// queue pushes whose clone URL and commit pass the rules.
func FuzzGitHubHandler(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		event := "push"
		if bytes.Contains(b, []byte(`"zen"`)) {
			event = "ping"
		}
		f.Add(event, b, true, "")
		f.Add(event, b, false, "sha256=00")
	}
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"name":"a","full_name":"o/a","default_branch":"main","clone_url":"file:///etc"}}`), true, "")
	g, err := NewGitHub(GitHubConfig{Secret: testSecret, Queue: 4, Logger: discardLogger()}, noDeploy(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, event string, body []byte, signed bool, sig string) {
		r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
		r.Header.Set("X-GitHub-Event", event)
		r.Header.Set("X-Hub-Signature-256", sig)
		if signed {
			r.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		valid := signed || sig == sign(testSecret, body)
		if !valid && w.Code != http.StatusUnauthorized && w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("unsigned delivery answered %d: %s", w.Code, w.Body)
		}
		for len(g.queue) > 0 {
			p := <-g.queue
			g.pending.Add(-1)
			if !valid {
				t.Fatalf("unsigned delivery queued %+v", p)
			}
			if err := checkCloneURL(p.CloneURL); err != nil || !commitRE.MatchString(p.Commit) || p.Name == "" {
				t.Fatalf("queued a push that breaks the rules: %+v (%v)", p, err)
			}
		}
	})
}
