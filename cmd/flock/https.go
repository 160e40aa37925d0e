package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/engine"
	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/router/acme"
	"github.com/flock-paas/flock/router/certs"
)

// acmeConfig is what `flock up` is told about ACME (--acme-*).
type acmeConfig struct {
	Email, Directory, CARoots string
}

// addACMEFlags declares the --acme-* flags of `flock up`.
func addACMEFlags(f *pflag.FlagSet, a *acmeConfig) {
	f.StringVar(&a.Email, "acme-email", envOr("FLOCK_ACME_EMAIL", ""), "with --https: get each app host a certificate from an ACME CA (Let's Encrypt) through HTTP-01, with this contact address; without it Flock's local CA signs them (env FLOCK_ACME_EMAIL)")
	f.StringVar(&a.Directory, "acme-directory", envOr("FLOCK_ACME_DIRECTORY", acme.LetsEncrypt), "ACME directory URL (env FLOCK_ACME_DIRECTORY)")
	f.StringVar(&a.CARoots, "acme-ca-roots", envOr("FLOCK_ACME_CA_ROOTS", ""), "PEM file of extra roots to trust for the ACME server's HTTPS, e.g. Pebble's (env FLOCK_ACME_CA_ROOTS)")
}

// check refuses --acme-* flags that would be silently ignored.
func (a acmeConfig) check(https string) error {
	switch {
	case a.Email == "" && a.Directory != "" && a.Directory != acme.LetsEncrypt:
		return errors.New("--acme-directory needs --acme-email: without it certificates come from Flock's local CA")
	case a.Email == "" && a.CARoots != "":
		return errors.New("--acme-ca-roots needs --acme-email: without it certificates come from Flock's local CA")
	case a.Email != "" && https == "":
		return errors.New("--acme-email needs --https ADDR: ACME certificates are served on Flock's HTTPS entry")
	}
	return nil
}

// acmeIssuer is the ACME issuer with the loopback listener where HAProxy
// sends /.well-known/acme-challenge/. It is a listener of its own, not a
// route of the API: the API refuses requests whose Host is not one of its
// own, and a challenge comes with the app's host.
type acmeIssuer struct {
	*acme.Issuer
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// certIssuer returns the ACME issuer of app certificates and the host:port
// of its HTTP-01 challenge handler (the router sends
// /.well-known/acme-challenge/ there), or nil and "" when Flock's local CA
// signs every host (no --acme-email). The listener is open on return, so
// the address is live once Run serves it.
func certIssuer(c upConfig, logger *slog.Logger) (*acmeIssuer, string, error) {
	if err := c.ACME.check(c.HTTPS); err != nil {
		return nil, "", err
	}
	if c.ACME.Email == "" {
		return nil, "", nil
	}
	iss, err := acme.New(acme.Config{Email: c.ACME.Email, Directory: c.ACME.Directory, CARoots: c.ACME.CARoots, Dir: filepath.Join(c.DataDir, "acme")})
	if err != nil {
		return nil, "", err
	}
	// Loopback, on a port the kernel picks: only HAProxy reaches it, and
	// it learns the address from the configuration Flock renders.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("acme challenge listener: %w", err)
	}
	srv := harden(&http.Server{Handler: iss.ChallengeHandler(), ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)})
	return &acmeIssuer{Issuer: iss, ln: ln, srv: srv, log: logger}, ln.Addr().String(), nil
}

// Run serves the challenges until ctx ends.
func (a *acmeIssuer) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.srv.Shutdown(sctx)
	}()
	a.log.Info("acme on", "challenges", a.ln.Addr().String())
	if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("acme challenges: %w", err)
	}
	return nil
}

// httpsCerts keeps the certificate of every app host, and serves ACME's
// challenges when ACME is on.
type httpsCerts struct {
	mgr  *certs.Manager
	acme *acmeIssuer // nil: local CA only
}

// newCertManager opens the local CA (<data-dir>/ca.pem, created at first
// start) and returns what keeps a certificate for every app host, or nil
// without --https. With iss, hosts a public CA certifies get theirs from
// ACME; the others (certs.IsLocalName: *.localhost, *.test…) stay on the
// local CA.
func newCertManager(c upConfig, iss *acmeIssuer, rt *router.Router, logger *slog.Logger) (*httpsCerts, error) {
	if c.HTTPS == "" {
		return nil, nil
	}
	ca, err := certs.OpenLocalCA(c.DataDir)
	if err != nil {
		return nil, err
	}
	cfg := certs.Config{Dir: filepath.Join(c.DataDir, "certs"), Local: ca, Logger: logger}
	if iss != nil {
		cfg.Issuer = iss.Issuer // never a nil *acme.Issuer in the interface
	}
	mgr, err := certs.New(cfg, rt)
	if err != nil {
		return nil, err
	}
	return &httpsCerts{mgr: mgr, acme: iss}, nil
}

// Run keeps the certificates (and serves the challenges) until ctx ends.
func (h *httpsCerts) Run(ctx context.Context) error {
	if h.acme == nil {
		return h.mgr.Run(ctx)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return h.acme.Run(ctx) })
	g.Go(func() error { return h.mgr.Run(ctx) })
	return g.Wait()
}

// httpsLinks is engine.Config.HTTPS: an app's URL is
// https://<app>.<domain>[:port] once its host serves a publicly trusted
// certificate, since plain HTTP redirects there anyway. Apps on the local
// CA keep their http:// URL: a browser that has not been told to trust
// ca.pem would stop at a warning.
type httpsLinks struct {
	domain, port string
	rt           *router.Router
}

// newHTTPSLinks returns the HTTPS links of apps, or nil without ACME.
func newHTTPSLinks(c upConfig, rt *router.Router) engine.HTTPSLinks {
	if c.HTTPS == "" || c.ACME.Email == "" {
		return nil
	}
	return httpsLinks{domain: c.Domain, port: httpsPort(c.HTTPS), rt: rt}
}

// HTTPSURL implements engine.HTTPSLinks.
func (l httpsLinks) HTTPSURL(app string) string {
	host := deploy.AppHost(app, l.domain)
	if !l.rt.Trusted(host) {
		return ""
	}
	return "https://" + host + l.port
}

// httpsPort is what an HTTPS URL carries after the host: nothing for
// port 443, else ":<port>".
func httpsPort(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil && p != "443" {
		return ":" + p
	}
	return ""
}

// httpsApps is where apps answer over HTTPS, for the "flock is up" line.
func httpsApps(c upConfig) string {
	if c.HTTPS == "" {
		return "off (--https)"
	}
	apps := "https://<app>." + c.Domain + httpsPort(c.HTTPS)
	ca := filepath.Join(c.DataDir, certs.CAFile)
	if c.ACME.Email != "" {
		return apps + " (certificates from " + c.ACME.Directory + "; names no public CA certifies, such as *.localhost, from " + ca + ")"
	}
	return apps + " (trust " + ca + ")"
}
