// Package router routes every app's hosts through a HAProxy that Flock
// starts and supervises (master-worker mode). Instance changes go through
// HAProxy's runtime API with no reload; a reload, validated first and
// coalesced, happens only when apps (backends) are added or removed.
// The HAProxy model (frontends, backends, the map file, the waker as backup
// server) is described in docs/architecture.md.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// Config configures the router.
type Config struct {
	// Dir holds haproxy.cfg, hosts.map, the sockets and the pid file. It
	// must be an absolute path of plain characters, short enough for a
	// Unix socket path.
	Dir string
	// Binary is the haproxy executable. Default "haproxy" from PATH.
	Binary string
	// HTTPAddr is where apps are served (--http). Default 127.0.0.1:8000.
	HTTPAddr string
	// HTTPSAddr is where apps are served over TLS (--https), with the
	// certificates given to SetCert; "" (the default): no HTTPS. The host
	// may be empty (":443": every address).
	HTTPSAddr string
	// ACMEAddr is the host:port of the handler of ACME's HTTP-01
	// challenges: the HTTP frontend sends it every request for
	// /.well-known/acme-challenge/. "" (the default): such requests go
	// to the apps like any other.
	ACMEAddr string
	// StatsAddr is where the stats page answers at /stats (--stats).
	// Default 127.0.0.1:9090.
	StatsAddr string
	// WakerAddr is the waker's host:port, every backend's backup server.
	// Empty: a backend without a healthy server answers 503 with
	// Retry-After.
	WakerAddr string
	// Domain is the routing domain: an app answers at <app>.<Domain>.
	// Default "localhost".
	Domain string
	// HardStopAfter bounds how long an old worker may keep serving after
	// a reload. Default 2m.
	HardStopAfter time.Duration
	// ReloadDebounce is how long the router waits for more changes before
	// it writes the configuration and reloads. Default 100ms.
	ReloadDebounce time.Duration
	// ReloadMaxWait bounds the wait of a burst of changes. Default 1s.
	ReloadMaxWait time.Duration
	// DrainTimeout bounds how long Drain waits for an instance's sessions
	// to end, and how long HAProxy may take to stop (at most 10s).
	// Default 30s.
	DrainTimeout time.Duration
	// Logger receives the router's logs. Default slog.Default().
	Logger *slog.Logger
}

// Router keeps HAProxy's routing in step with the apps it is given.
type Router struct {
	cfg      Config
	settings settings
	binary   string
	log      *slog.Logger
	admin    hap.Runtime // the current worker, through the master
	master   hap.Runtime // the master itself
	rend     *renderer
	res      *resolver

	kick  chan struct{}
	ready chan struct{}

	mu   sync.Mutex
	p    Platform     // set by Follow; nil when the caller feeds Update
	apps []deploy.App // sorted by name
	// drained: app → server names being drained; true once out of
	// rotation, false while the drain waits for a successor.
	drained   map[string]map[string]bool
	gen       uint64 // bumped by every Update and Drain
	appErrs   map[string]string
	reloadErr error
	liveApps  map[string]bool // backends the running worker has
	// HTTPS (tls.go): the certificates wanted per host, bumped certGen
	// at each change, and why a host has none.
	certs   map[string]Cert
	certGen uint64
	// certsComplete: CertsComplete was called.
	certsComplete bool
	certErrs      map[string]string
	// lastHosts is host → backend of the last model built, for Err.
	lastHosts map[string]string
	// hostsChanged is closed (and replaced) by every Update; hostList is
	// the sorted hosts of generation hostsGen (Hosts).
	hostsChanged chan struct{}
	hostList     []string
	hostsGen     uint64
	// routes is what the current worker routes, as the loop last
	// applied it; changed is closed and replaced whenever routes or the
	// desired state change (see await).
	routes     routes
	changed    chan struct{}
	readyOnce  sync.Once
	testMutate func([]byte) []byte // tests: corrupt a rendered config
	keepOnExit bool                // leave HAProxy running when Run returns (Detach)
}

// New validates cfg and returns a router; it starts nothing. A missing
// haproxy binary is an error that names the Debian package.
func New(cfg Config) (*Router, error) {
	if cfg.Binary == "" {
		cfg.Binary = "haproxy"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8000"
	}
	if cfg.StatsAddr == "" {
		cfg.StatsAddr = "127.0.0.1:9090"
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.HardStopAfter <= 0 {
		cfg.HardStopAfter = 2 * time.Minute
	}
	if cfg.ReloadDebounce <= 0 {
		cfg.ReloadDebounce = 100 * time.Millisecond
	}
	if cfg.ReloadMaxWait <= 0 {
		cfg.ReloadMaxWait = time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("router: haproxy not found (%s); install the Debian package \"haproxy\" (apt-get install haproxy): %w", cfg.Binary, err)
	}
	if !dirRE.MatchString(cfg.Dir) {
		return nil, fmt.Errorf("router: dir %q must be an absolute path of letters, digits and /._+-", cfg.Dir)
	}
	if len(cfg.Dir)+len("/"+masterSocket) > 100 {
		return nil, fmt.Errorf("router: dir %q is too long for a Unix socket path", cfg.Dir)
	}
	for _, a := range []struct{ name, v string }{{"http", cfg.HTTPAddr}, {"stats", cfg.StatsAddr}, {"waker", cfg.WakerAddr},
		{"https", cfg.HTTPSAddr}, {"acme", cfg.ACMEAddr}} {
		if a.v == "" && a.name != "http" && a.name != "stats" {
			continue
		}
		v := a.v
		if a.name == "https" && strings.HasPrefix(v, ":") {
			v = "0.0.0.0" + v // every address
		}
		if err := validAddr(v); err != nil {
			return nil, fmt.Errorf("router: %s address: %w", a.name, err)
		}
	}
	if !validHost(cfg.Domain) {
		return nil, fmt.Errorf("router: domain %q is not a lower-case host name", cfg.Domain)
	}
	s := settings{Dir: cfg.Dir, HTTPAddr: cfg.HTTPAddr, HTTPSAddr: cfg.HTTPSAddr, ACMEAddr: cfg.ACMEAddr, StatsAddr: cfg.StatsAddr, WakerAddr: cfg.WakerAddr, HardStopAfter: cfg.HardStopAfter}
	rend, err := newRenderer(s)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{
		cfg:      cfg,
		settings: s,
		binary:   bin,
		log:      cfg.Logger,
		admin:    hap.Runtime{Path: s.path(masterSocket), Master: true, Prefix: "@1 "},
		master:   hap.Runtime{Path: s.path(masterSocket), Master: true},
		rend:     rend,
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
		drained:  map[string]map[string]bool{},
		appErrs:  map[string]string{},
		liveApps: map[string]bool{},
		certs:    map[string]Cert{},
		certErrs: map[string]string{},
		changed:  make(chan struct{}),

		hostsChanged: make(chan struct{}),
	}
	r.res = newResolver(r.poke) // an agent name resolved: sync again
	return r, nil
}

// validAddr accepts host:port with a numeric port and a plain host.
func validAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q: a host is required", a)
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p <= 0 || p > 65535 || fmt.Sprint(p) != port {
		return fmt.Errorf("%q: bad port", a)
	}
	if _, err := serverAddr(host, p); err != nil {
		return err
	}
	return nil
}

// Update sets the full desired state: every app that exists, with its
// instances. It does not block; Run applies it. A router that follows a
// platform (Follow) calls it itself.
func (r *Router) Update(apps []deploy.App) {
	own := make([]deploy.App, len(apps))
	for i, a := range apps {
		own[i] = ownApp(a)
	}
	slices.SortStableFunc(own, func(a, b deploy.App) int { return strings.Compare(a.Name, b.Name) })
	r.mu.Lock()
	r.setAppsLocked(own, true)
	r.mu.Unlock()
	r.poke()
}

// setAppsLocked makes apps, sorted by name and owned by the router, the
// desired state, forgets drained instances that are gone from their app,
// and wakes whoever awaits a change; the certificate manager (Hosts) only
// when hostsMayChange, so that instance changes cost it nothing. r.mu is
// held.
func (r *Router) setAppsLocked(apps []deploy.App, hostsMayChange bool) {
	r.gen++
	r.apps = apps
	if hostsMayChange {
		close(r.hostsChanged)
		r.hostsChanged = make(chan struct{})
	}
	for app, names := range r.drained {
		still := map[string]bool{}
		for _, a := range apps {
			if a.Name != app {
				continue
			}
			for _, in := range a.Instances {
				if out, ok := names[serverName(in)]; ok {
					still[serverName(in)] = out
				}
			}
		}
		if len(still) == 0 {
			delete(r.drained, app)
		} else {
			r.drained[app] = still
		}
	}
	r.signalLocked()
}

func (r *Router) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Ready is closed once HAProxy serves for the first time.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Err returns why the app is not routed as asked, for `flock apps`: a
// refused domain or instance, the last reload error while the app's
// backend is not live, or why a host of the app has no certificate.
// Empty when all is well.
func (r *Router) Err(app string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.appErrs[app]; e != "" {
		return e
	}
	if r.reloadErr != nil && !r.liveApps[app] {
		return r.reloadErr.Error()
	}
	return r.certErr(app)
}

// snapshot builds the model of the desired state.
func (r *Router) snapshot() *model {
	m, _ := r.snapshotGen()
	return m
}

// snapshotGen builds the model of the desired state and returns the
// generation it reflects.
func (r *Router) snapshotGen() (*model, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := build(r.apps, r.cfg.Domain, r.drained, r.res.resolve(hostNames(r.apps)))
	r.appErrs, r.lastHosts = m.errs, m.hosts
	return m, r.gen
}

// generation counts the changes to the desired state.
func (r *Router) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// Run starts HAProxy (or adopts the one a killed Flock left serving), keeps
// it in step with the desired state (the platform's events after Follow,
// else Update) until ctx ends, restarts it when it dies, and stops it
// before it returns.
func (r *Router) Run(ctx context.Context) error {
	if err := os.MkdirAll(r.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	fctx, stopFollowing := context.WithCancel(ctx)
	follow := r.subscribe(fctx)
	followed := make(chan struct{})
	go func() { defer close(followed); follow() }()
	defer func() { stopFollowing(); <-followed }()
	l := &loop{r: r, checked: make(chan candidate, 1)}
	if r.cfg.HTTPSAddr != "" {
		t, err := newTLSLive(r.settings)
		if err != nil {
			return fmt.Errorf("router: https: %w", err)
		}
		l.tls = t
	}
	if err := l.install(ctx, r.snapshot()); err != nil {
		return fmt.Errorf("router: first configuration: %w", err)
	}
	if _, err := r.adoptOrStart(ctx, l); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("router: %w", err)
	}
	r.readyOnce.Do(func() { close(r.ready) })
	err := l.run(ctx)
	r.mu.Lock()
	keep := r.keepOnExit
	r.mu.Unlock()
	if !keep {
		// Requests in flight may finish; idle keep-alive connections
		// must not hold Flock's exit for long.
		l.proc.stop(r.log, min(r.cfg.DrainTimeout, 10*time.Second))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// Detach makes Run leave HAProxy serving when its context ends, for the
// next router on the same Dir to adopt: how Flock exits for an upgrade
// without a gap in routing.
func (r *Router) Detach() {
	r.mu.Lock()
	r.keepOnExit = true
	r.mu.Unlock()
}

var (
	_ deploy.Drainer   = (*Router)(nil)
	_ deploy.Undrainer = (*Router)(nil)
)
