package acme

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzChallengeHandler sends the handler what anyone on the Internet may
// send to port 80: it must answer 200, with the key authorization, only for
// GET or HEAD of the one pending token's exact path, and never panic.
func FuzzChallengeHandler(f *testing.F) {
	const token, keyAuth = "tok-EN_123", "tok-EN_123.thumbprint"
	for _, seed := range []struct{ method, path string }{
		{"GET", challengePath + token},
		{"HEAD", challengePath + token},
		{"POST", challengePath + token},
		{"GET", challengePath + token + "/"},
		{"GET", challengePath + "../" + token},
		{"GET", "/.well-known/acme-challenge"},
		{"GET", "/" + token},
		{"GET", challengePath},
	} {
		f.Add(seed.method, seed.path)
	}
	t := newTokens()
	if err := t.Present("hello.localhost", token, keyAuth); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(tt *testing.T, method, path string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.URL.Path = method, path
		w := httptest.NewRecorder()
		t.ServeHTTP(w, r)
		exact := path == challengePath+token && (method == http.MethodGet || method == http.MethodHead)
		if (w.Code == http.StatusOK) != exact {
			tt.Fatalf("%s %q: status %d", method, path, w.Code)
		}
		if exact && w.Body.String() != keyAuth {
			tt.Fatalf("%s %q: body %q, want the key authorization", method, path, w.Body.String())
		}
	})
}

// Two Issues given the same token (the CA reused an authorization) share
// it: the first to finish must not withdraw it from the other.
func TestTokensShared(t *testing.T) {
	tk := newTokens()
	tk.Present("a.localhost", "tok", "tok.ka")
	tk.Present("a.localhost", "tok", "tok.ka")
	tk.CleanUp("a.localhost", "tok", "tok.ka")
	if _, ok := tk.get("tok"); !ok {
		t.Fatal("token withdrawn while a second Issue still presents it")
	}
	tk.CleanUp("a.localhost", "tok", "tok.ka")
	if _, ok := tk.get("tok"); ok {
		t.Fatal("token still served after both Issues cleaned up")
	}
}
