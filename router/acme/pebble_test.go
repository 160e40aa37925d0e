package acme_test

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// TestMain sets Pebble's switches before any Pebble starts (its VA and WFE
// read them in their constructors): validate at once instead of after a
// random 0–5 s sleep, always validate anew instead of reusing an
// authorization half the time, and reject no good nonce on purpose, so that
// each test and the benchmark see the same, whole exchange every time.
func TestMain(m *testing.M) {
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_AUTHZREUSE", "0")
	os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	os.Exit(m.Run())
}

// pebble is a real Pebble ACME server, run in this process from its
// packages: the WFE serves ACME over HTTPS on 127.0.0.1, its VA looks names
// up in a small DNS server that answers 127.0.0.1 for every name, and so
// fetches http://<host>:<port>/.well-known/acme-challenge/ from the
// front server, a real HTTP server on loopback whose handler a test sets
// (the Issuer's ChallengeHandler, most of the time).
type pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// Roots is the PEM file of the WFE's HTTPS certificate, for
	// Config.CARoots.
	Roots string
	// Root is the CA root that issued certificates chain to.
	Root *x509.Certificate

	db       *db.MemoryStore
	front    atomic.Pointer[http.Handler]
	accounts atomic.Int32 // newAccount requests

	mu        sync.Mutex
	challenge []string // paths the VA asked the front server for
}

func startPebble(tb testing.TB) *pebble {
	tb.Helper()
	p := &pebble{}
	httpPort := p.startFront(tb)
	dnsAddr := startDNS(tb)

	logger := log.New(io.Discard, "", 0)
	p.db = db.NewMemoryStore()
	// ECDSA CA keys: made in microseconds, where RSA takes a good part of
	// a second on a busy machine.
	authority := ca.New(logger, p.db, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	validator := va.New(logger, httpPort, 0, false, dnsAddr, p.db)
	front := wfe.New(logger, p.db, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	handler := front.Handler()

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sign-me-up" && r.Method == http.MethodPost {
			p.accounts.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = logger
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	p.Directory = srv.URL + wfe.DirectoryPath
	p.Root = authority.GetRootCert(0).Cert

	p.Roots = filepath.Join(tb.TempDir(), "pebble-roots.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p.Roots, pemBytes, 0o644); err != nil {
		tb.Fatal(err)
	}
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

// startDNS answers every A question with 127.0.0.1 and every other question
// with no record, over TCP (the VA's custom resolver uses TCP), and returns
// its address.
func startDNS(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	tb.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}
