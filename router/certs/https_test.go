package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router"
)

// TestLocalCAServesEveryHost runs the router with HTTPS on a real HAProxy
// and the manager with the local CA, and checks what a user with only
// ca.pem trusted sees: each host answers over HTTP/2 with its own
// certificate, the app learns the request came over HTTPS, a sleeping
// app's request reaches the waker, a new host is served without a
// reload, a host that goes loses its certificate, and a restart serves
// every certificate at once.
func TestLocalCAServesEveryHost(t *testing.T) {
	_, helloPort := echo(t, "hello")
	_, shopPort := echo(t, "shop")
	waker, _ := echo(t, "waker")
	hello, shop, sleepy := appWith("hello", helloPort), appWith("shop", shopPort), appWith("sleepy")
	dir := shortDir(t)
	r := newRig(t, dir, router.Config{WakerAddr: waker}, []deploy.App{hello, shop, sleepy}, func(*Config) {})
	c := r.client()

	for _, tc := range []struct{ host, want string }{
		{"hello.localhost", "hello https 127.0.0.1 hello /x?y=1"},
		{"shop.localhost", "shop https 127.0.0.1 shop /x?y=1"},
		{"sleepy.localhost", "waker https 127.0.0.1 sleepy /x?y=1"}, // no instance: the waker wakes it
	} {
		var a answer
		testkit.WaitFor(t, 10*time.Second, "https://"+tc.host, func() bool {
			var err error
			a, err = get(c, "https://"+tc.host+"/x?y=1")
			return err == nil
		})
		if a.code != 200 || a.body != tc.want {
			t.Errorf("https://%s: %d %q, want 200 %q", tc.host, a.code, a.body, tc.want)
		}
		if a.proto != "HTTP/2.0" {
			t.Errorf("https://%s: %s, want HTTP/2.0 (ALPN h2)", tc.host, a.proto)
		}
		if !slices.Equal(a.names, []string{tc.host}) {
			t.Errorf("https://%s: certificate for %v, want its own", tc.host, a.names)
		}
	}
	// Plain HTTP still serves the local CA's apps: no redirect.
	plain := httpsClient(nil, r.cfg.HTTPAddr)
	if a, err := get(plain, "http://hello.localhost/x?y=1"); err != nil || a.code != 200 || a.body != "hello http 127.0.0.1 hello /x?y=1" {
		t.Errorf("http://hello.localhost: %+v %v, want 200 from hello with X-Forwarded-Proto http", a, err)
	}
	for _, h := range []string{"hello.localhost", "shop.localhost"} {
		fi, err := os.Stat(filepath.Join(dir, "certs", h+".pem"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.pem: %v, mode %v, want 0600", h, err, fi.Mode())
		}
	}

	// A new host on a running backend (a domain added): its certificate
	// arrives through the runtime API, with no reload.
	pid, reloads := r.worker()
	hello.Domains = []string{"hello.example.test"}
	r.rt.Update([]deploy.App{hello, shop, sleepy})
	testkit.WaitFor(t, 10*time.Second, "https://hello.example.test", func() bool {
		a, err := get(c, "https://hello.example.test/")
		return err == nil && a.code == 200 && slices.Equal(a.names, []string{"hello.example.test"})
	})
	if p, n := r.worker(); p != pid || n != reloads {
		t.Errorf("worker %s after %s reloads, was %s after %s: the certificate came by a reload", p, n, pid, reloads)
	}

	// A new app: one reload adds its backend; its certificate adds none.
	_, before := r.worker()
	_, freshPort := echo(t, "fresh")
	fresh := appWith("fresh", freshPort)
	r.rt.Update([]deploy.App{hello, shop, sleepy, fresh})
	testkit.WaitFor(t, 10*time.Second, "https://fresh.localhost", func() bool {
		a, err := get(c, "https://fresh.localhost/")
		return err == nil && a.code == 200 && slices.Equal(a.names, []string{"fresh.localhost"})
	})
	if _, after := r.worker(); after != fmt.Sprint(atoi(before)+1) {
		t.Errorf("%s reloads after the new app, was %s: want exactly one (its backend)", after, before)
	}

	// A host that goes: its certificate leaves HAProxy and the crt-list.
	r.rt.Update([]deploy.App{hello, sleepy})
	testkit.WaitFor(t, 10*time.Second, "shop's certificate to go", func() bool {
		_, err := get(c, "https://shop.localhost/")
		return err != nil
	})
	list, _ := os.ReadFile(filepath.Join(dir, "haproxy", "crt-list"))
	if strings.Contains(string(list), "shop.localhost") {
		t.Errorf("crt-list still names shop:\n%s", list)
	}

	// A restart of the router, before the manager runs again: the new
	// HAProxy serves every certificate from the crt-list on disk.
	r.stop()
	list, _ = os.ReadFile(filepath.Join(dir, "haproxy", "crt-list"))
	t.Logf("crt-list at stop:\n%s", list)
	r2 := newRig(t, dir, r.cfg, []deploy.App{hello, sleepy}, nil)
	c2 := r2.client()
	for _, h := range []string{"hello.localhost", "hello.example.test", "sleepy.localhost"} {
		if a, err := get(c2, "https://"+h+"/"); err != nil || a.code != 200 {
			t.Errorf("after a restart, https://%s: %+v %v", h, a, err)
		}
	}
}

// TestTrustedCertificatesRedirect runs the manager with a publicly
// trusted issuer (here a second CA, not Flock's): HTTP to its hosts
// redirects to HTTPS with 308, unless the app opts out; ACME's
// challenges stay on HTTP and reach the ACME handler.
func TestTrustedCertificatesRedirect(t *testing.T) {
	_, helloPort := echo(t, "hello")
	_, plainPort := echo(t, "plain")
	acme, _ := echo(t, "acme")
	public, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	no := false
	plainApp := appWith("plain", plainPort)
	plainApp.Descriptor.HTTPS = &deploy.HTTPSOptions{Redirect: &no}
	dir := shortDir(t)
	r := newRig(t, dir, router.Config{ACMEAddr: acme}, []deploy.App{appWith("hello", helloPort), plainApp}, func(c *Config) {
		c.Issuer = public
		c.LocalOnly = func(string) bool { return false }
	})
	plain := httpsClient(nil, r.cfg.HTTPAddr)
	_, port, _ := strings.Cut(r.cfg.HTTPSAddr, ":")
	var a answer
	testkit.WaitFor(t, 10*time.Second, "http://hello.localhost to redirect", func() bool {
		a, err = get(plain, "http://hello.localhost/x?y=1")
		return err == nil && a.code == 308
	})
	if want := "https://hello.localhost:" + port + "/x?y=1"; a.loc != want {
		t.Errorf("Location %q, want %q", a.loc, want)
	}
	if a, err := get(plain, "http://hello.localhost/.well-known/acme-challenge/tok"); err != nil || a.body != "acme http 127.0.0.1 hello /.well-known/acme-challenge/tok" {
		t.Errorf("ACME challenge: %+v %v, want it answered by the ACME handler over HTTP", a, err)
	}
	// The opted-out app keeps HTTP (once its certificate is in, so that
	// the check is not won by arriving early).
	pub := publicClient(t, public, r.cfg.HTTPSAddr)
	testkit.WaitFor(t, 10*time.Second, "https://plain.localhost", func() bool {
		a, err := get(pub, "https://plain.localhost/")
		return err == nil && a.code == 200
	})
	if a, err := get(plain, "http://plain.localhost/"); err != nil || a.code != 200 || !strings.HasPrefix(a.body, "plain http ") {
		t.Errorf("http://plain.localhost: %+v %v, want 200 (redirect false)", a, err)
	}
	if a, err := get(pub, "https://hello.localhost/x"); err != nil || a.body != "hello https 127.0.0.1 hello /x" {
		t.Errorf("https://hello.localhost: %+v %v", a, err)
	}
}

// publicClient trusts ca alone.
func publicClient(t *testing.T, ca *LocalCA, addr string) *http.Client {
	pem, err := os.ReadFile(ca.File())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return httpsClient(roots, addr)
}

// flakyIssuer stands for an ACME server that refuses until told to
// accept; then a second CA signs.
type flakyIssuer struct {
	ca *LocalCA
	ok atomic.Bool
}

func (f *flakyIssuer) Issue(ctx context.Context, host string) ([]byte, []byte, error) {
	if !f.ok.Load() {
		return nil, nil, errors.New("urn:ietf:params:acme:error:connection: timeout during connect")
	}
	return f.ca.Issue(ctx, host)
}

// TestIssueFailureLeavesHTTPServing: an issuer that fails shows its error
// on the app (Router.Err, what the API, CLI and dashboard show) while
// HTTP keeps routing; the next try after RetryAfter serves HTTPS and
// clears the error.
func TestIssueFailureLeavesHTTPServing(t *testing.T) {
	_, helloPort := echo(t, "hello")
	public, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iss := &flakyIssuer{ca: public}
	r := newRig(t, shortDir(t), router.Config{}, []deploy.App{appWith("hello", helloPort)}, func(c *Config) {
		c.Issuer, c.RetryAfter = iss, 50*time.Millisecond
		c.LocalOnly = func(string) bool { return false }
	})
	want := "https: hello.localhost: acme: urn:ietf:params:acme:error:connection: timeout during connect"
	testkit.WaitFor(t, 10*time.Second, "the issue error on the app", func() bool { return r.rt.Err("hello") == want })
	plain := httpsClient(nil, r.cfg.HTTPAddr)
	if a, err := get(plain, "http://hello.localhost/"); err != nil || a.code != 200 {
		t.Errorf("HTTP while HTTPS fails: %+v %v, want 200 (no redirect without a certificate)", a, err)
	}
	iss.ok.Store(true)
	pub := publicClient(t, public, r.cfg.HTTPSAddr)
	testkit.WaitFor(t, 10*time.Second, "https://hello.localhost once the issuer accepts", func() bool {
		a, err := get(pub, "https://hello.localhost/")
		return err == nil && a.code == 200
	})
	if e := r.rt.Err("hello"); e != "" {
		t.Errorf("Err after the certificate came: %q", e)
	}
}

// TestRenewalWithoutReload: a certificate due for renewal is replaced in
// the running HAProxy: new connections get the new one, and the worker
// is the same.
func TestRenewalWithoutReload(t *testing.T) {
	_, helloPort := echo(t, "hello")
	dir := shortDir(t)
	// Due 2 s after it is issued: renewed again and again.
	r := newRig(t, dir, router.Config{}, []deploy.App{appWith("hello", helloPort)}, func(c *Config) {
		c.RenewBefore = leafValidity - 2*time.Second
	})
	c := r.client()
	var first answer
	testkit.WaitFor(t, 10*time.Second, "https://hello.localhost", func() bool {
		var err error
		first, err = get(c, "https://hello.localhost/")
		return err == nil
	})
	pid, reloads := r.worker()
	testkit.WaitFor(t, 15*time.Second, "a renewed certificate", func() bool {
		c.CloseIdleConnections() // a new handshake
		a, err := get(c, "https://hello.localhost/")
		return err == nil && a.serial != first.serial
	})
	if p, n := r.worker(); p != pid || n != reloads {
		t.Errorf("worker %s after %s reloads, was %s after %s: the renewal reloaded HAProxy", p, n, pid, reloads)
	}
	stored, err := store{dir: filepath.Join(dir, "certs")}.load("hello.localhost")
	if err != nil || stored.leaf.SerialNumber.String() == first.serial {
		t.Errorf("the stored certificate is not the renewed one: %v", err)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestRefusedCertificateShowsOnTheApp: a certificate HAProxy refuses (here
// one without its key) is never listed in the crt-list, shows on its app,
// and leaves HTTP serving.
func TestRefusedCertificateShowsOnTheApp(t *testing.T) {
	_, port := echo(t, "bad")
	dir := shortDir(t)
	r := newRig(t, dir, router.Config{}, []deploy.App{appWith("bad", port)}, nil)
	certPEM, _, err := r.ca.Issue(context.Background(), "bad.localhost")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "bad.localhost.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.rt.SetCert("bad.localhost", router.Cert{File: file, PEM: certPEM}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the refusal on the app", func() bool {
		return strings.HasPrefix(r.rt.Err("bad"), "https: bad.localhost: HAProxy refused the certificate: ")
	})
	if a, err := get(httpsClient(nil, r.cfg.HTTPAddr), "http://bad.localhost/"); err != nil || a.code != 200 {
		t.Errorf("HTTP: %+v %v, want 200", a, err)
	}
	if list, _ := os.ReadFile(filepath.Join(dir, "haproxy", "crt-list")); strings.Contains(string(list), file) {
		t.Errorf("the refused certificate is in the crt-list, where it would stop the next start:\n%s", list)
	}
	// HAProxy holds one certificate transaction at a time: the refused
	// one must not block the next host's.
	_, goodPort := echo(t, "good")
	r.rt.Update([]deploy.App{appWith("bad", port), appWith("good", goodPort)})
	certPEM, keyPEM, err := r.ca.Issue(context.Background(), "good.localhost")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.localhost.pem")
	os.WriteFile(good, append(certPEM, keyPEM...), 0o600)
	if err := r.rt.SetCert("good.localhost", router.Cert{File: good, PEM: append(certPEM, keyPEM...)}); err != nil {
		t.Fatal(err)
	}
	servedOwn(t, r.client(), "good.localhost")
}
