// Package acme obtains certificates for app hosts from an ACME certificate
// authority (Let's Encrypt, or Pebble in tests) through the HTTP-01
// challenge, with lego as the ACME client.
//
// It only talks ACME: the certificate manager in router/certs decides when a
// host needs a certificate (new, or 30 days before expiry), calls Issue, and
// installs the result in HAProxy. HAProxy's HTTP frontend sends
// /.well-known/acme-challenge/ to ChallengeHandler, which answers for the
// challenges Issue has in progress.
package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/lego"
	legolog "github.com/go-acme/lego/v4/log"
	"github.com/go-acme/lego/v4/registration"
)

// LetsEncrypt is the directory of Let's Encrypt's production CA, the
// default of Config.Directory.
const LetsEncrypt = lego.LEDirectoryProduction

// Config says which ACME server to use and where to keep the account.
type Config struct {
	// Email is the account's contact address (--acme-email). Required:
	// giving it is what turns ACME on.
	Email string
	// Directory is the ACME server's directory URL (--acme-directory).
	// Default: LetsEncrypt.
	Directory string
	// CARoots is a PEM file of extra root certificates to trust for the
	// ACME server's own HTTPS, on top of the system's (--acme-ca-roots),
	// e.g. Pebble's. Default: none. It does not change which certificates
	// Issue returns.
	CARoots string
	// Dir keeps the account key and registration (<data-dir>/acme). Made
	// 0700 if missing. Required.
	Dir string
}

// Issuer obtains certificates through HTTP-01. One Issuer serves every host;
// Issue is safe for concurrent use.
type Issuer struct {
	cfg    Config
	key    crypto.PrivateKey
	tokens *tokens
	// base carries every request to the ACME server; each Issue wraps it
	// with its own context.
	base *http.Transport

	mu  sync.Mutex // guards acc
	acc *account   // nil until registered (or loaded for cfg.Directory)
}

// New checks cfg, reads the extra roots, and loads the account key from
// cfg.Dir, making and saving one there the first time. It does not reach the
// ACME server: the account is registered by the first Issue and reused from
// then on, across restarts.
func New(cfg Config) (*Issuer, error) {
	if cfg.Directory == "" {
		cfg.Directory = LetsEncrypt
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	roots, err := loadRoots(cfg.CARoots)
	if err != nil {
		return nil, err
	}
	if err := privateDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("acme: data folder: %w", err)
	}
	key, err := loadKey(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	acc, err := loadAccount(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if acc != nil && acc.Directory != cfg.Directory {
		acc = nil // registered with another ACME server: register here
	}
	quietLego()
	return &Issuer{
		cfg:    cfg,
		key:    key,
		tokens: newTokens(),
		base:   newTransport(roots),
		acc:    acc,
	}, nil
}

func (c Config) check() error {
	if c.Email == "" {
		return errors.New("acme: an e-mail address is required (--acme-email)")
	}
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || a.Name != "" {
		return fmt.Errorf("acme: e-mail %q: not a plain address such as ops@example.com", c.Email)
	}
	u, err := url.Parse(c.Directory)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("acme: directory %q: not an https:// URL", c.Directory)
	}
	if c.Dir == "" {
		return errors.New("acme: no folder for the account")
	}
	return nil
}

// loadRoots returns the system's roots plus those in file, or nil (the
// system's) when file is empty.
func loadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("acme: CA roots: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("acme: CA roots %s: no PEM certificate in it", file)
	}
	return pool, nil
}

func newTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
}

// ctxTransport gives every request the context of the Issue that sent it:
// lego's calls take no context, so this is how a cancelled Issue stops the
// requests it would still make.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// ChallengeHandler answers the ACME server's HTTP-01 requests,
// GET /.well-known/acme-challenge/<token>, for the challenges of Issue calls
// in progress. Mount it where HAProxy's HTTP frontend sends that path.
func (i *Issuer) ChallengeHandler() http.Handler { return i.tokens }

// client makes a lego client whose requests carry ctx, acting for the
// account reg (nil to register).
func (i *Issuer) client(ctx context.Context, reg *registration.Resource) (*lego.Client, error) {
	cfg := lego.NewConfig(&user{email: i.cfg.Email, key: i.key, reg: reg})
	cfg.CADirURL = i.cfg.Directory
	cfg.UserAgent = "flock"
	// No Client.Timeout: ctx, bounded by issueTimeout, ends every request
	// (body included), and the transport bounds dialing and headers.
	cfg.HTTPClient = &http.Client{Transport: ctxTransport{ctx: ctx, base: i.base}}
	// ECDSA P-256 certificates: small, fast handshakes, served by every
	// client still in use.
	cfg.Certificate.KeyType = certcrypto.EC256
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Challenge.SetHTTP01Provider(i.tokens); err != nil {
		return nil, err
	}
	return c, nil
}

// quietOnce routes lego's log (one global for the process) into slog at
// debug level, so that Flock's log keeps one format; Issue's errors carry
// what a user needs.
var quietOnce sync.Once

func quietLego() {
	quietOnce.Do(func() {
		legolog.Logger = slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
	})
}

// obtainRequest asks for one host's certificate with its chain (leaf first,
// then the intermediates), as HAProxy wants it in a crt file.
func obtainRequest(host string) certificate.ObtainRequest {
	return certificate.ObtainRequest{Domains: []string{host}, Bundle: true}
}
