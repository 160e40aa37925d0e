package main

import (
	"log/slog"
	"net"
	"path/filepath"

	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/router/certs"
)

// certIssuer returns the publicly trusted issuer of app certificates and
// the host:port of its HTTP-01 challenge handler (the router sends
// /.well-known/acme-challenge/ there), or nil and "" when Flock's local
// CA signs every host. ACME (router/acme, --acme-email, --acme-directory,
// --acme-ca-roots) plugs in here.
func certIssuer(c upConfig, logger *slog.Logger) (certs.Issuer, string, error) {
	return nil, "", nil
}

// newCertManager opens the local CA (<data-dir>/ca.pem, created at first
// start) and returns the manager that keeps a certificate for every app
// host, or nil without --https.
func newCertManager(c upConfig, issuer certs.Issuer, rt *router.Router, logger *slog.Logger) (*certs.Manager, error) {
	if c.HTTPS == "" {
		return nil, nil
	}
	ca, err := certs.OpenLocalCA(c.DataDir)
	if err != nil {
		return nil, err
	}
	return certs.New(certs.Config{Dir: filepath.Join(c.DataDir, "certs"), Local: ca, Issuer: issuer, Logger: logger}, rt)
}

// httpsApps is where apps answer over HTTPS, for the "flock is up" line.
func httpsApps(c upConfig) string {
	if c.HTTPS == "" {
		return "off (--https)"
	}
	port := ""
	if _, p, err := net.SplitHostPort(c.HTTPS); err == nil && p != "443" {
		port = ":" + p
	}
	return "https://<app>." + c.Domain + port + " (trust " + filepath.Join(c.DataDir, certs.CAFile) + ")"
}
