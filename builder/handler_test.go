package builder

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	b := newBuilder(t, t.TempDir())
	p, err := b.Path("hello", "v3")
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Dir(p), map[string]string{"v3.tar.gz": "slug bytes"})
	writeTree(t, filepath.Dir(b.dir), map[string]string{"secret.tar.gz": "outside the store"})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	stripped := httptest.NewServer(http.StripPrefix("/artifacts", b.Handler()))
	defer stripped.Close()

	tests := []struct {
		name, method, url string
		status            int
		body              string
	}{
		{"slug", "GET", srv.URL + "/artifacts/hello/v3.tar.gz", 200, "slug bytes"},
		{"slug behind StripPrefix", "GET", stripped.URL + "/artifacts/hello/v3.tar.gz", 200, "slug bytes"},
		{"head", "HEAD", srv.URL + "/artifacts/hello/v3.tar.gz", 200, ""},
		{"unknown release", "GET", srv.URL + "/artifacts/hello/v4.tar.gz", 404, `{"error":"no such artifact"}`},
		{"unknown app", "GET", srv.URL + "/artifacts/nope/v3.tar.gz", 404, `{"error":"no such artifact"}`},
		{"bad release", "GET", srv.URL + "/artifacts/hello/latest.tar.gz", 404, `{"error":"no such artifact"}`},
		{"upper case app", "GET", srv.URL + "/artifacts/Hello/v3.tar.gz", 404, `{"error":"no such artifact"}`},
		{"traversal", "GET", srv.URL + "/artifacts/..%2f..%2fsecret/v3.tar.gz", 404, `{"error":"no such artifact"}`},
		{"traversal up", "GET", srv.URL + "/artifacts/hello/..%2F..%2Fsecret.tar.gz", 404, `{"error":"no such artifact"}`},
		{"cache folder", "GET", srv.URL + "/artifacts/.cache/v1.tar.gz", 404, `{"error":"no such artifact"}`},
		{"no suffix", "GET", srv.URL + "/artifacts/hello/v3", 404, `{"error":"no such artifact"}`},
		{"post", "POST", srv.URL + "/artifacts/hello/v3.tar.gz", 405, `{"error":"method not allowed"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || strings.TrimSpace(string(body)) != tt.body {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.url, resp.StatusCode, body, tt.status, tt.body)
			}
			if tt.status == 200 && resp.Header.Get("Content-Type") != "application/gzip" {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
