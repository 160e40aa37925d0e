package router

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flock-paas/flock/router/hap"
)

// Cert is a host's certificate as the router installs it in HAProxy. The
// certificate manager (router/certs) owns the file; the router sends its
// content through the runtime API and names the file in the crt-list, so
// that a restarted HAProxy loads it again.
type Cert struct {
	// File is the absolute path of the PEM file: the chain, then the key.
	File string
	// PEM is the file's content.
	PEM []byte
	// Trusted marks a publicly trusted certificate (ACME): plain HTTP to
	// the host is redirected to HTTPS (308) unless the app's descriptor
	// says "https": {"redirect": false}. Local CA certificates are not.
	Trusted bool

	sum [32]byte // of PEM, set by SetCert
}

// SetCert installs (or replaces) the certificate of host in the running
// HAProxy, without a reload. It does not block; Run applies it. The file
// must already hold c.PEM.
func (r *Router) SetCert(host string, c Cert) error {
	if !validHost(host) {
		return fmt.Errorf("certificate for %q: not a lower-case host name", host)
	}
	if !filepath.IsAbs(c.File) || !dirRE.MatchString(c.File) {
		return fmt.Errorf("certificate for %s: file %q must be an absolute path of letters, digits and /._+-", host, c.File)
	}
	body, err := pemPayload(c.PEM)
	if err != nil {
		return fmt.Errorf("certificate for %s: %w", host, err)
	}
	c.PEM, c.sum = body, pemSum(body)
	r.mu.Lock()
	r.certs[host] = c
	delete(r.certErrs, host)
	r.certGen++
	r.mu.Unlock()
	r.poke()
	return nil
}

// RemoveCert takes host's certificate out of HAProxy (the file stays).
func (r *Router) RemoveCert(host string) {
	r.mu.Lock()
	_, had := r.certs[host]
	delete(r.certs, host)
	delete(r.certErrs, host)
	r.certGen++
	r.mu.Unlock()
	if had {
		r.poke()
	}
}

// CertsComplete tells the router that every certificate it should serve
// has been given to SetCert: from then on it removes from HAProxy the
// certificates a previous run left in the crt-list that nobody claimed
// (a host that went while Flock was down). Until then they keep serving,
// so that a restart does not take a certificate away and give it back.
func (r *Router) CertsComplete() {
	r.mu.Lock()
	r.certsComplete = true
	r.certGen++
	r.mu.Unlock()
	r.poke()
}

// Trusted reports whether host has a publicly trusted (ACME) certificate
// to serve: its app's URL is then https://, as plain HTTP redirects there.
func (r *Router) Trusted(host string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.certs[host].Trusted
}

// SetCertError records why host has no (fresh) certificate; Err shows it
// on the host's app. An empty msg clears it. HTTP routing is untouched.
func (r *Router) SetCertError(host, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg == "" {
		delete(r.certErrs, host)
		return
	}
	r.certErrs[host] = msg
}

// Hosts returns every host the router routes (each app's
// <app>.<domain> and its domains), sorted, and a channel closed at the
// next change of the desired state: what a certificate manager watches.
func (r *Router) Hosts() ([]string, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hostList == nil || r.hostsGen != r.gen {
		m := build(r.apps, r.cfg.Domain, nil, nil) // hosts only: servers do not matter here
		list := make([]string, 0, len(m.hosts))
		for h := range m.hosts {
			list = append(list, h)
		}
		slices.Sort(list)
		r.hostList, r.hostsGen = list, r.gen
	}
	return r.hostList, r.hostsChanged
}

// certErr returns the certificate errors of app's hosts, for Err. The
// caller holds r.mu.
func (r *Router) certErr(app string) string {
	if len(r.certErrs) == 0 {
		return ""
	}
	be := hap.BackendName(app)
	var out []string
	for h, msg := range r.certErrs {
		if r.lastHosts[h] == be {
			out = append(out, "https: "+h+": "+msg)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// pemPayload readies PEM text for a runtime API payload, which ends at
// the first empty line: blank lines (which PEM allows between blocks)
// are dropped and the text ends with a newline.
func pemPayload(pem []byte) ([]byte, error) {
	var out bytes.Buffer
	for _, line := range strings.Split(strings.ReplaceAll(string(pem), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.ContainsRune(line, '\r') || strings.ContainsRune(line, 0) {
			return nil, fmt.Errorf("PEM holds a stray control character")
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if !bytes.Contains(out.Bytes(), []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("no PEM block")
	}
	return out.Bytes(), nil
}

func pemSum(pem []byte) [32]byte { return sha256.Sum256(pem) }
