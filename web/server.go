// Package web is Flock's dashboard and REST API: every app at a glance, live
// updates over Server-Sent Events, the actions a user takes on an app, and
// /metrics for Prometheus. It speaks to the platform only through the small
// Platform interface below, so it can be tested without the real pipeline.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Reader is what the dashboard and the API read of the platform.
type Reader interface {
	Apps(ctx context.Context) ([]deploy.App, error)
	App(ctx context.Context, name string) (deploy.App, error)
	Releases(ctx context.Context, name string) ([]deploy.Release, error)
	Deploys(ctx context.Context, name string) ([]deploy.Rollout, error)
	DeployByID(ctx context.Context, id string) (deploy.Rollout, error)
	FollowDeploy(ctx context.Context, id string, w io.Writer) error
	Logs(ctx context.Context, name string, follow bool, w io.Writer) error
	Subscribe() (<-chan deploy.Event, func())
	// Config returns an app's config vars with their values; only
	// routes that need the token (never a read-only dashboard) call it.
	Config(ctx context.Context, name string) (map[string]string, error)
	Domains(ctx context.Context, name string) ([]deploy.Domain, error)
}

// Actor is what the API and the dashboard ask the platform to do. Every
// method changes state, so every route that calls one needs the token.
type Actor interface {
	Deploy(ctx context.Context, req deploy.DeployRequest, log io.Writer) (deploy.Release, error)
	Rollback(ctx context.Context, name, release string, log io.Writer) (deploy.Release, error)
	Scale(ctx context.Context, name string, n int) error
	ScaleProcess(ctx context.Context, name, process string, n int) error
	Sleep(ctx context.Context, name string) error
	Wake(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	Create(ctx context.Context, name string) (deploy.App, error)
	SetConfig(ctx context.Context, name string, patch map[string]*string, log io.Writer) (deploy.Release, error)
	AddDomain(ctx context.Context, name, host string) error
	RemoveDomain(ctx context.Context, name, host string) error
}

// Platform is the release pipeline as the web server is given it: a
// Reader and an Actor (cmd/flock passes *engine.Service).
type Platform interface {
	Reader
	Actor
}

// Config configures the dashboard and the API.
type Config struct {
	// Token is the Flock token: API mutations need it as a bearer token,
	// and the dashboard's login asks for it. Required.
	Token string
	// TokenFile is where the token is kept (<data-dir>/token), for the
	// login page's hint; empty when the token was given to flock up
	// (--token or FLOCK_TOKEN) and no file holds it.
	TokenFile string
	// ReadOnly shows the dashboard and answers API reads (except app logs)
	// without login. Off by default.
	ReadOnly bool
	// Unpack extracts an uploaded .tar.gz into dir, refusing paths that
	// leave it. Without it POST /api/v1/deploys answers 501.
	Unpack func(r io.Reader, dir string) error
	// Hosts are the names the API is served under (host, host:port or a
	// URL: --api, --public-url). Requests naming another Host get 421, so
	// a DNS-rebinding page cannot read the API. Loopback names and IP
	// literals always pass.
	Hosts []string
	// Artifacts serves /artifacts/<app>/<release>.tar.gz. It is served to
	// token holders, and to requests on a path that Signed accepts.
	// Optional: without it /artifacts/ answers 404.
	Artifacts http.Handler
	// Signed checks a signed artifact path (the slug URLs handed to
	// schedulers, whose fetchers send no token). It returns the plain
	// /artifacts/ path the signature stands for; "" and no error when the
	// path is not a signed one; an error when the signature is wrong or
	// expired (403). Optional.
	Signed func(path string) (plain string, err error)
	// Mounts are extra handlers by path: a prefix ending in "/" matches
	// every path below it ("/git/"), any other matches exactly
	// ("/hooks/github"). They do their own authentication.
	Mounts map[string]http.Handler
	// Gatherer holds metrics of other parts (the waker's wake phases);
	// /metrics serves them beside Flock's own. Optional.
	Gatherer prometheus.Gatherer
	// Registerer is where the app collector is registered. Default: a
	// registry of the server's own.
	Registerer prometheus.Registerer
	// Builds is the timed builder the pipeline builds through (TimeBuilds);
	// Run drops a destroyed app's build series from it. Optional.
	Builds *TimedBuilder
	// Ready reports whether the platform is up, for /healthz. Default:
	// always ready.
	Ready func() error
	// Logger logs requests at debug level and failures at error level.
	// Default: slog.Default().
	Logger *slog.Logger
	// MaxUpload caps an uploaded source archive. Default 512 MiB.
	MaxUpload int64
	// SampleEvery is how often Run samples every app's traffic and
	// instances for the sparklines and charts. Default 10s.
	SampleEvery time.Duration
	// TempDir is where uploads are unpacked. Default: os.TempDir().
	TempDir string
}

// Server is the dashboard and the API. Handler serves it; Run samples the
// history behind the charts.
type Server struct {
	cfg      Config
	reader   Reader
	actor    Actor
	log      *slog.Logger
	engine   *gin.Engine
	sessions *sessions
	failed   *failures
	hosts    hosts
	history  *history
	pages    *pages
	metrics  http.Handler
	deploys  *deployCounter
	mounts   []mount
	// stop closes when Run returns, ending the endless streams (events,
	// followed logs) so that an HTTP server's Shutdown is not held up.
	stop     chan struct{}
	stopOnce sync.Once
}

type mount struct {
	prefix string
	h      http.Handler
}

// New validates cfg and builds the server. It starts nothing.
func New(cfg Config, p Platform) (*Server, error) {
	if p == nil {
		return nil, errors.New("web: platform is nil")
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("web: token is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 512 << 20
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 10 * time.Second
	}
	s := &Server{
		cfg:      cfg,
		reader:   p,
		actor:    p,
		log:      cfg.Logger,
		sessions: newSessions(24 * time.Hour),
		failed:   newFailures(),
		hosts:    newHosts(cfg.Hosts),
		history:  newHistory(int(time.Hour / cfg.SampleEvery)),
		deploys:  newDeployCounter(),
		stop:     make(chan struct{}),
	}
	for prefix, h := range cfg.Mounts {
		if !strings.HasPrefix(prefix, "/") || h == nil {
			return nil, fmt.Errorf("web: bad mount %q", prefix)
		}
		s.mounts = append(s.mounts, mount{prefix, h})
	}
	// Longest prefix first, so "/git/x/" would win over "/git/".
	sort.Slice(s.mounts, func(i, j int) bool { return len(s.mounts[i].prefix) > len(s.mounts[j].prefix) })

	m, err := s.newMetrics()
	if err != nil {
		return nil, err
	}
	s.metrics = m
	pg, err := newPages()
	if err != nil {
		return nil, err
	}
	s.pages = pg
	s.engine = s.routes()
	return s, nil
}

// Handler returns the HTTP handler for the --api address.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range s.mounts {
			if r.URL.Path == m.prefix || (strings.HasSuffix(m.prefix, "/") && strings.HasPrefix(r.URL.Path, m.prefix)) {
				m.h.ServeHTTP(w, r)
				return
			}
		}
		s.engine.ServeHTTP(w, r)
	})
}

// Run samples every app's request rate and instance count each
// SampleEvery, for the sparklines and charts, and counts deploys as the
// platform's events tell of them (flock_deploys_total), until ctx ends.
// When it returns it ends every open event stream and followed log, so run
// it under the same context that shuts the HTTP server down.
func (s *Server) Run(ctx context.Context) error {
	events, unsubscribe := s.reader.Subscribe()
	defer unsubscribe()
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	defer s.stopOnce.Do(func() { close(s.stop) })
	s.sample(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sample(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil // the platform ended the subscription
				continue
			}
			s.deploys.observe(ev)
			if ev.Type == "destroyed" && s.cfg.Builds != nil {
				s.cfg.Builds.forget(ev.App)
			}
		}
	}
}

// streamContext is the request's context, also ended when Run returns.
func (s *Server) streamContext(c *gin.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (s *Server) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	apps, err := s.reader.Apps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("sample apps", "err", err)
		}
		return
	}
	s.history.record(time.Now(), apps)
}

func (s *Server) routes() *gin.Engine {
	if gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(s.recover, s.logRequests, s.checkHost)
	e.NoRoute(func(c *gin.Context) { s.fail(c, fmt.Errorf("%s: %w", c.Request.URL.Path, deploy.ErrNotFound)) })
	e.NoMethod(func(c *gin.Context) { s.fail(c, errMethod) })

	e.GET("/healthz", s.healthz)
	e.GET("/metrics", s.readAuth, gin.WrapH(s.metrics))
	e.GET("/artifacts/*path", s.artifacts)
	e.HEAD("/artifacts/*path", s.artifacts)

	api := e.Group("/api/v1")
	api.GET("/apps", s.readAuth, s.listApps)
	api.GET("/apps/:app", s.readAuth, s.getApp)
	api.DELETE("/apps/:app", s.writeAuth, s.destroyApp)
	api.POST("/apps/:app/scale", s.writeAuth, s.scaleApp)
	api.POST("/apps/:app/sleep", s.writeAuth, s.sleepApp)
	api.POST("/apps/:app/wake", s.writeAuth, s.wakeApp)
	api.GET("/apps/:app/releases", s.readAuth, s.releases)
	api.POST("/apps/:app/rollback", s.writeAuth, s.rollback)
	api.GET("/apps/:app/logs", s.logsAuth, s.logs)
	api.POST("/deploys", s.writeAuth, s.upload)
	api.GET("/deploys/:id", s.readAuth, s.getDeploy)
	api.GET("/events", s.readAuth, s.events)
	api.GET("/openapi.json", s.readAuth, s.openapi)
	api.POST("/apps", s.writeAuth, s.createApp)
	api.GET("/apps/:app/config", s.logsAuth, s.getConfig)
	api.PATCH("/apps/:app/config", s.writeAuth, s.patchConfig)
	api.GET("/apps/:app/domains", s.readAuth, s.listDomains)
	api.POST("/apps/:app/domains", s.writeAuth, s.addDomain)
	api.DELETE("/apps/:app/domains/:host", s.writeAuth, s.removeDomain)

	s.pageRoutes(e)
	return e
}

func (s *Server) healthz(c *gin.Context) {
	if err := s.cfg.Ready(); err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", v)
			if !c.Writer.Written() {
				s.fail(c, fmt.Errorf("panic: %v", v))
			}
			c.Abort()
		}
	}()
	c.Next()
}

func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.log.Debug("http", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "duration", time.Since(start))
}
