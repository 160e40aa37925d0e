// Package certs keeps a TLS certificate for every host the router serves:
// it issues them (Flock's local CA, or a publicly trusted issuer such as
// ACME), keeps them in the data dir, renews them before they expire, and
// hands them to the router, which installs them in the running HAProxy
// without a reload.
package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// hostRE is a lower-case DNS name: what the router routes, and safe as
// a file name.
var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func validHost(h string) bool { return len(h) <= 253 && hostRE.MatchString(h) }

// store keeps one file per host in dir, <host>.pem: the certificate
// chain, then its private key, readable by the owner only (0600).
type store struct{ dir string }

// stored is a host's certificate as read from or written to the store.
type stored struct {
	file string
	pem  []byte
	leaf *x509.Certificate
}

func (s store) file(host string) string { return filepath.Join(s.dir, host+".pem") }

// load reads host's file; a missing file is an error wrapping
// os.ErrNotExist.
func (s store) load(host string) (*stored, error) {
	if !validHost(host) {
		return nil, fmt.Errorf("certificate for %q: not a host name", host)
	}
	b, err := os.ReadFile(s.file(host))
	if err != nil {
		return nil, err
	}
	return parse(host, s.file(host), b, b)
}

// save checks that certPEM and keyPEM make a key pair whose leaf names
// host and has not expired, then writes them to host's file atomically.
func (s store) save(host string, certPEM, keyPEM []byte) (*stored, error) {
	if !validHost(host) {
		return nil, fmt.Errorf("certificate for %q: not a host name", host)
	}
	c, err := parse(host, s.file(host), certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	var pem bytes.Buffer
	pem.Write(bytes.TrimSpace(certPEM))
	pem.WriteByte('\n')
	pem.Write(bytes.TrimSpace(keyPEM))
	pem.WriteByte('\n')
	c.pem = pem.Bytes()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", host, err)
	}
	if err := writeSecret(c.file, c.pem); err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", host, err)
	}
	return c, nil
}

// parse checks a key pair for host and returns it with its leaf.
func parse(host, file string, certPEM, keyPEM []byte) (*stored, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", host, err)
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", host, err)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate for %s: expired at %s", host, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	pem := certPEM
	if !bytes.Equal(certPEM, keyPEM) {
		pem = nil // save writes both
	}
	return &stored{file: file, pem: pem, leaf: leaf}, nil
}

// prune deletes the files of hosts that keep says are no longer served
// and whose certificate has expired (or cannot be read): a host that goes
// keeps its file while it is still good, so that it is served at once if
// it comes back, but a host gone for good leaves nothing behind past its
// certificate's life. It returns the hosts whose files it deleted.
func (s store) prune(now time.Time, keep func(host string) bool) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune certificates: %w", err)
	}
	var gone []string
	for _, e := range entries {
		host, ok := strings.CutSuffix(e.Name(), ".pem")
		if !ok || !e.Type().IsRegular() || !validHost(host) || keep(host) {
			continue // not one of the store's files, or still served
		}
		if notAfter, err := expiry(s.file(host)); err == nil && now.Before(notAfter) {
			continue
		}
		if err := os.Remove(s.file(host)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return gone, fmt.Errorf("prune certificates: %w", err)
		}
		gone = append(gone, host)
	}
	return gone, nil
}

// expiry reads the NotAfter of the first certificate in file.
func expiry(file string) (time.Time, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, err
	}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return time.Time{}, fmt.Errorf("%s: no certificate", file)
		}
		if blk.Type == "CERTIFICATE" {
			leaf, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: %w", file, err)
			}
			return leaf.NotAfter, nil
		}
	}
}

// writeSecret writes b to path through a 0600 temporary file in the same
// folder, synced, then renamed (renameio): a reader (HAProxy at a reload) never
// sees half a file, and the key is never readable by others.
func writeSecret(path string, b []byte) error {
	return renameio.WriteFile(path, b, 0o600, renameio.WithStaticPermissions(0o600))
}
