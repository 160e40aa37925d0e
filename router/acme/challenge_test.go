package acme_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flock-paas/flock/router/acme"
)

// With no challenge in progress, the handler answers nothing but 404 (and
// 405 to methods other than GET and HEAD), over real HTTP.
func TestChallengeHandlerIdle(t *testing.T) {
	iss, err := acme.New(acme.Config{Email: email, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.ChallengeHandler())
	defer srv.Close()
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/.well-known/acme-challenge/unknown-token", 404},
		{"GET", "/.well-known/acme-challenge/", 404},
		{"GET", "/.well-known/acme-challenge/a/b", 404},
		{"GET", "/", 404},
		{"HEAD", "/.well-known/acme-challenge/unknown-token", 404},
		{"POST", "/.well-known/acme-challenge/unknown-token", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
