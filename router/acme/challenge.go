package acme

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/go-acme/lego/v4/challenge"
)

// challengePath is where an ACME server fetches an HTTP-01 key authorization
// (RFC 8555, section 8.3).
const challengePath = "/.well-known/acme-challenge/"

// tokens holds the HTTP-01 challenges in progress, token → key
// authorization, for every Issue of one Issuer. lego calls Present before it
// asks the server to validate and CleanUp when the validation is over; the
// handler answers from the map in between. Memory is enough: a challenge
// lives for seconds and is begun again after a restart.
type tokens struct {
	mu sync.Mutex
	m  map[string]*pending
}

// pending is one token's key authorization. n counts the Issues presenting
// it: two orders for the same host may be handed the same authorization (and
// token) by the server, and the first to finish must not pull it from under
// the other.
type pending struct {
	keyAuth string
	n       int
}

func newTokens() *tokens {
	return &tokens{m: make(map[string]*pending)}
}

// Present makes token answerable. It implements challenge.Provider.
func (t *tokens) Present(_, token, keyAuth string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.m[token]; ok {
		p.n++
		return nil
	}
	t.m[token] = &pending{keyAuth: keyAuth, n: 1}
	return nil
}

// CleanUp forgets token once no Issue needs it. It implements
// challenge.Provider.
func (t *tokens) CleanUp(_, token, _ string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.m[token]; ok {
		p.n--
		if p.n <= 0 {
			delete(t.m, token)
		}
	}
	return nil
}

func (t *tokens) get(token string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[token]
	if !ok {
		return "", false
	}
	return p.keyAuth, true
}

// ServeHTTP answers GET /.well-known/acme-challenge/<token> with the key
// authorization of a pending challenge, and 404 for anything else. It does
// not compare the Host header with the challenge's host: the token is a
// random value the server chose and the key authorization is no secret (the
// server reads it over plain HTTP), so a match on the token alone is what
// RFC 8555 asks for, and a proxy that rewrites Host cannot break it.
func (t *tokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, challengePath)
	if !ok || token == "" || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	keyAuth, ok := t.get(token)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, keyAuth)
}

var _ challenge.Provider = (*tokens)(nil)
