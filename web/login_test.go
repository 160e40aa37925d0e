package web

import (
	"strings"
	"testing"
)

// TestLoginHint: the login page names the token file of the data dir in
// use (what flock up printed as token=), not a fixed ~/.flock/token; with
// a token given on the command line it says so instead.
func TestLoginHint(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
		not        string
	}{
		{"token file", "/srv/flock-data/token", []string{"<code>/srv/flock-data/token</code>", "cat /srv/flock-data/token"}, "~/.flock"},
		{"token flag", "", []string{"--token", "FLOCK_TOKEN"}, "~/.flock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(c *Config) { c.TokenFile = tc.file })
			w := do(t, s.Handler(), req{path: "/login"})
			if w.Code != 200 {
				t.Fatalf("GET /login: %d", w.Code)
			}
			body := w.Body.String()
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("login page lacks %q:\n%s", want, body)
				}
			}
			if strings.Contains(body, tc.not) {
				t.Errorf("login page still names %s", tc.not)
			}
		})
	}
}
