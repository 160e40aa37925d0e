package certs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/flock-paas/flock/router"
)

// Issuer obtains a certificate for one host: Flock's local CA, or ACME
// (router/acme). certPEM is the chain, leaf first; keyPEM its private key.
type Issuer interface {
	Issue(ctx context.Context, host string) (certPEM, keyPEM []byte, err error)
}

// Router is the part of the router the manager serves (*router.Router):
// it names the hosts, and installs certificates in HAProxy.
type Router interface {
	Hosts() ([]string, <-chan struct{})
	SetCert(host string, c router.Cert) error
	RemoveCert(host string)
	SetCertError(host, msg string)
	CertsComplete()
}

// Config configures a Manager.
type Config struct {
	// Dir keeps one <host>.pem per host (<data-dir>/certs).
	Dir string
	// Local is Flock's CA: it signs every host when Issuer is nil, and
	// the hosts no public CA would certify (LocalOnly).
	Local *LocalCA
	// Issuer is a publicly trusted issuer (ACME); nil: the local CA
	// signs every host.
	Issuer Issuer
	// LocalOnly names the hosts that stay on the local CA even with an
	// Issuer. Default IsLocalName.
	LocalOnly func(host string) bool
	// RenewBefore is how long before its expiry a certificate is
	// renewed. Default 30 days.
	RenewBefore time.Duration
	// Workers bounds the certificates issued at once. Default 4.
	Workers int
	// RetryAfter is the wait after a failed issue, doubled at each
	// failure in a row up to an hour. Default 1 minute.
	RetryAfter time.Duration
	// Logger receives the manager's logs. Default slog.Default().
	Logger *slog.Logger
}

// IsLocalName reports whether no public CA certifies host: localhost and
// the names under the special-use and private top-level domains
// (.localhost, .test, .local, .internal, .invalid, .example, .home.arpa).
func IsLocalName(host string) bool {
	if host == "localhost" {
		return true
	}
	for _, tld := range []string{".localhost", ".test", ".local", ".internal", ".invalid", ".example", ".home.arpa"} {
		if strings.HasSuffix(host, tld) {
			return true
		}
	}
	return false
}

// Manager keeps a certificate for every host of the router: loaded from
// Dir, else issued at once; renewed RenewBefore its expiry; handed to the
// router, which installs it in HAProxy without a reload. A failure is
// kept per host and shown on the host's app by the router; HTTP routing
// never depends on it.
type Manager struct {
	cfg   Config
	store store
	rt    Router
	log   *slog.Logger
}

// New validates cfg; it starts nothing.
func New(cfg Config, rt Router) (*Manager, error) {
	if cfg.Local == nil {
		return nil, errors.New("certs: a local CA is required")
	}
	if cfg.Dir == "" || rt == nil {
		return nil, errors.New("certs: a directory and a router are required")
	}
	if cfg.LocalOnly == nil {
		cfg.LocalOnly = IsLocalName
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = 30 * 24 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, store: store{dir: cfg.Dir}, rt: rt, log: cfg.Logger}, nil
}

// held is a host's certificate as the manager holds it.
type held struct {
	c       *stored
	trusted bool // not from the local CA
	pushed  bool // handed to the router
}

// failure is a host's last failed issue.
type failure struct {
	err   error
	next  time.Time
	delay time.Duration
}

// result is an issue's outcome.
type result struct {
	host string
	c    *stored
	err  error
}

// run is the state of Run's goroutine.
type run struct {
	m        *Manager
	wanted   map[string]bool
	have     map[string]*held
	failed   map[string]failure
	inFlight map[string]bool
	queue    []string
	results  chan result
	wake     time.Time // when the timer fires
	pruned   time.Time // when the store was last pruned
}

// pruneEvery is how often the store is rid of the expired certificates
// of hosts no longer served (see store.prune); also at start.
const pruneEvery = 24 * time.Hour

// Run keeps the certificates until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	r := &run{m: m, wanted: map[string]bool{}, have: map[string]*held{}, failed: map[string]failure{},
		inFlight: map[string]bool{}, results: make(chan result, m.cfg.Workers)}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for first := true; ; first = false {
		hosts, changed := m.rt.Hosts()
		next := r.reconcile(ctx, hosts)
		if first {
			// Every stored certificate is with the router: what else the
			// last run left in HAProxy may go.
			m.rt.CertsComplete()
		}
		r.launch(ctx)
		r.wake = next
		timer.Reset(max(time.Until(next), 10*time.Millisecond))
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				break wait
			case <-timer.C:
				break wait
			case res := <-r.results:
				if retry := r.done(res); !retry.IsZero() && retry.Before(r.wake) {
					r.wake = retry
					timer.Reset(max(time.Until(retry), 10*time.Millisecond))
				}
				r.launch(ctx)
			}
		}
	}
}

// reconcile compares the router's hosts with the certificates held: it
// pushes what is ready, queues what must be issued or renewed, takes out
// the hosts that went. It returns when it must look again (the earliest
// renewal or retry).
func (r *run) reconcile(ctx context.Context, hosts []string) time.Time {
	m, now := r.m, time.Now()
	next := now.Add(time.Hour)
	wanted := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		wanted[h] = true
	}
	for h := range r.wanted {
		if !wanted[h] {
			// The file stays: a host that comes back (a redeploy under
			// the same name) is served at once, without a new issue.
			m.rt.RemoveCert(h)
			m.rt.SetCertError(h, "")
			delete(r.have, h)
			delete(r.failed, h)
		}
	}
	r.wanted = wanted
	if now.Sub(r.pruned) >= pruneEvery {
		r.pruned = now
		gone, err := m.store.prune(now, func(h string) bool { return wanted[h] })
		if err != nil {
			m.log.Warn("prune certificates", "err", err)
		}
		if len(gone) > 0 {
			m.log.Info("expired certificates of hosts no longer served deleted", "hosts", gone)
		}
	}
	r.queue = r.queue[:0]
	for _, h := range hosts {
		hd := r.have[h]
		if hd == nil {
			hd = r.load(h)
		}
		if hd != nil && !hd.pushed && now.Before(hd.c.leaf.NotAfter) {
			r.push(h, hd)
		}
		if r.inFlight[h] {
			continue
		}
		due := r.due(h, hd)
		if f, ok := r.failed[h]; ok && due.Before(f.next) {
			due = f.next
		}
		if !due.After(now) {
			r.queue = append(r.queue, h)
		} else if due.Before(next) {
			next = due
		}
	}
	return next
}

// due is when host's certificate must be issued again: now when there
// is none, or when it comes from the local CA but a public issuer should
// sign it; else RenewBefore its expiry.
func (r *run) due(host string, hd *held) time.Time {
	if hd == nil || (!hd.trusted && r.m.cfg.Issuer != nil && !r.m.cfg.LocalOnly(host)) {
		return time.Time{}
	}
	return hd.c.leaf.NotAfter.Add(-r.m.cfg.RenewBefore)
}

// load reads host's file, if any and still valid.
func (r *run) load(host string) *held {
	c, err := r.m.store.load(host)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.m.log.Warn("stored certificate unusable, issuing a new one", "host", host, "err", err)
		}
		return nil
	}
	hd := &held{c: c, trusted: !r.m.cfg.Local.Signed(c.leaf)}
	r.have[host] = hd
	return hd
}

func (r *run) push(host string, hd *held) {
	if err := r.m.rt.SetCert(host, router.Cert{File: hd.c.file, PEM: hd.c.pem, Trusted: hd.trusted}); err != nil {
		r.m.rt.SetCertError(host, err.Error())
		return
	}
	hd.pushed = true
}

// launch starts queued issues while fewer than Workers run.
func (r *run) launch(ctx context.Context) {
	for len(r.queue) > 0 && len(r.inFlight) < r.m.cfg.Workers {
		h := r.queue[0]
		r.queue = r.queue[1:]
		if !r.wanted[h] || r.inFlight[h] {
			continue
		}
		r.inFlight[h] = true
		iss, source := r.m.cfg.Issuer, "acme"
		if iss == nil || r.m.cfg.LocalOnly(h) {
			iss, source = Issuer(r.m.cfg.Local), "local CA"
		}
		go func() {
			c, err := r.m.issue(ctx, iss, h)
			if err != nil && !strings.HasPrefix(err.Error(), source+":") {
				// acme.Error already begins "acme: certificate for <host>".
				err = fmt.Errorf("%s: %w", source, err)
			}
			r.results <- result{host: h, c: c, err: err}
		}()
	}
}

// issue obtains and stores a certificate for host.
func (m *Manager) issue(ctx context.Context, iss Issuer, host string) (*stored, error) {
	certPEM, keyPEM, err := iss.Issue(ctx, host)
	if err != nil {
		return nil, err
	}
	return m.store.save(host, certPEM, keyPEM)
}

// done takes an issue's outcome: a new certificate goes to the router at
// once; a failure is recorded. done returns when to look at the host
// again: its retry, or its renewal.
func (r *run) done(res result) time.Time {
	delete(r.inFlight, res.host)
	if !r.wanted[res.host] {
		return time.Time{}
	}
	if res.err != nil {
		f := r.failed[res.host]
		f.delay = min(max(f.delay*2, r.m.cfg.RetryAfter), time.Hour)
		f.err, f.next = res.err, time.Now().Add(f.delay)
		r.failed[res.host] = f
		r.m.log.Warn("certificate not issued", "host", res.host, "retry", f.next.Format(time.RFC3339), "err", res.err)
		if hd := r.have[res.host]; hd == nil || !hd.pushed {
			r.m.rt.SetCertError(res.host, res.err.Error())
		} else {
			r.m.rt.SetCertError(res.host, "renewal failed: "+res.err.Error())
		}
		return f.next
	}
	delete(r.failed, res.host)
	hd := &held{c: res.c, trusted: !r.m.cfg.Local.Signed(res.c.leaf)}
	r.have[res.host] = hd
	r.push(res.host, hd)
	lvl := slog.LevelDebug // the local CA signs every host at once; only ACME is news
	if hd.trusted {
		lvl = slog.LevelInfo
	}
	r.m.log.Log(context.Background(), lvl, "certificate issued", "host", res.host, "trusted", hd.trusted, "expires", res.c.leaf.NotAfter.UTC().Format(time.RFC3339))
	return r.due(res.host, hd)
}
