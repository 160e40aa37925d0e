package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/flock-paas/flock/router/hap"
)

// tlsLive is what HAProxy holds of the HTTPS side, kept by Run's
// goroutine: the certificates the current worker serves and the hosts it
// redirects to HTTPS, and what the crt-list and https.map files on disk
// say, which a new worker (reload, restart) loads.
type tlsLive struct {
	live      map[string][32]byte // certificate file → sum of the PEM the worker holds
	listed    map[string][32]byte // the crt-list on disk, with the sums installed
	redirects map[string]bool     // hosts the worker redirects to HTTPS
	onDisk    map[string]bool     // https.map on disk
	gen       uint64              // Router.certGen last applied
	failed    bool                // something was left undone: retry
	errs      map[string]string   // certificate file → why HAProxy refused it, logged once
}

// newTLSLive reads the crt-list and https.map a previous run left, keeps
// the certificates that still load (a file removed or spoilt since would
// stop HAProxy from starting) and writes both files back, so that the
// first worker serves every certificate at once.
func newTLSLive(s settings) (*tlsLive, error) {
	t := &tlsLive{listed: map[string][32]byte{}, onDisk: map[string]bool{}, errs: map[string]string{}}
	if b, err := os.ReadFile(s.path(crtListFile)); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			file := strings.TrimSpace(sc.Text())
			if file == "" || strings.HasPrefix(file, "#") || !dirRE.MatchString(file) {
				continue
			}
			pem, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			if _, err := tls.X509KeyPair(pem, pem); err != nil {
				continue
			}
			body, err := pemPayload(pem)
			if err != nil {
				continue
			}
			t.listed[file] = pemSum(body)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(s.path(redirectFile)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && validHost(f[0]) {
				t.onDisk[f[0]] = true
			}
		}
	}
	if err := t.writeList(s); err != nil {
		return nil, err
	}
	if err := t.writeRedirects(s); err != nil {
		return nil, err
	}
	t.restarted()
	return t, nil
}

// pending reports whether the last sync left something undone.
func (t *tlsLive) pending() bool { return t != nil && t.failed }

// restarted records a new worker: it loaded the files on disk.
func (t *tlsLive) restarted() {
	t.live = maps.Clone(t.listed)
	t.redirects = maps.Clone(t.onDisk)
	t.failed = true // compare with the desired state at the next sync
}

func (t *tlsLive) writeList(s settings) error {
	files := slices.Sorted(maps.Keys(t.listed))
	var buf bytes.Buffer
	for _, f := range files {
		buf.WriteString(f)
		buf.WriteByte('\n')
	}
	return writeFile(s.path(crtListFile), buf.Bytes())
}

func (t *tlsLive) writeRedirects(s settings) error {
	hosts := slices.Sorted(maps.Keys(t.onDisk))
	var buf bytes.Buffer
	for _, h := range hosts {
		buf.WriteString(h + " 1\n")
	}
	return writeFile(s.path(redirectFile), buf.Bytes())
}

// sync brings the worker's certificates and redirects in step with the
// desired ones through the runtime API, then the files on disk with the
// worker.
func (t *tlsLive) sync(ctx context.Context, r *Router, want *model) {
	r.mu.Lock()
	changed := r.certGen != t.gen || t.failed
	var certs map[string]Cert
	complete := r.certsComplete
	if changed {
		certs = maps.Clone(r.certs)
		t.gen = r.certGen
	}
	r.mu.Unlock()
	t.failed = false
	if changed {
		t.syncCerts(ctx, r, certs, complete)
	}
	t.syncRedirects(ctx, r, want)
}

// certBudget bounds the time one sync spends on certificates: thousands
// of them (a first start with --https) take seconds of runtime commands,
// and the loop must go on applying instance changes meanwhile. The rest
// waits for the next turn of the loop.
const certBudget = 100 * time.Millisecond

// syncCerts installs, replaces and removes certificates; those nobody
// gave are only removed once complete (Router.CertsComplete).
func (t *tlsLive) syncCerts(ctx context.Context, r *Router, certs map[string]Cert, complete bool) {
	deadline := time.Now().Add(certBudget)
	more := func() bool {
		if time.Now().Before(deadline) {
			return true
		}
		t.failed = true // not failed, but not done: the next sync goes on
		r.poke()
		return false
	}
	byFile := make(map[string]Cert, len(certs))
	hostOf := make(map[string]string, len(certs))
	for h, c := range certs {
		byFile[c.File], hostOf[c.File] = c, h
	}
	list := r.settings.path(crtListFile)
	for file := range t.live {
		if _, ok := byFile[file]; ok || !complete {
			continue
		}
		if !more() {
			break
		}
		err := r.admin.Expect(ctx, "del ssl crt-list "+list+" "+file, nil, "deleted", "does not exist")
		if err == nil {
			err = r.admin.Expect(ctx, "del ssl cert "+file, nil, "deleted", "doesn't exist")
		}
		if err != nil {
			r.log.Warn("remove certificate", "file", file, "err", err)
			t.failed = true
			continue
		}
		delete(t.live, file)
	}
	for file, c := range byFile {
		sum := c.sum
		if have, ok := t.live[file]; ok && have == sum {
			continue
		}
		if !more() {
			break
		}
		if err := installCert(ctx, r, list, file, c.PEM, t.live); err != nil {
			// Retried at every turn; logged and shown on the app once.
			if msg := err.Error(); t.errs[file] != msg {
				t.errs[file] = msg
				r.log.Warn("install certificate", "host", hostOf[file], "file", file, "err", err)
				r.SetCertError(hostOf[file], "HAProxy refused the certificate: "+msg)
			}
			t.failed = true
			continue
		}
		if _, ok := t.errs[file]; ok {
			delete(t.errs, file)
			r.SetCertError(hostOf[file], "")
		}
		t.live[file] = sum
	}
	if !maps.Equal(t.live, t.listed) {
		old := t.listed
		t.listed = maps.Clone(t.live)
		if err := t.writeList(r.settings); err != nil {
			r.log.Warn("write crt-list", "err", err)
			t.listed, t.failed = old, true
		}
	}
}

// installCert loads a certificate into the worker and, when it is new to
// the worker, adds it to the crt-list: SNI then picks it by its names.
func installCert(ctx context.Context, r *Router, list, file string, pem []byte, live map[string][32]byte) error {
	_, loaded := live[file]
	stray := false // loaded in the worker, unknown to live: an attempt that failed half-way
	if !loaded {
		out, err := r.admin.Cmd(ctx, "new ssl cert "+file)
		if err != nil {
			return err
		}
		if stray = strings.Contains(out, "already exists"); !stray && !strings.Contains(out, "New empty certificate store") {
			return fmt.Errorf("new ssl cert %s: %w: %s", file, hap.ErrRefused, strings.Join(strings.Fields(out), " "))
		}
	}
	// HAProxy holds one certificate transaction at a time: one left open
	// by a refusal would block every other certificate.
	if err := r.admin.Expect(ctx, "set ssl cert "+file, pem, "Transaction created", "Transaction updated"); err != nil {
		_ = r.admin.Expect(ctx, "abort ssl cert "+file, nil, "aborted")
		return err
	}
	if err := r.admin.Expect(ctx, "commit ssl cert "+file, nil, "Success!"); err != nil {
		_ = r.admin.Expect(ctx, "abort ssl cert "+file, nil, "aborted")
		return err
	}
	if loaded {
		return nil
	}
	if stray {
		// It may be in the crt-list already: a second line would be a
		// second entry.
		_ = r.admin.Expect(ctx, "del ssl crt-list "+list+" "+file, nil, "deleted", "does not exist")
	}
	return r.admin.Expect(ctx, "add ssl crt-list "+list+" "+file, nil, "Success!")
}

// syncRedirects makes the worker's https.map the hosts whose app wants
// HTTPS and whose certificate is publicly trusted and served.
func (t *tlsLive) syncRedirects(ctx context.Context, r *Router, want *model) {
	r.mu.Lock()
	wanted := map[string]bool{}
	byName := want.byName()
	for h, be := range want.hosts {
		c, ok := r.certs[h]
		if !ok || !c.Trusted || !byName[be].Redirect {
			continue
		}
		if sum, ok := t.live[c.File]; ok && sum == c.sum {
			wanted[h] = true
		}
	}
	r.mu.Unlock()
	m := r.settings.path(redirectFile)
	for h := range t.redirects {
		if wanted[h] {
			continue
		}
		if err := r.admin.Do(ctx, "del map "+m+" "+h); err != nil && !errors.Is(err, hap.ErrRefused) {
			r.log.Warn("del redirect", "host", h, "err", err)
			t.failed = true
			continue
		}
		delete(t.redirects, h)
	}
	for h := range wanted {
		if t.redirects[h] {
			continue
		}
		if err := r.admin.Do(ctx, "add map "+m+" "+h+" 1"); err != nil {
			r.log.Warn("add redirect", "host", h, "err", err)
			t.failed = true
			continue
		}
		t.redirects[h] = true
	}
	if !maps.Equal(t.redirects, t.onDisk) {
		old := t.onDisk
		t.onDisk = maps.Clone(t.redirects)
		if err := t.writeRedirects(r.settings); err != nil {
			r.log.Warn("write https.map", "err", err)
			t.onDisk, t.failed = old, true
		}
	}
}
