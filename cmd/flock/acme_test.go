package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router/acme/acmetest"
)

// acmeDomain is the routing domain of the ACME tests: a name a public CA
// would certify (not *.localhost, which stays on the local CA), so that
// Flock asks Pebble, as it would ask Let's Encrypt, with no test switch.
// Pebble's DNS answers 127.0.0.1 for it.
const acmeDomain = "acme.example.com"

// acmeFlock is a Flock whose certificates come from an in-process Pebble
// that validates HTTP-01 through Flock's own HAProxy: Pebble's HTTP-01
// port is Flock's --http port.
func acmeFlock(t testing.TB) (*flock, *acmetest.Pebble, string) {
	f := newFlock(t)
	_, port, _ := net.SplitHostPort(f.http)
	var httpPort int
	fmt.Sscan(port, &httpPort)
	p := acmetest.Start(t, httpPort)
	https := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	f.extra = []string{"--domain", acmeDomain, "--https", https,
		"--acme-email", "ops@example.com", "--acme-directory", p.Directory, "--acme-ca-roots", p.Roots}
	return f, p, https
}

// httpsGet fetches https://<host>/ through addr with Go's TLS client
// trusting only roots, and returns the body and the leaf certificate.
func httpsGet(host, addr string, roots *x509.CertPool) (string, *x509.Certificate, error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), resp.TLS.PeerCertificates[0], nil
}

// httpNoRedirect sends GET http://<host>/ through Flock's HTTP entry and
// returns the answer as is, a redirect included.
func (f *flock) httpNoRedirect(host string) (int, string, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), nil
}

// plainApp is echoApp named plain, whose descriptor opts out of the
// redirect to HTTPS.
func plainApp(t *testing.T) string {
	dir := echoApp(t)
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"plain","scripts":{"start":"node server.js"},"flock":{"https":{"redirect":false}}}`), 0o644)
	return dir
}

// TestHTTPSACME: with --acme-email, Flock gets each app host a certificate
// from Pebble through HTTP-01 validated across Flock's own HAProxy; the
// app answers over HTTPS with a certificate that chains to Pebble's root;
// HTTP redirects to HTTPS (308) unless the descriptor opts out; the app's
// URL becomes https://; a restart serves the same certificate without a
// new order; a host whose validation fails shows the ACME error on its app
// while its HTTP keeps serving.
func TestHTTPSACME(t *testing.T) {
	f, p, https := acmeFlock(t)
	f.start()
	f.mustCLI("deploy", echoApp(t))
	f.mustCLI("deploy", plainApp(t))
	echo, plain := "echo."+acmeDomain, "plain."+acmeDomain
	roots := p.RootPool()

	var leaf *x509.Certificate
	for _, host := range []string{echo, plain} {
		testkit.WaitFor(t, 90*time.Second, "https://"+host+" with Pebble's certificate", func() bool {
			body, c, err := httpsGet(host, https, roots)
			if err == nil && host == echo {
				leaf = c
			}
			return err == nil && strings.HasPrefix(body, "https 127.0.0.1 ")
		})
	}
	if got := p.Orders(); got != 2 {
		t.Errorf("Pebble had %d orders, want 2 (one per app host)", got)
	}

	code, loc, _, err := f.httpNoRedirect(echo)
	_, port, _ := net.SplitHostPort(https)
	if want := "https://" + echo + ":" + port + "/"; err != nil || code != http.StatusPermanentRedirect || loc != want {
		t.Errorf("http://%s: %d to %q (%v), want 308 to %q", echo, code, loc, err, want)
	}
	if code, _, body, err := f.httpNoRedirect(plain); err != nil || code != 200 || body != "http 127.0.0.1 plain" {
		t.Errorf("http://%s (redirect false): %d %q %v, want 200 from the app", plain, code, body, err)
	}
	wantURL := "https://" + echo + ":" + port
	testkit.WaitFor(t, 10*time.Second, "echo's URL "+wantURL, func() bool { return f.apps()["echo"].URL == wantURL })
	if out := strings.TrimSpace(f.mustCLI("open", "-p", "echo")); out != wantURL {
		t.Errorf("flock open -p echo: %q, want %q", out, wantURL)
	}
	if out := f.mustCLI("deploy", echoApp(t)); !strings.Contains(out, "is live at "+wantURL+"\n") {
		t.Errorf("a redeploy of echo said:\n%s\nwant \"is live at %s\"", out, wantURL)
	}

	// A restart serves the stored certificate: no new order.
	orders := p.Orders()
	f.stop()
	f.start()
	testkit.WaitFor(t, 30*time.Second, "https://"+echo+" after a restart", func() bool {
		_, c, err := httpsGet(echo, https, roots)
		return err == nil && c.SerialNumber.Cmp(leaf.SerialNumber) == 0
	})
	testkit.WaitFor(t, 10*time.Second, "echo's URL after a restart", func() bool { return f.apps()["echo"].URL == wantURL })
	if got := p.Orders(); got != orders {
		t.Errorf("Pebble had %d orders after a restart, want %d: the stored certificates were not reused", got, orders)
	}

	// A domain Pebble cannot validate: the error shows on the app, HTTP
	// goes on serving it, and the app's other host keeps its certificate.
	const shop = "shop.example.org"
	p.Unresolvable(shop)
	f.mustCLI("domains", "add", "plain", shop)
	var appErr string
	testkit.WaitFor(t, 60*time.Second, "the ACME error on plain", func() bool {
		appErr = f.apps()["plain"].Error
		return strings.Contains(appErr, "acme: certificate for "+shop+": ")
	})
	t.Logf("plain's error: %s", appErr)
	if code, _, body, err := f.httpNoRedirect(shop); err != nil || code != 200 || body != "http 127.0.0.1 plain" {
		t.Errorf("http://%s while its certificate fails: %d %q %v, want 200 from the app", shop, code, body, err)
	}
	if _, _, err := httpsGet(plain, https, roots); err != nil {
		t.Errorf("https://%s while another host of its app fails: %v", plain, err)
	}
	if got := p.Accounts(); got != 1 {
		t.Errorf("Pebble had %d new-account requests, want 1: the account in <data-dir>/acme is reused across restarts", got)
	}
}

// TestACMEFlagErrors: --acme-* flags that cannot take effect stop
// `flock up` with a message naming the flag, before anything starts.
func TestACMEFlagErrors(t *testing.T) {
	roots := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(roots, []byte("not PEM"), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"email without https", []string{"--acme-email", "ops@example.com"}, "--acme-email needs --https"},
		{"directory without email", []string{"--https", "127.0.0.1:0", "--acme-directory", "https://ca.example.com/dir"}, "--acme-directory needs --acme-email"},
		{"roots without email", []string{"--https", "127.0.0.1:0", "--acme-ca-roots", roots}, "--acme-ca-roots needs --acme-email"},
		{"display name", []string{"--https", "127.0.0.1:0", "--acme-email", "Ops <ops@example.com>"}, "not a plain address"},
		{"http directory", []string{"--https", "127.0.0.1:0", "--acme-email", "ops@example.com", "--acme-directory", "http://ca.example.com/dir"}, "not an https:// URL"},
		{"roots not PEM", []string{"--https", "127.0.0.1:0", "--acme-email", "ops@example.com", "--acme-ca-roots", roots}, "no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"up", "--data-dir", t.TempDir(), "--api", fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))}, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, flockBin, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tt.want) {
				t.Errorf("flock %s: %v\n%s\nwant an error saying %q", strings.Join(tt.args, " "), err, out, tt.want)
			}
		})
	}
}

// TestMarathonHTTPSACME: on the Marathon scheduler (HAProxy is Flock's
// there too) an app gets its certificate from Pebble through HAProxy, and
// its HTTP redirects to HTTPS.
func TestMarathonHTTPSACME(t *testing.T) {
	srv := marathontest.New(marathontest.Options{RunTasks: true})
	t.Cleanup(srv.Close)
	f, p, https := acmeFlock(t)
	f.extra = append(f.extra, "--scheduler", "marathon", "--marathon-url", srv.URL)
	f.start()
	f.mustCLI("deploy", echoApp(t))
	echo := "echo." + acmeDomain
	testkit.WaitFor(t, 90*time.Second, "https://"+echo+" with Pebble's certificate", func() bool {
		body, _, err := httpsGet(echo, https, p.RootPool())
		return err == nil && strings.HasPrefix(body, "https ")
	})
	if code, loc, _, err := f.httpNoRedirect(echo); err != nil || code != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://"+echo+":") {
		t.Errorf("http://%s: %d to %q (%v), want 308 to HTTPS", echo, code, loc, err)
	}
}
