package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/flock-paas/flock/backup"
	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/local"
	"github.com/flock-paas/flock/deploy/marathon"
	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/scaler"
	"github.com/flock-paas/flock/web"
	"github.com/flock-paas/flock/webhook"
)

// upConfig is everything `flock up` is told by flags and environment.
type upConfig struct {
	DataDir, Domain, HTTP, API, Stats, Waker string
	Scheduler, MarathonURL, MarathonGroup    string
	GitHubSecret, GitHubToken, GitHubAPIURL  string
	ArtifactURL, Token, DemoDir, LogLevel    string
	PublicURL                                string
	Idle, WakeTimeout, HardStop              time.Duration
	Builds, WakeQueue                        int
	Demo, ReadOnly                           bool
	Scaler                                   scaler.Config // its flags: scaler.Config.AddFlags
}

func upCmd() *cobra.Command {
	var c upConfig
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the platform in the foreground (API, dashboard, git remote, scheduler, HAProxy, scaler, waker)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c.DataDir, _ = cmd.Flags().GetString("data-dir")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return up(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Domain, "domain", envOr("FLOCK_DOMAIN", "localhost"), "apps answer at http://<app>.<domain> (env FLOCK_DOMAIN)")
	f.StringVar(&c.HTTP, "http", envOr("FLOCK_HTTP", "127.0.0.1:8000"), "public HTTP entry, served by HAProxy (env FLOCK_HTTP)")
	f.StringVar(&c.API, "api", envOr("FLOCK_API", "127.0.0.1:8080"), "API, dashboard, webhook, git remote and artifacts (env FLOCK_API)")
	f.StringVar(&c.Stats, "stats", envOr("FLOCK_STATS", "127.0.0.1:9090"), "HAProxy stats page, /stats;csv (env FLOCK_STATS)")
	f.StringVar(&c.Waker, "waker", envOr("FLOCK_WAKER", "127.0.0.1:8001"), "the waker, HAProxy's backup server; keep it on loopback (env FLOCK_WAKER)")
	f.StringVar(&c.Scheduler, "scheduler", envOr("FLOCK_SCHEDULER", "local"), "local (this machine) or marathon (env FLOCK_SCHEDULER)")
	f.StringVar(&c.MarathonURL, "marathon-url", envOr("FLOCK_MARATHON_URL", ""), "Marathon URLs, comma-separated (env FLOCK_MARATHON_URL)")
	f.StringVar(&c.MarathonGroup, "marathon-group", envOr("FLOCK_MARATHON_GROUP", "/flock"), "Marathon group that holds Flock's apps (env FLOCK_MARATHON_GROUP)")
	f.StringVar(&c.GitHubSecret, "github-secret", envOr("FLOCK_GITHUB_SECRET", ""), "GitHub webhook secret; without it the webhook answers 503 (env FLOCK_GITHUB_SECRET)")
	f.StringVar(&c.GitHubToken, "github-token", envOr("FLOCK_GITHUB_TOKEN", ""), "GitHub token for private clones and commit statuses (env FLOCK_GITHUB_TOKEN)")
	f.StringVar(&c.GitHubAPIURL, "github-api-url", envOr("FLOCK_GITHUB_API_URL", ""), "GitHub Enterprise API base URL (env FLOCK_GITHUB_API_URL)")
	f.StringVar(&c.ArtifactURL, "artifact-url", envOr("FLOCK_ARTIFACT_URL", ""), "base URL schedulers fetch slugs from; default http://<--api> (env FLOCK_ARTIFACT_URL)")
	f.StringVar(&c.PublicURL, "public-url", envOr("FLOCK_PUBLIC_URL", ""), "the dashboard's URL as users reach it, for links Flock sends out (GitHub statuses); default http://<--api> (env FLOCK_PUBLIC_URL)")
	f.StringVar(&c.Token, "token", envOr("FLOCK_TOKEN", ""), "API token; default: generated once and kept in <data-dir>/token (env FLOCK_TOKEN)")
	f.StringVar(&c.DemoDir, "demo-dir", "docs/examples/hello", "the app --demo deploys")
	f.StringVar(&c.LogLevel, "log-level", envOr("FLOCK_LOG_LEVEL", "info"), "debug, info, warn or error (env FLOCK_LOG_LEVEL)")
	f.DurationVar(&c.Idle, "idle", envDuration("FLOCK_IDLE", 15*time.Minute), "default idle time before an app sleeps (env FLOCK_IDLE)")
	c.Scaler.AddFlags(f)
	c.Scaler.Every = envDuration("FLOCK_SCALE_EVERY", c.Scaler.Every)
	f.Lookup("scale-every").Usage += " (env FLOCK_SCALE_EVERY)"
	f.DurationVar(&c.WakeTimeout, "wake-timeout", envDuration("FLOCK_WAKE_TIMEOUT", 60*time.Second), "how long a request waits for a sleeping app to wake (env FLOCK_WAKE_TIMEOUT)")
	f.DurationVar(&c.HardStop, "hard-stop-after", 10*time.Minute, "how long an old HAProxy worker may finish its connections after a reload")
	f.IntVar(&c.Builds, "builds", 2, "apps that may build at once")
	f.IntVar(&c.WakeQueue, "wake-queue", 1000, "requests held per app while it wakes; beyond, 503")
	f.BoolVar(&c.Demo, "demo", false, "deploy the demo app (--demo-dir) at start")
	f.BoolVar(&c.ReadOnly, "read-only-dashboard", false, "show the dashboard without login (read only)")
	return cmd
}

// envDuration reads a duration from the environment. A value that does not
// parse stops Flock: silently running with the default would surprise.
func envDuration(key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "flock: %s=%q is not a duration (like 15m or 10s)\n", key, v)
		os.Exit(2)
	}
	return d
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// loadToken returns the API token: the flag, else <data-dir>/token, made
// at first start with 32 random bytes.
func loadToken(dataDir, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	path := filepath.Join(dataDir, "token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write token: %w", err)
	}
	return tok, nil
}

// urlPort is what app URLs carry after the host: nothing on port 80.
func urlPort(httpAddr string) string {
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "80" {
		return ""
	}
	return ":" + port
}

func up(ctx context.Context, c upConfig) error {
	logger, err := newLogger(c.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := closeDataDir(c.DataDir, "instances"); err != nil {
		return err
	}
	token, err := loadToken(c.DataDir, c.Token)
	if err != nil {
		return err
	}
	if c.ArtifactURL == "" {
		c.ArtifactURL = "http://" + c.API
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.API
	}
	store, err := deploy.OpenStore(c.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	b, err := builder.New(builder.Config{Dir: filepath.Join(c.DataDir, "artifacts"), CacheDir: filepath.Join(c.DataDir, "cache"), Logger: logger})
	if err != nil {
		return err
	}
	rt, err := router.New(router.Config{
		Dir: filepath.Join(c.DataDir, "haproxy"), HTTPAddr: c.HTTP, StatsAddr: c.Stats, WakerAddr: c.Waker,
		Domain: c.Domain, HardStopAfter: c.HardStop, Logger: logger,
	})
	if err != nil {
		return err
	}
	// Before an instance stops, both paths to it drain: HAProxy's and the
	// waker's (it proxies held requests straight to instances).
	var waker *backup.Waker
	drainer := deploy.DrainFunc(func(ctx context.Context, app string, in deploy.Instance) error {
		err := rt.Drain(ctx, app, in)
		if waker != nil {
			if werr := waker.Drain(ctx, app, in); err == nil {
				err = werr
			}
		}
		return err
	})
	sched, memEnforced, err := newScheduler(c, drainer, logger)
	if err != nil {
		return err
	}
	artifacts := newSigner(token)
	svc, err := deploy.New(deploy.Config{
		Domain: c.Domain, URLPort: urlPort(c.HTTP), Idle: c.Idle, Builds: c.Builds,
		ArtifactURL: c.ArtifactURL, Artifacts: filepath.Join(c.DataDir, "artifacts"), MemoryEnforced: memEnforced,
		Routed: rt.WaitRouted, RouteErr: rt.Err, SignURL: artifacts.signURL,
	}, store, sched, b)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	waker, err = backup.New(backup.Config{Addr: c.Waker, QueueSize: c.WakeQueue, Timeout: c.WakeTimeout, Registerer: reg, Logger: logger}, svc)
	if err != nil {
		return err
	}
	c.Scaler.Logger = logger
	sc, err := scaler.New(c.Scaler, svc, allStats(rt))
	if err != nil {
		return err
	}
	deployTree := func(ctx context.Context, p webhook.Push, dir string, log io.Writer) (string, error) {
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
	}, deployTree)
	if err != nil {
		return err
	}
	remote, err := webhook.NewRemote(webhook.RemoteConfig{Dir: filepath.Join(c.DataDir, "git"), Token: token, Unpack: builder.Unpack, Logger: logger}, deployTree)
	if err != nil {
		return err
	}
	site, err := web.New(web.Config{
		Token: token, ReadOnly: c.ReadOnly, Logger: logger, Gatherer: reg, Registerer: reg,
		Unpack: func(r io.Reader, dir string) error { return builder.Unpack(r, dir, 1<<30) },
		Mounts: map[string]http.Handler{"/hooks/github": gh, "/git/": remote, "/artifacts/": artifacts.guard(token, b.Handler())},
		Ready: func() error {
			select {
			case <-rt.Ready():
				return nil
			default:
				return errors.New("haproxy is not serving yet")
			}
		},
	}, svc)
	if err != nil {
		return err
	}
	if err := waker.Listen(); err != nil {
		return fmt.Errorf("waker on --waker %s: %w", c.Waker, err)
	}
	api := &http.Server{Addr: c.API, Handler: site.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", c.API)
	if err != nil {
		return fmt.Errorf("listen on --api %s: %w", c.API, err)
	}

	// HAProxy's first configuration already holds every app, so that after
	// a restart requests wait in the waker while apps come back instead of
	// meeting a 404.
	if apps, err := svc.Apps(ctx); err == nil {
		rt.Update(apps)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(ctx) })
	g.Go(func() error { return rt.Run(ctx) })
	g.Go(func() error { return svc.Run(ctx) })
	g.Go(func() error { return waker.Run(ctx) })
	g.Go(func() error { return sc.Run(ctx) })
	g.Go(func() error { return gh.Run(ctx) })
	g.Go(func() error { return site.Run(ctx) })
	g.Go(func() error { return keepProxiedAwake(ctx, waker, sc) })
	g.Go(func() error { return feedRouter(ctx, svc, rt) })
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
	tokenAt := filepath.Join(c.DataDir, "token")
	if c.Token != "" {
		tokenAt = "--token"
	}
	logger.Info("flock is up", "dashboard", c.PublicURL, "token", tokenAt, "apps", "http://<app>."+c.Domain+urlPort(c.HTTP),
		"stats", "http://"+c.Stats+"/stats", "scheduler", c.Scheduler, "data", c.DataDir)
	if c.Demo {
		g.Go(func() error { return deployDemo(ctx, svc, rt, c.DemoDir, logger) })
	}
	return g.Wait()
}

func newScheduler(c upConfig, drainer deploy.Drainer, logger *slog.Logger) (deploy.Scheduler, bool, error) {
	switch c.Scheduler {
	case "local":
		s, err := local.New(local.Config{
			Dir: filepath.Join(c.DataDir, "instances"), Drainer: drainer, Logger: logger,
			Unpack: func(slug, dir string) error {
				f, err := os.Open(slug)
				if err != nil {
					return err
				}
				defer f.Close()
				return builder.Unpack(f, dir, 4<<30)
			},
		})
		if err != nil {
			return nil, false, err
		}
		return s, s.MemoryEnforced(), nil
	case "marathon":
		if c.MarathonURL == "" {
			return nil, false, errors.New("--scheduler marathon needs --marathon-url (env FLOCK_MARATHON_URL)")
		}
		s, err := marathon.New(marathon.Config{URLs: strings.Split(c.MarathonURL, ","), Group: c.MarathonGroup, Drainer: drainer, Logger: logger})
		if err != nil {
			return nil, false, err
		}
		return s, true, nil
	}
	return nil, false, fmt.Errorf("--scheduler %q: want local or marathon", c.Scheduler)
}

func deployDemo(ctx context.Context, svc *deploy.Service, rt *router.Router, dir string, logger *slog.Logger) error {
	select {
	case <-rt.Ready():
	case <-ctx.Done():
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		logger.Error("demo: the demo app is not there; run flock up --demo from the repository, or pass --demo-dir", "dir", dir)
		return nil
	}
	w := &logWriter{logger: logger.With("app", "demo")}
	rel, err := svc.Deploy(ctx, deploy.DeployRequest{Dir: dir, Trigger: "demo"}, w)
	if err != nil {
		logger.Error("demo deploy failed", "err", err)
		return nil
	}
	logger.Info("demo app deployed", "url", svc.URL(rel.App))
	return nil
}

// logWriter turns a deploy log into log lines.
type logWriter struct{ logger *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.logger.Info(line)
		}
	}
	return len(p), nil
}
