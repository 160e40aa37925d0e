package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/flock-paas/flock/backup"
	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/engine"
	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/scaler"
	"github.com/flock-paas/flock/web"
	"github.com/flock-paas/flock/webhook"
)

// platform is every part `flock up` runs, constructed and wired.
type platform struct {
	rt    *router.Router
	waker *backup.Waker
	sched deploy.Scheduler
	svc   *engine.Service
	sc    *scaler.Scaler
	gh    *webhook.GitHub
	site  *web.Server
	reg   *prometheus.Registry
	certs *httpsCerts // nil without --https
	// builds is the builder as the engine uses it, timed for
	// flock_build_duration_seconds.
	builds *web.TimedBuilder
}

// newPlatform constructs every part in the order their dependencies ask:
// the router and the waker first, since schedulers drain through both;
// the scheduler; the engine over it, which the router and the waker then
// follow (events, not glue); the scaler, which reads the router's stats and
// the waker's proxied apps; and the doors (webhook, git remote, web).
func newPlatform(c upConfig, token string, store *engine.Store, logger *slog.Logger) (*platform, error) {
	p := &platform{reg: prometheus.NewRegistry()}
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := p.newRouting(c, logger); err != nil {
		return nil, err
	}
	artifacts, err := builder.NewSigner(token, slugURLPeriod)
	if err != nil {
		return nil, err
	}
	// Before an instance stops, both paths to it drain: HAProxy's, then
	// the waker's (it proxies held requests straight to instances).
	sched, memEnforced, err := newScheduler(c, deploy.Drainers{p.rt, p.waker}, artifacts.Resign, logger)
	if err != nil {
		return nil, err
	}
	p.sched = sched
	// Builds run as the app's uid (buildas.go).
	b, err := builder.New(builder.Config{Dir: filepath.Join(c.DataDir, "artifacts"), CacheDir: filepath.Join(c.DataDir, "cache"), Logger: logger, StaticServer: staticServer(c.Scheduler),
		RunAs: buildsRunAs(sched, logger)})
	if err != nil {
		return nil, err
	}
	if p.builds, err = web.TimeBuilds(b, p.reg); err != nil {
		return nil, err
	}
	p.svc, err = engine.New(engine.Config{
		Domain: c.Domain, URLPort: urlPort(c.HTTP), Idle: c.Idle, Builds: c.Builds,
		APIHosts:    apiHosts(c.API, c.PublicURL),
		ArtifactURL: c.ArtifactURL, Artifacts: filepath.Join(c.DataDir, "artifacts"), MemoryEnforced: memEnforced,
		Router: p.rt, Signer: artifacts, HTTPS: newHTTPSLinks(c, p.rt),
	}, store, sched, p.builds)
	if err != nil {
		return nil, err
	}
	p.rt.Follow(p.svc)
	p.waker.Follow(p.svc)
	c.Scaler.Logger, c.Scaler.Proxied = logger, p.waker
	if p.sc, err = scaler.New(c.Scaler, p.svc, p.rt); err != nil {
		return nil, err
	}
	p.reg.MustRegister(p.sc) // flock_app_requests_total
	if err := p.newDoors(c, token, b, artifacts, logger); err != nil {
		return nil, err
	}
	return p, nil
}

// newRouting constructs the router, its certificate manager (--https)
// and the waker, HAProxy's backup server.
func (p *platform) newRouting(c upConfig, logger *slog.Logger) error {
	issuer, acmeAddr, err := certIssuer(c, logger)
	if err != nil {
		return err
	}
	p.rt, err = router.New(router.Config{
		Dir: filepath.Join(c.DataDir, "haproxy"), HTTPAddr: c.HTTP, HTTPSAddr: c.HTTPS, ACMEAddr: acmeAddr, StatsAddr: c.Stats, WakerAddr: c.Waker,
		Domain: c.Domain, HardStopAfter: c.HardStop, Logger: logger,
	})
	if err != nil {
		return err
	}
	if p.certs, err = newCertManager(c, issuer, p.rt, logger); err != nil {
		return err
	}
	p.waker, err = backup.New(backup.Config{Addr: c.Waker, QueueSize: c.WakeQueue, Timeout: c.WakeTimeout, Registerer: p.reg, Logger: logger,
		// A held request's body is read only once its app is awake.
		Server: func(s *http.Server) { t := listenerTimeouts; t.Read += c.WakeTimeout; t.apply(s) }})
	return err
}

// newDoors constructs what deploys and users come through: the GitHub
// webhook, the git remote and the web server (API, dashboard, artifacts).
func (p *platform) newDoors(c upConfig, token string, b *builder.Builder, artifacts *builder.Signer, logger *slog.Logger) error {
	svc := p.svc
	gh, err := webhook.NewGitHub(webhook.GitHubConfig{
		Secret: c.GitHubSecret, Token: c.GitHubToken, APIURL: c.GitHubAPIURL, DashboardURL: c.PublicURL, Workers: c.Builds, Logger: logger,
		// An app's descriptor may name the branch its pushes deploy from.
		Branch: func(repo string) string {
			a, err := svc.App(context.Background(), webhook.AppName(repo))
			if err != nil {
				return ""
			}
			return a.Descriptor.Branch
		},
		Deployed: deployedCommits(svc),
	}, deployTree(svc))
	if err != nil {
		return err
	}
	p.gh = gh
	remote, err := webhook.NewRemote(webhook.RemoteConfig{Dir: filepath.Join(c.DataDir, "git"), Token: token, Unpack: builder.Unpack, Logger: logger}, deployTree(svc))
	if err != nil {
		return err
	}
	p.site, err = web.New(web.Config{
		Token: token, TokenFile: tokenFile(c), ReadOnly: c.ReadOnly, Logger: logger, Gatherer: p.reg, Registerer: p.reg, Builds: p.builds,
		Unpack: func(r io.Reader, dir string) error { return builder.Unpack(r, dir, 1<<30) },
		Mounts: map[string]http.Handler{"/hooks/github": gh, "/git/": remote},
		Ready: func() error {
			select {
			case <-p.rt.Ready():
				return nil
			default:
				return errors.New("haproxy is not serving yet")
			}
		},
		// Slugs go to the token or a signed URL; Host must name this API.
		Artifacts: b.Handler(), Signed: artifacts.Verify, Hosts: apiHosts(c.API, c.PublicURL, c.ArtifactURL),
	}, svc)
	return err
}

// deployTree is how a push (webhook or git remote) deploys.
func deployTree(svc *engine.Service) webhook.DeployFunc {
	return func(ctx context.Context, p webhook.Push, dir string, log io.Writer) (string, error) {
		trigger := p.Pusher
		if p.Delivery != "" {
			trigger = "github push by " + p.Pusher
		}
		rel, err := svc.Deploy(ctx, deploy.DeployRequest{App: p.Name, Dir: dir, Commit: p.Commit, Trigger: trigger}, log)
		if err != nil {
			return "", err
		}
		return svc.URL(rel.App), nil
	}
}

// tokenFile is where the token is kept, for the login page and the "flock
// is up" line: --token-file, else <data-dir>/token; "" when it was given
// in --token or FLOCK_TOKEN and no file holds it.
func tokenFile(c upConfig) string {
	switch {
	case c.TokenFrom.file != "":
		return c.TokenFrom.file
	case c.Token != "":
		return ""
	}
	return filepath.Join(c.DataDir, "token")
}

// run listens, then runs every part in an errgroup until ctx ends or one
// of them fails.
func (p *platform) run(ctx context.Context, c upConfig, logger *slog.Logger) error {
	if err := p.waker.Listen(); err != nil {
		return fmt.Errorf("waker on --waker %s: %w", c.Waker, err)
	}
	api := harden(&http.Server{Addr: c.API, Handler: p.site.Handler()})
	ln, err := net.Listen("tcp", c.API)
	if err != nil {
		return fmt.Errorf("listen on --api %s: %w", c.API, err)
	}
	ctx, stopDetach := detachOnSIGUSR2(ctx, logger, p.sched, p.rt)
	defer stopDetach()
	g, ctx := errgroup.WithContext(ctx)
	parts := []interface{ Run(context.Context) error }{p.sched, p.rt, p.svc, p.waker, p.sc, p.gh, p.site}
	if p.certs != nil {
		parts = append(parts, p.certs)
	}
	for _, part := range parts {
		g.Go(func() error { return part.Run(ctx) })
	}
	g.Go(func() error {
		if err := api.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return api.Shutdown(sctx)
	})
	tokenAt := tokenFile(c)
	if tokenAt == "" {
		tokenAt = "--token or FLOCK_TOKEN"
	}
	logger.Info("flock is up", "dashboard", c.PublicURL, "token", tokenAt, "apps", "http://<app>."+c.Domain+urlPort(c.HTTP), "https", httpsApps(c),
		"stats", "http://"+c.Stats+"/stats", "scheduler", c.Scheduler, "data", c.DataDir)
	if c.Demo {
		g.Go(func() error { return deployDemo(ctx, p.svc, p.rt, c.DemoDir, c.DataDir, logger) })
	}
	return g.Wait()
}

// Each part declares the small interface it uses of another: the web
// server, the scaler, the waker and the router use the release engine;
// the engine waits on the router; the scaler reads the router's stats and
// the waker's proxied apps.
var (
	_ web.Platform    = (*engine.Service)(nil)
	_ scaler.Platform = (*engine.Service)(nil)
	_ backup.Platform = (*engine.Service)(nil)
	_ router.Platform = (*engine.Service)(nil)
	_ engine.Router   = (*router.Router)(nil)
	_ scaler.Stats    = (*router.Router)(nil)
	_ scaler.Proxied  = (*backup.Waker)(nil)
)
