// Package backup is the waker: the small HTTP service on loopback that
// every app's HAProxy backend uses as its backup server. HAProxy sends a
// request here, with the header X-Flock-App, only when the app has no live
// server: it sleeps, or all its instances crashed. The waker wakes the app
// (once, however many requests arrive), holds the requests in a bounded
// per-app queue, probes the new instances itself every few milliseconds
// and proxies each held request straight to the first healthy one, without
// waiting for HAProxy to notice it.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flock-paas/flock/router/hap"
)

// HeaderApp names the app a request is for; HAProxy adds it on the backup
// server line of every app's backend.
const HeaderApp = hap.AppHeader

// HeaderColdStart carries, on every response the waker proxied (and on
// its own error pages after a hold), the milliseconds from the request's
// arrival at the waker to the first byte.
const HeaderColdStart = "X-Flock-Cold-Start"

// Platform is what the waker needs of the release pipeline;
// *engine.Service implements it.
type Platform interface {
	// App returns the app with its state and instances, or an error
	// wrapping deploy.ErrNotFound.
	App(ctx context.Context, name string) (deploy.App, error)
	// Wake sets the app's desired instances back and returns without
	// waiting for them; calling it twice is harmless.
	Wake(ctx context.Context, name string) error
	// Fail marks the app failed with a reason users see.
	Fail(name, reason string)
	// Subscribe delivers an event whenever an app's state or instances
	// change, until the returned func is called.
	Subscribe() (<-chan deploy.Event, func())
}

// Config configures the waker.
type Config struct {
	// Addr is the loopback address to listen on. Default "127.0.0.1:0"
	// (any free port; Addr() tells which once Listen has run).
	Addr string
	// QueueSize is how many requests may be held per app while it wakes;
	// more are answered 503 with Retry-After at once. Default 1000.
	QueueSize int
	// Timeout is how long a wake may take before held requests get 504
	// and the app is marked failed. Default 60s.
	Timeout time.Duration
	// ProbeEvery is how often the waker probes a waking app's instances.
	// Default 5ms.
	ProbeEvery time.Duration
	// FailedBackoff is how long after a wake failed a request for the
	// failed app is answered 503 at once instead of starting another wake,
	// so that every visitor of a broken app does not wait Timeout.
	// Default 10s.
	FailedBackoff time.Duration
	// ShutdownGrace is how long Run waits for proxied requests to finish
	// when its context ends. Default 5s.
	ShutdownGrace time.Duration
	// Server, when set, may change the waker's http.Server before it
	// serves (cmd/flock sets the timeouts of all Flock's listeners).
	Server func(*http.Server)
	// Registerer, when set, receives the waker's metrics.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Waker wakes sleeping apps, holds their requests and proxies them to the
// first healthy instance. It is an http.Handler; Run serves it on Addr.
type Waker struct {
	cfg     Config
	p       Platform // set by Follow, before anything runs
	log     *slog.Logger
	m       *metrics
	proxy   *httputil.ReverseProxy
	tr      *http.Transport
	probeHC *http.Client

	// gatesCtx ends when Run shuts down: held requests are released.
	gatesCtx  context.Context
	stopGates context.CancelFunc
	// connCtx ends after the shutdown grace: upgraded connections close.
	connCtx   context.Context
	stopConns context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	stopped  bool // no gate may open: Run is shutting down
	ln       net.Listener
	gates    map[string]*gate
	verified map[string]deploy.Instance // instance a finished wake proved healthy
	failedAt map[string]time.Time       // when the waker last failed a wake
	inflight map[string]*flight         // by instance ID
	draining map[string]time.Time       // instance ID → when its drain began
	next     uint64                     // round robin over healthy instances
}

// New validates cfg and returns a waker; it starts nothing and does not
// listen (see Listen and Run). Metrics are registered on cfg.Registerer.
// The platform comes with Follow.
func New(cfg Config) (*Waker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		return nil, fmt.Errorf("new waker: %w", err)
	}
	if cfg.QueueSize < 0 || cfg.Timeout < 0 || cfg.ProbeEvery < 0 || cfg.FailedBackoff < 0 || cfg.ShutdownGrace < 0 {
		return nil, fmt.Errorf("new waker: negative queue size or duration: %w", deploy.ErrInvalid)
	}
	cfg.QueueSize = orDefault(cfg.QueueSize, 1000)
	cfg.Timeout = orDefault(cfg.Timeout, 60*time.Second)
	cfg.ProbeEvery = orDefault(cfg.ProbeEvery, 5*time.Millisecond)
	cfg.FailedBackoff = orDefault(cfg.FailedBackoff, 10*time.Second)
	cfg.ShutdownGrace = orDefault(cfg.ShutdownGrace, 5*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new waker: %w", err)
	}
	w := &Waker{
		cfg:      cfg,
		log:      cfg.Logger,
		m:        m,
		gates:    make(map[string]*gate),
		verified: make(map[string]deploy.Instance),
		failedAt: make(map[string]time.Time),
		inflight: make(map[string]*flight),
		draining: make(map[string]time.Time),
	}
	w.gatesCtx, w.stopGates = context.WithCancel(context.Background())
	w.connCtx, w.stopConns = context.WithCancel(context.Background())
	w.tr = &http.Transport{
		Proxy:                 nil, // never through an outside proxy: instances are ours
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	w.probeHC = &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		// A redirect answers the check, as it does for HAProxy.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	w.proxy = w.newProxy()
	return w, nil
}

// Follow gives the waker the platform whose apps it wakes. Call it once,
// before Listen, Run or ServeHTTP.
//
// The waker is given the platform after New, not in it: the schedulers the
// platform drives drain through the waker (Drain), so the waker exists
// first.
func (w *Waker) Follow(p Platform) {
	w.mu.Lock()
	w.p = p
	w.mu.Unlock()
}

// Listen binds cfg.Addr so that Addr reports the real port before Run
// (the router needs it for the backup server lines). Run calls it when it
// has not been called; calling it twice is harmless.
func (w *Waker) Listen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", w.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen waker: %w", err)
	}
	w.ln = ln
	return nil
}

// Addr returns the address the waker listens on once Listen (or Run) has
// bound it, else the configured address.
func (w *Waker) Addr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		return w.ln.Addr().String()
	}
	return w.cfg.Addr
}

// Run serves the waker on Addr and follows the platform's events until
// ctx ends; then it answers held requests 503, lets proxied requests
// finish for ShutdownGrace and closes what is left. Run is called once.
func (w *Waker) Run(ctx context.Context) error {
	if w.p == nil {
		return fmt.Errorf("run waker: no platform (Follow): %w", deploy.ErrInvalid)
	}
	if err := w.Listen(); err != nil {
		return err
	}
	events, unsubscribe := w.p.Subscribe()
	defer unsubscribe()
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return w.connCtx },
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelDebug),
	}
	if w.cfg.Server != nil {
		w.cfg.Server(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(w.ln) }()
	defer func() {
		w.shutdownGates()
		w.wg.Wait()
		w.stopConns()
	}()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.notify(ev)
		case err := <-served:
			return fmt.Errorf("serve waker: %w", err)
		case <-ctx.Done():
			w.shutdownGates()
			sctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownGrace)
			err := srv.Shutdown(sctx)
			cancel()
			if err != nil {
				w.log.Warn("waker shutdown cut requests", "err", err)
				srv.Close()
			}
			<-served
			return nil
		}
	}
}

// shutdownGates answers every held request 503 and lets no new gate open.
func (w *Waker) shutdownGates() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.stopGates()
}

// notify pokes the gate of the event's app so it re-reads the app now
// instead of at its next periodic refresh. A destroyed app's memory goes,
// its metric series too: app names come and go, the waker runs for long.
func (w *Waker) notify(ev deploy.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.gates[ev.App]
	if ev.Type == "destroyed" {
		delete(w.verified, ev.App)
		delete(w.failedAt, ev.App)
		if g != nil && g.finished() {
			delete(w.gates, ev.App)
		}
		w.m.forget(ev.App)
	}
	if g != nil {
		select {
		case g.poke <- struct{}{}:
		default:
		}
	}
}

// ServeHTTP answers one request HAProxy sent to the backup server.
func (w *Waker) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	name := r.Header.Get(HeaderApp)
	if name == "" && r.URL.Path == "/healthz" {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(rw, "ok")
		return
	}
	if !deploy.ValidName(name) {
		writePage(rw, &pageError{status: http.StatusBadRequest, msg: "missing or invalid " + HeaderApp + " header"}, "")
		return
	}
	app, err := w.p.App(r.Context(), name)
	switch {
	case errors.Is(err, deploy.ErrNotFound):
		writePage(rw, &pageError{status: http.StatusNotFound, msg: "no app named " + name}, "")
		return
	case err != nil:
		w.log.Warn("waker cannot read app", "app", name, "err", err)
		writePage(rw, &pageError{status: http.StatusServiceUnavailable, retryAfter: 1, msg: "platform unavailable"}, "")
		return
	}
	w.serve(rw, r, app, arrived)
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, deploy.ErrInvalid)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not loopback: %w", addr, deploy.ErrInvalid)
	}
	return nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

var _ http.Handler = (*Waker)(nil)
