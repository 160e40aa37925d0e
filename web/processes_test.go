package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestProcessTypesOnTheDashboard: an app's worker instances show on its
// page beside the web ones, named by process type; the API scales a
// process type with {"process": "worker", "instances": N}, and refuses a
// malformed type.
func TestProcessTypesOnTheDashboard(t *testing.T) {
	s, f := newTestServer(t, nil)
	f.mu.Lock()
	f.apps["hello"].Processes = []deploy.Process{{Type: "worker", Command: "node worker.js", Desired: 1,
		Instances: []deploy.Instance{{ID: "hello--worker.v1.abc123", Release: "v1", Healthy: true}}}}
	f.mu.Unlock()
	sc, _ := login(t, s.Handler())
	body := do(t, s.Handler(), req{path: "/apps/hello", cookies: []*http.Cookie{sc}}).Body.String()
	for _, want := range []string{"hello--worker.v1.abc123", `<td data-label="Process">worker</td>`, `<td data-label="Process">web</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
	w := do(t, s.Handler(), req{method: http.MethodPost, path: "/api/v1/apps/hello/scale", token: testToken,
		body: `{"process":"worker","instances":3}`, header: map[string]string{"Content-Type": "application/json"}})
	if w.Code != http.StatusOK {
		t.Fatalf("scale worker: %d %s", w.Code, w.Body.String())
	}
	f.mu.Lock()
	got := f.apps["hello"].Processes[0].Desired
	f.mu.Unlock()
	if got != 3 {
		t.Errorf("worker desired = %d, want 3", got)
	}
	w = do(t, s.Handler(), req{method: http.MethodPost, path: "/api/v1/apps/hello/scale", token: testToken,
		body: `{"process":"../etc","instances":3}`, header: map[string]string{"Content-Type": "application/json"}})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not a process type") {
		t.Errorf("scale of a malformed type: %d %s", w.Code, w.Body.String())
	}
}
