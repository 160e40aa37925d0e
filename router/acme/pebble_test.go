package acme_test

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/router/acme/acmetest"
)

// pebble is a real Pebble ACME server (acmetest) whose VA fetches
// http://<host>:<port>/.well-known/acme-challenge/ from the front server,
// a real HTTP server on loopback whose handler a test sets (the Issuer's
// ChallengeHandler, most of the time).
type pebble struct {
	*acmetest.Pebble

	front atomic.Pointer[http.Handler]

	mu        sync.Mutex
	challenge []string // paths the VA asked the front server for
}

func startPebble(tb testing.TB) *pebble {
	tb.Helper()
	p := &pebble{}
	p.Pebble = acmetest.Start(tb, p.startFront(tb))
	return p
}

// startFront starts the server the VA validates against and returns its
// port. Until a test calls serve, it answers 404.
func (p *pebble) startFront(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.challenge = append(p.challenge, r.URL.Path)
			p.mu.Unlock()
			if h := p.front.Load(); h != nil {
				(*h).ServeHTTP(w, r)
				return
			}
			http.NotFound(w, r)
		}),
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// serve makes h what the VA reaches.
func (p *pebble) serve(h http.Handler) { p.front.Store(&h) }

// validations is how many challenge requests the VA has made.
func (p *pebble) validations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.challenge)
}
