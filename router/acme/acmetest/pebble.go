// Package acmetest runs a real Pebble, Let's Encrypt's ACME test server, in
// the test process from its Go packages, for the tests of router/acme and
// the end-to-end tests of cmd/flock. It is for tests only.
package acmetest

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
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Pebble is a real Pebble ACME server: its WFE serves ACME over HTTPS on
// 127.0.0.1, and its VA looks names up in a small DNS server that answers
// 127.0.0.1 for every name (but those made Unresolvable), so that it
// fetches http://<host>:<HTTPPort>/.well-known/acme-challenge/ over real
// loopback HTTP: a test's own server, or Flock's HAProxy.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// Roots is the PEM file of the WFE's HTTPS certificate, for
	// acme.Config.CARoots (--acme-ca-roots).
	Roots string
	// Root is the CA root that issued certificates chain to.
	Root *x509.Certificate
	// DB is Pebble's store, for tests that look at accounts and orders.
	DB *db.MemoryStore

	accounts atomic.Int32 // newAccount requests
	orders   atomic.Int32 // newOrder requests

	mu           sync.Mutex
	unresolvable map[string]bool // names the DNS server has no address for
}

// Start sets Pebble's switches and starts it; its VA validates HTTP-01 on
// httpPort. The switches are set in the process environment, before any
// Pebble reads them in its constructors: validate at once instead of after
// a random 0–5 s sleep, always validate anew instead of reusing an
// authorization half the time, and reject no good nonce on purpose, so
// that each test sees the same, whole exchange every time.
func Start(tb testing.TB, httpPort int) *Pebble {
	tb.Helper()
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_AUTHZREUSE", "0")
	os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	p := &Pebble{unresolvable: map[string]bool{}}
	dnsAddr := p.startDNS(tb)

	logger := log.New(io.Discard, "", 0)
	p.DB = db.NewMemoryStore()
	// ECDSA CA keys: made in microseconds, where RSA takes a good part of
	// a second on a busy machine.
	authority := ca.New(logger, p.DB, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	validator := va.New(logger, httpPort, 0, false, dnsAddr, p.DB)
	front := wfe.New(logger, p.DB, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	handler := front.Handler()

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case "/sign-me-up":
				p.accounts.Add(1)
			case "/order-plz":
				p.orders.Add(1)
			}
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

// Accounts is how many new-account requests Pebble has had.
func (p *Pebble) Accounts() int { return int(p.accounts.Load()) }

// Orders is how many new-order requests Pebble has had: one per
// certificate asked for.
func (p *Pebble) Orders() int { return int(p.orders.Load()) }

// RootPool is a pool holding Root alone, for a TLS client that must trust
// Pebble's certificates and nothing else.
func (p *Pebble) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// Unresolvable makes host a name the DNS server has no address for, so
// that its validation fails with a "dns" problem.
func (p *Pebble) Unresolvable(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unresolvable[strings.ToLower(strings.TrimSuffix(host, "."))] = true
}

func (p *Pebble) resolves(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.unresolvable[strings.ToLower(strings.TrimSuffix(name, "."))]
}

// startDNS answers every A question with 127.0.0.1 (none for an
// Unresolvable name) and every other question with no record, over TCP
// (the VA's custom resolver uses TCP), and returns its address.
func (p *Pebble) startDNS(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA && p.resolves(question.Name) {
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
