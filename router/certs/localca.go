package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files of the local CA in the data dir.
const (
	CAFile    = "ca.pem"     // the CA certificate: what users trust
	CAKeyFile = "ca-key.pem" // its private key, 0600
)

// Validity of the local CA and of the certificates it signs. A leaf
// lives 90 days and is renewed 30 days before it expires, as ACME
// certificates are.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 90 * 24 * time.Hour
)

// LocalCA is Flock's own certificate authority, as Caddy has for local
// sites: created once in the data dir and kept across restarts, it signs
// a certificate for any host at once, with no outside party. Browsers and
// curl trust it once the user trusts ca.pem (docs/https.md).
type LocalCA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	file    string
}

// OpenLocalCA loads the CA kept in dir (ca.pem and ca-key.pem), or creates
// it when neither file exists. One file without the other is an error:
// a new CA would silently void what users trusted.
func OpenLocalCA(dir string) (*LocalCA, error) {
	certFile, keyFile := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		return loadCA(certFile, certPEM, keyPEM)
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		return createCA(dir)
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("local CA: %w", cerr)
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("local CA: %w", kerr)
	case cerr != nil:
		return nil, fmt.Errorf("local CA: %s exists without %s; restore it, or remove both to make a new CA (which users must trust again)", keyFile, certFile)
	default:
		return nil, fmt.Errorf("local CA: %s exists without %s; restore it, or remove both to make a new CA (which users must trust again)", certFile, keyFile)
	}
}

func loadCA(file string, certPEM, keyPEM []byte) (*LocalCA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("local CA: %s or its key is not PEM", file)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("local CA: %s: %w", file, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("local CA: key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, fmt.Errorf("local CA: %s is not a CA certificate with a signing key", file)
	}
	if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("local CA: %s and its key do not match", file)
	}
	return &LocalCA{cert: cert, certPEM: certPEM, key: key, file: file}, nil
}

func createCA(dir string) (*LocalCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Flock"}, CommonName: "Flock Local CA (" + host + ")"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	certFile := filepath.Join(dir, CAFile)
	// The key first: a ca.pem without its key is refused at the next
	// start, a key without ca.pem would be too.
	if err := writeSecret(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeSecret(certFile, certPEM); err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	// The certificate is public: users copy it into their trust stores.
	if err := os.Chmod(certFile, 0o644); err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	return &LocalCA{cert: cert, certPEM: certPEM, key: key, file: certFile}, nil
}

// File is the path of ca.pem, the certificate users trust.
func (ca *LocalCA) File() string { return ca.file }

// Certificate is the CA's certificate.
func (ca *LocalCA) Certificate() *x509.Certificate { return ca.cert }

// Issue signs a new certificate for host with a new P-256 key; it
// satisfies Issuer.
func (ca *LocalCA) Issue(ctx context.Context, host string) (certPEM, keyPEM []byte, err error) {
	if !validHost(host) {
		return nil, nil, fmt.Errorf("local CA: %q is not a host name", host)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"Flock local CA"}, CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("local CA: %w", err)
	}
	// The leaf alone: the CA signs it directly, and a client either
	// trusts the CA already or nothing sent here would make it.
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// Signed reports whether the CA signed leaf.
func (ca *LocalCA) Signed(leaf *x509.Certificate) bool {
	return leaf.CheckSignatureFrom(ca.cert) == nil
}

// serial is a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

var _ Issuer = (*LocalCA)(nil)
