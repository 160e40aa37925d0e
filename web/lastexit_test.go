package web

import (
	"net/http"
	"strings"
	"testing"
)

// TestAppPageSaysWhyAnInstanceRestarted: an instance the kernel killed for
// its memory says so on the app's page.
func TestAppPageSaysWhyAnInstanceRestarted(t *testing.T) {
	s, f := newTestServer(t, nil)
	f.mu.Lock()
	f.apps["hello"].Instances[0].LastExit = "out of memory (limit 64 MiB)"
	f.mu.Unlock()
	sc, _ := login(t, s.Handler())
	body := do(t, s.Handler(), req{path: "/apps/hello", cookies: []*http.Cookie{sc}}).Body.String()
	if want := "restarted after out of memory (limit 64 MiB)"; !strings.Contains(body, want) {
		t.Errorf("app page lacks %q", want)
	}
}
