package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestArtifactGuard(t *testing.T) {
	s := newSigner("tok")
	served := ""
	h := s.guard("tok", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = r.URL.Path }))
	signed := s.signURL("http://flock:8080/artifacts/web/v3.tar.gz")
	tests := []struct {
		name, url, remote, auth string
		want                    int
		path                    string
	}{
		{"loopback", "/artifacts/web/v3.tar.gz", "127.0.0.1:5000", "", 200, "/artifacts/web/v3.tar.gz"},
		{"remote without token", "/artifacts/web/v3.tar.gz", "10.1.2.3:5000", "", 401, ""},
		{"remote with token", "/artifacts/web/v3.tar.gz", "10.1.2.3:5000", "Bearer tok", 200, "/artifacts/web/v3.tar.gz"},
		{"remote with wrong token", "/artifacts/web/v3.tar.gz", "10.1.2.3:5000", "Bearer nope", 401, ""},
		{"signed", signed[len("http://flock:8080"):], "10.1.2.3:5000", "", 200, "/artifacts/web/v3.tar.gz"},
		{"signature of another slug", signed[len("http://flock:8080"):len(signed)-len("web/v3.tar.gz")] + "web/v2.tar.gz", "10.1.2.3:5000", "", 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			served = ""
			req := httptest.NewRequest(http.MethodGet, tc.url, nil)
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want || served != tc.path {
				t.Errorf("got %d serving %q, want %d serving %q", w.Code, served, tc.want, tc.path)
			}
		})
	}
}
