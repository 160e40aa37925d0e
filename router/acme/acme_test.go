package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/router/acme"
)

const email = "ops@example.com"

func newIssuer(t testing.TB, p *pebble, dir string) *acme.Issuer {
	t.Helper()
	iss, err := acme.New(acme.Config{Email: email, Directory: p.Directory, CARoots: p.Roots, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func issue(t testing.TB, iss *acme.Issuer, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	certPEM, keyPEM, err := iss.Issue(ctx, host)
	if err != nil {
		t.Fatalf("Issue(%s): %v", host, err)
	}
	return certPEM, keyPEM
}

// verify checks what a TLS client would: the key matches the leaf, and the
// leaf chains through the bundled intermediates to Pebble's root for host.
func verify(t testing.TB, p *pebble, host string, certPEM, keyPEM []byte) {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("%s: certificate and key: %v", host, err)
	}
	if len(pair.Certificate) < 2 {
		t.Fatalf("%s: %d certificates in the PEM, want the leaf and its chain", host, len(pair.Certificate))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("%s: certificate does not chain to Pebble's root: %v", host, err)
	}
}

func TestIssue(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	dir := filepath.Join(t.TempDir(), "acme")
	iss := newIssuer(t, p, dir)
	p.serve(iss.ChallengeHandler())

	certPEM, keyPEM := issue(t, iss, "hello.localhost")

	verify(t, p, "hello.localhost", certPEM, keyPEM)
	if p.validations() == 0 {
		t.Error("Pebble's VA never reached the challenge handler")
	}
	for name, want := range map[string]os.FileMode{".": 0o700, "account.key": 0o600, "account.json": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
}

func TestIssueConcurrent(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	iss := newIssuer(t, p, t.TempDir())
	p.serve(iss.ChallengeHandler())

	hosts := []string{"a.localhost", "b.localhost", "c.example.com", "d.example.com"}
	var wg sync.WaitGroup
	certs := make([][2][]byte, len(hosts))
	errs := make([]error, len(hosts))
	for n, h := range hosts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, k, err := iss.Issue(ctx, h)
			certs[n], errs[n] = [2][]byte{c, k}, err
		})
	}
	wg.Wait()
	for n, h := range hosts {
		if errs[n] != nil {
			t.Errorf("Issue(%s): %v", h, errs[n])
			continue
		}
		verify(t, p, h, certs[n][0], certs[n][1])
	}
	if got := p.Accounts(); got != 1 {
		t.Errorf("%d account registrations for concurrent issues, want 1", got)
	}
}

// storedURI reads the account URL from dir's account.json.
func storedURI(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "account.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Registration struct {
			URI string `json:"uri"`
		} `json:"registration"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	return a.Registration.URI
}

func TestIssueReusesAccount(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	dir := t.TempDir()
	first := newIssuer(t, p, dir)
	p.serve(first.ChallengeHandler())
	issue(t, first, "one.localhost")
	uri := storedURI(t, dir)
	key, err := os.ReadFile(filepath.Join(dir, "account.key"))
	if err != nil {
		t.Fatal(err)
	}

	// A new Issuer on the same folder, as after a restart of Flock.
	second := newIssuer(t, p, dir)
	p.serve(second.ChallengeHandler())
	certPEM, keyPEM := issue(t, second, "two.localhost")
	verify(t, p, "two.localhost", certPEM, keyPEM)

	if got := p.Accounts(); got != 1 {
		t.Errorf("%d account registrations, want 1", got)
	}
	if got := storedURI(t, dir); got != uri {
		t.Errorf("account URL changed from %s to %s", uri, got)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "account.key")); string(again) != string(key) {
		t.Error("account key changed")
	}
	if orders := p.DB.GetOrdersByAccountID(path.Base(uri)); len(orders) != 2 {
		t.Errorf("account %s placed %d orders, want both", uri, len(orders))
	}
}

// A new e-mail updates the contact of the same account; it registers no
// second one.
func TestIssueUpdatesEmail(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	dir := t.TempDir()
	first := newIssuer(t, p, dir)
	p.serve(first.ChallengeHandler())
	issue(t, first, "one.localhost")
	uri := storedURI(t, dir)

	second, err := acme.New(acme.Config{Email: "new@example.com", Directory: p.Directory, CARoots: p.Roots, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p.serve(second.ChallengeHandler())
	issue(t, second, "two.localhost")

	if got := p.Accounts(); got != 1 {
		t.Errorf("%d account registrations, want 1", got)
	}
	if got := storedURI(t, dir); got != uri {
		t.Errorf("account URL changed from %s to %s", uri, got)
	}
	acct := p.DB.GetAccountByID(path.Base(uri))
	if acct == nil || len(acct.Contact) != 1 || acct.Contact[0] != "mailto:new@example.com" {
		t.Errorf("account at Pebble: %+v, want contact mailto:new@example.com", acct)
	}
	b, err := os.ReadFile(filepath.Join(dir, "account.json"))
	if err != nil || !strings.Contains(string(b), `"email": "new@example.com"`) {
		t.Errorf("account.json after the change: %s %v", b, err)
	}
}

// A server that no longer knows the stored account (Pebble restarted, a CA
// deleted it) gets the account registered again, and the order goes
// through.
func TestIssueReregistersForgottenAccount(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	dir := t.TempDir()
	iss := newIssuer(t, p, dir)
	p.serve(iss.ChallengeHandler())
	issue(t, iss, "one.localhost")
	uri := storedURI(t, dir)

	file := filepath.Join(dir, "account.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	gone := strings.TrimSuffix(uri, path.Base(uri)) + "999999"
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(b), uri, gone)), 0o600); err != nil {
		t.Fatal(err)
	}

	again := newIssuer(t, p, dir)
	p.serve(again.ChallengeHandler())
	issue(t, again, "two.localhost")
	if got := storedURI(t, dir); got != uri {
		t.Errorf("account URL after registering again: %s, want the key's account %s", got, uri)
	}
}

func TestIssueValidationFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		front      http.Handler
		wantType   string
		wantDetail string
	}{{
		name:       "handler not answering",
		front:      http.NotFoundHandler(),
		wantType:   "urn:ietf:params:acme:error:unauthorized",
		wantDetail: "returned 404",
	}, {
		name: "wrong key authorization",
		front: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "not-the-key-authorization")
		}),
		wantType:   "urn:ietf:params:acme:error:unauthorized",
		wantDetail: "did not match this challenge",
	}, {
		name: "connection dropped",
		front: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}),
		wantType:   "urn:ietf:params:acme:error:connection",
		wantDetail: "EOF",
	}}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startPebble(t)
			iss := newIssuer(t, p, t.TempDir())
			host := fmt.Sprintf("broken%d.localhost", n)
			p.serve(tt.front)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			certPEM, _, err := iss.Issue(ctx, host)

			if err == nil {
				t.Fatalf("Issue(%s) = %d bytes of certificate, want an error", host, len(certPEM))
			}
			var e *acme.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *acme.Error", err, err)
			}
			if e.Host != host || e.Type != tt.wantType || !strings.Contains(e.Detail, tt.wantDetail) {
				t.Errorf("error: host %q, type %q, detail %q; want %q, %q, detail with %q",
					e.Host, e.Type, e.Detail, host, tt.wantType, tt.wantDetail)
			}
			msg := err.Error()
			if !strings.Contains(msg, host) || !strings.Contains(msg, tt.wantDetail) || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line naming %s with the problem detail", msg, host)
			}
		})
	}
}

func TestIssueCancel(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	iss := newIssuer(t, p, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The VA's request arrives: cancel, and hold the request (validation
	// stays pending) until the test ends.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	token := make(chan string, 1)
	var once sync.Once
	p.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			token <- r.URL.Path
			cancel()
		})
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))

	start := time.Now()
	_, _, err := iss.Issue(ctx, "cancel.localhost")
	took := time.Since(start)

	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancel.localhost") {
		t.Fatalf("Issue after cancel: %v, want context.Canceled naming the host", err)
	}
	tokenPath := <-token
	// Issue returned at once; the exchange left behind stops at its next
	// request and withdraws its challenge.
	if took > 10*time.Second {
		t.Errorf("Issue took %s to return after cancel", took)
	}
	testkit.WaitFor(t, 20*time.Second, "the cancelled challenge withdrawn", func() bool {
		return get(iss.ChallengeHandler(), tokenPath) == http.StatusNotFound
	})
}

// get returns the status h answers GET path with.
func get(h http.Handler, path string) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code
}

// Without CARoots, Pebble's HTTPS certificate is not trusted: the error
// names the host and the cause.
func TestIssueUntrustedServer(t *testing.T) {
	t.Parallel()
	p := startPebble(t)
	iss, err := acme.New(acme.Config{Email: email, Directory: p.Directory, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = iss.Issue(context.Background(), "hello.localhost")
	if err == nil || !strings.Contains(err.Error(), "hello.localhost") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Issue against an untrusted server: %v, want a certificate error naming the host", err)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := acme.Config{Email: email, Dir: filepath.Join(dir, "acme")}
	tests := []struct {
		name string
		edit func(*acme.Config)
		want string
	}{
		{"no email", func(c *acme.Config) { c.Email = "" }, "e-mail address is required"},
		{"email with a name", func(c *acme.Config) { c.Email = "Ops <ops@example.com>" }, "not a plain address"},
		{"email without domain", func(c *acme.Config) { c.Email = "ops" }, "not a plain address"},
		{"plain http directory", func(c *acme.Config) { c.Directory = "http://127.0.0.1:14000/dir" }, "not an https:// URL"},
		{"directory without host", func(c *acme.Config) { c.Directory = "https:///dir" }, "not an https:// URL"},
		{"missing roots file", func(c *acme.Config) { c.CARoots = filepath.Join(dir, "nope.pem") }, "no such file"},
		{"roots file without PEM", func(c *acme.Config) { c.CARoots = notPEM }, "no PEM certificate"},
		{"no folder", func(c *acme.Config) { c.Dir = "" }, "no folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			_, err := acme.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := acme.New(good); err != nil {
		t.Fatalf("New(good config): %v", err)
	}
}

// A damaged account file stops New with an error naming it; a damaged key
// is never replaced, since a new key would be a new account.
func TestNewDamagedAccount(t *testing.T) {
	for _, file := range []string{"account.key", "account.json"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, file), []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := acme.New(acme.Config{Email: email, Dir: dir})
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, file)) {
				t.Fatalf("New with a damaged %s: %v, want an error naming it", file, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, file)); string(b) != "garbage" {
				t.Errorf("New replaced a damaged %s", file)
			}
		})
	}
}

func TestIssueRejectsHost(t *testing.T) {
	// A directory nothing listens on: a host that got as far as the
	// network would fail with a connection error instead.
	iss, err := acme.New(acme.Config{Email: email, Directory: "https://127.0.0.1:1/dir", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ host, want string }{
		{"", "no host name"},
		{"127.0.0.1", "IP address"},
		{"*.apps.example.com", "wildcards"},
		{"Hello.example.com", "lower-case"},
		{"hello.example.com:443", "lower-case"},
		{"a..example.com", "empty"},
		{"-a.example.com", "starts or ends with '-'"},
		{strings.Repeat("a", 64) + ".example.com", "longer than 63"},
		{"evil\n.example.com", "lower-case"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			_, _, err := iss.Issue(context.Background(), tt.host)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Issue(%q): %v, want an error with %q", tt.host, err, tt.want)
			}
		})
	}
}
