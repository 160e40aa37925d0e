package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy/engine"

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
	HTTPS                                    string // "" : no HTTPS (https.go)
	Scheduler, MarathonURL, MarathonGroup    string
	MarathonUser, MarathonPassword           string // basic auth; the password resolved from MarathonPasswordFrom
	MarathonTokenFile                        string // DC/OS token, re-read by the scheduler when it changes
	MarathonPasswordFrom                     secretSource
	GitHubSecret, GitHubToken, GitHubAPIURL  string
	ArtifactURL, Token, DemoDir, LogLevel    string
	PublicURL                                string
	Idle, WakeTimeout, HardStop              time.Duration
	Builds, WakeQueue                        int
	MesosAgentPort                           int // where Logs reads Marathon tasks' sandboxes
	Demo, ReadOnly                           bool
	Scaler                                   scaler.Config // its flags: scaler.Config.AddFlags
	// TokenFrom, GitHubSecretFrom and GitHubTokenFrom say where Token,
	// GitHubSecret and GitHubToken come from: the flag or environment, or a
	// file (secrets.go).
	TokenFrom, GitHubSecretFrom, GitHubTokenFrom secretSource

	ACME acmeConfig // --acme-* (https.go)
}

func upCmd() *cobra.Command {
	var c upConfig
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the platform in the foreground (API, dashboard, git remote, scheduler, HAProxy, scaler, waker)",
		RunE: func(cmd *cobra.Command, args []string) error {
			c.DataDir, _ = cmd.Flags().GetString("data-dir")
			c.TokenFrom.value, c.TokenFrom.onCmdline = c.Token, cmd.Flags().Changed("token")
			c.GitHubSecretFrom.value, c.GitHubSecretFrom.onCmdline = c.GitHubSecret, cmd.Flags().Changed("github-secret")
			c.GitHubTokenFrom.value, c.GitHubTokenFrom.onCmdline = c.GitHubToken, cmd.Flags().Changed("github-token")
			c.MarathonPasswordFrom.value, c.MarathonPasswordFrom.onCmdline = c.MarathonPassword, cmd.Flags().Changed("marathon-password")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return up(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Domain, "domain", envOr("FLOCK_DOMAIN", "localhost"), "apps answer at http://<app>.<domain> (env FLOCK_DOMAIN)")
	f.StringVar(&c.HTTP, "http", envOr("FLOCK_HTTP", "127.0.0.1:8000"), "public HTTP entry, served by HAProxy (env FLOCK_HTTP)")
	f.StringVar(&c.HTTPS, "https", envOr("FLOCK_HTTPS", ""), "public HTTPS entry, served by HAProxy with a certificate per app host (e.g. 127.0.0.1:8443 or :443); off by default (env FLOCK_HTTPS)")
	addACMEFlags(f, &c.ACME)
	f.StringVar(&c.API, "api", envOr("FLOCK_API", "127.0.0.1:8080"), "API, dashboard, webhook, git remote and artifacts (env FLOCK_API)")
	f.StringVar(&c.Stats, "stats", envOr("FLOCK_STATS", "127.0.0.1:9090"), "HAProxy stats page, /stats;csv (env FLOCK_STATS)")
	f.StringVar(&c.Waker, "waker", envOr("FLOCK_WAKER", "127.0.0.1:8001"), "the waker, HAProxy's backup server; keep it on loopback (env FLOCK_WAKER)")
	f.StringVar(&c.Scheduler, "scheduler", envOr("FLOCK_SCHEDULER", "local"), "local (this machine) or marathon (env FLOCK_SCHEDULER)")
	f.StringVar(&c.MarathonURL, "marathon-url", envOr("FLOCK_MARATHON_URL", ""), "Marathon URLs, comma-separated (env FLOCK_MARATHON_URL)")
	f.StringVar(&c.MarathonGroup, "marathon-group", envOr("FLOCK_MARATHON_GROUP", "/flock"), "Marathon group that holds Flock's apps (env FLOCK_MARATHON_GROUP)")
	f.IntVar(&c.MesosAgentPort, "mesos-agent-port", marathon.DefaultAgentPort, "HTTP port of the Mesos agents, where `flock logs` reads Marathon tasks' output")
	f.StringVar(&c.MarathonUser, "marathon-user", envOr("FLOCK_MARATHON_USER", ""), "HTTP basic auth user for Marathon's --http_credentials (env FLOCK_MARATHON_USER)")
	f.StringVar(&c.MarathonPassword, "marathon-password", envOr("FLOCK_MARATHON_PASSWORD", ""), "HTTP basic auth password for Marathon; prefer --marathon-password-file (env FLOCK_MARATHON_PASSWORD)")
	c.MarathonPasswordFrom.flag = "marathon-password"
	f.StringVar(&c.MarathonPasswordFrom.file, "marathon-password-file", envOr("FLOCK_MARATHON_PASSWORD_FILE", ""), "file holding the Marathon password (env FLOCK_MARATHON_PASSWORD_FILE)")
	f.StringVar(&c.MarathonTokenFile, "marathon-token-file", envOr("FLOCK_MARATHON_TOKEN_FILE", ""), "file holding a DC/OS token, sent as Authorization: token=…; re-read when it changes (env FLOCK_MARATHON_TOKEN_FILE)")
	f.StringVar(&c.GitHubSecret, "github-secret", envOr("FLOCK_GITHUB_SECRET", ""), "GitHub webhook secret; without it the webhook answers 503. Prefer --github-secret-file: a command line is readable by every local user (env FLOCK_GITHUB_SECRET)")
	c.GitHubSecretFrom.flag = "github-secret"
	f.StringVar(&c.GitHubSecretFrom.file, "github-secret-file", envOr("FLOCK_GITHUB_SECRET_FILE", ""), "file holding the GitHub webhook secret, kept off the command line (env FLOCK_GITHUB_SECRET_FILE)")
	f.StringVar(&c.GitHubToken, "github-token", envOr("FLOCK_GITHUB_TOKEN", ""), "GitHub token for private clones and commit statuses (env FLOCK_GITHUB_TOKEN)")
	c.GitHubTokenFrom.flag = "github-token"
	f.StringVar(&c.GitHubTokenFrom.file, "github-token-file", envOr("FLOCK_GITHUB_TOKEN_FILE", ""), "file holding the GitHub token (env FLOCK_GITHUB_TOKEN_FILE)")
	f.StringVar(&c.GitHubAPIURL, "github-api-url", envOr("FLOCK_GITHUB_API_URL", ""), "GitHub Enterprise API base URL (env FLOCK_GITHUB_API_URL)")
	f.StringVar(&c.ArtifactURL, "artifact-url", envOr("FLOCK_ARTIFACT_URL", ""), "base URL schedulers fetch slugs from; default http://<--api> (env FLOCK_ARTIFACT_URL)")
	f.StringVar(&c.PublicURL, "public-url", envOr("FLOCK_PUBLIC_URL", ""), "the dashboard's URL as users reach it, for links Flock sends out (GitHub statuses); default http://<--api> (env FLOCK_PUBLIC_URL)")
	f.StringVar(&c.Token, "token", envOr("FLOCK_TOKEN", ""), "API token; default: generated once and kept in <data-dir>/token. Prefer --token-file: a command line is readable by every local user (env FLOCK_TOKEN)")
	c.TokenFrom.flag = "token"
	f.StringVar(&c.TokenFrom.file, "token-file", envOr("FLOCK_TOKEN_FILE", ""), "file holding the API token, kept off the command line (env FLOCK_TOKEN_FILE)")
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
// at first start with 32 random bytes. The file is the owner's only (0600);
// one left looser by an older Flock or by hand is tightened.
func loadToken(dataDir, flag string, log *slog.Logger) (string, error) {
	if flag != "" {
		return flag, nil
	}
	path := filepath.Join(dataDir, "token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("token file %s: %w", path, err)
			}
			log.Warn("token file was readable by others; made it 0600", "file", path, "was", fmt.Sprintf("%04o", fi.Mode().Perm()))
		}
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read token: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	// A new file, made 0600 whatever the umask: never written through a
	// file someone put there meanwhile.
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.WriteString(tok + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
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
	if c.Token, err = c.TokenFrom.resolve(); err != nil {
		return err
	}
	if c.GitHubSecret, err = c.GitHubSecretFrom.resolve(); err != nil {
		return err
	}
	if c.GitHubToken, err = c.GitHubTokenFrom.resolve(); err != nil {
		return err
	}
	if c.MarathonPassword, err = c.MarathonPasswordFrom.resolve(); err != nil {
		return err
	}
	for _, s := range []secretSource{c.TokenFrom, c.GitHubSecretFrom, c.GitHubTokenFrom, c.MarathonPasswordFrom} {
		s.warn(logger)
	}
	dropSecretEnv()
	token, err := loadToken(c.DataDir, c.Token, logger)
	if err != nil {
		return err
	}
	// After loadToken, which warns of a token file left readable.
	if err := closeDataDir(c.DataDir, "instances"); err != nil {
		return err
	}
	if c.ArtifactURL == "" {
		c.ArtifactURL = "http://" + c.API
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.API
	}
	store, err := engine.OpenStore(c.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	issuer, acmeAddr, err := certIssuer(c, logger)
	if err != nil {
		return err
	}
	rt, err := router.New(router.Config{
		Dir: filepath.Join(c.DataDir, "haproxy"), HTTPAddr: c.HTTP, HTTPSAddr: c.HTTPS, ACMEAddr: acmeAddr, StatsAddr: c.Stats, WakerAddr: c.Waker,
		Domain: c.Domain, HardStopAfter: c.HardStop, Logger: logger,
	})
	if err != nil {
		return err
	}
	certMgr, err := newCertManager(c, issuer, rt, logger)
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
	artifacts, err := builder.NewSigner(token, slugURLPeriod)
	if err != nil {
		return err
	}
	sched, memEnforced, err := newScheduler(c, drainer, artifacts.Resign, logger)
	if err != nil {
		return err
	}
	// Builds run as the app's uid (buildas.go).
	b, err := builder.New(builder.Config{Dir: filepath.Join(c.DataDir, "artifacts"), CacheDir: filepath.Join(c.DataDir, "cache"), Logger: logger, StaticServer: staticServer(c.Scheduler),
		RunAs: buildsRunAs(sched, logger)})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	builds, err := web.TimeBuilds(b, reg) // flock_build_duration_seconds
	if err != nil {
		return err
	}
	svc, err := engine.New(engine.Config{
		Domain: c.Domain, URLPort: urlPort(c.HTTP), Idle: c.Idle, Builds: c.Builds,
		APIHosts:    apiHosts(c.API, c.PublicURL),
		ArtifactURL: c.ArtifactURL, Artifacts: filepath.Join(c.DataDir, "artifacts"), MemoryEnforced: memEnforced,
		Routed: rt.WaitRouted, RouteErr: rt.Err, SignURL: artifacts.SignURL, HTTPSURL: httpsURL(c, rt),
	}, store, sched, builds)
	if err != nil {
		return err
	}
	waker, err = backup.New(backup.Config{Addr: c.Waker, QueueSize: c.WakeQueue, Timeout: c.WakeTimeout, Registerer: reg, Logger: logger,
		// A held request's body is read only once its app is awake.
		Server: func(s *http.Server) { t := listenerTimeouts; t.Read += c.WakeTimeout; t.apply(s) }}, svc)
	if err != nil {
		return err
	}
	c.Scaler.Logger = logger
	sc, err := scaler.New(c.Scaler, svc, allStats(rt))
	if err != nil {
		return err
	}
	reg.MustRegister(sc) // flock_app_requests_total
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
		Deployed: deployedCommits(svc),
	}, deployTree)
	if err != nil {
		return err
	}
	remote, err := webhook.NewRemote(webhook.RemoteConfig{Dir: filepath.Join(c.DataDir, "git"), Token: token, Unpack: builder.Unpack, Logger: logger}, deployTree)
	if err != nil {
		return err
	}
	// tokenFile is where the token is kept, for the login page and the
	// "flock is up" line: --token-file, else <data-dir>/token; "" when it
	// was given in --token or FLOCK_TOKEN and no file holds it.
	tokenFile := filepath.Join(c.DataDir, "token")
	switch {
	case c.TokenFrom.file != "":
		tokenFile = c.TokenFrom.file
	case c.Token != "":
		tokenFile = ""
	}
	site, err := web.New(web.Config{
		Token: token, TokenFile: tokenFile, ReadOnly: c.ReadOnly, Logger: logger, Gatherer: reg, Registerer: reg, Builds: builds,
		Unpack: func(r io.Reader, dir string) error { return builder.Unpack(r, dir, 1<<30) },
		Mounts: map[string]http.Handler{"/hooks/github": gh, "/git/": remote},
		Ready: func() error {
			select {
			case <-rt.Ready():
				return nil
			default:
				return errors.New("haproxy is not serving yet")
			}
		},
		// Slugs go to the token or a signed URL; Host must name this API.
		Artifacts: b.Handler(), Signed: artifacts.Verify, Hosts: apiHosts(c.API, c.PublicURL, c.ArtifactURL),
	}, svc)
	if err != nil {
		return err
	}
	if err := waker.Listen(); err != nil {
		return fmt.Errorf("waker on --waker %s: %w", c.Waker, err)
	}
	api := harden(&http.Server{Addr: c.API, Handler: site.Handler()})
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
	ctx, stopDetach := detachOnSIGUSR2(ctx, logger, sched, rt)
	defer stopDetach()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(ctx) })
	g.Go(func() error { return rt.Run(ctx) })
	if certMgr != nil {
		g.Go(func() error { return certMgr.Run(ctx) })
	}
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
	tokenAt := tokenFile
	if tokenAt == "" {
		tokenAt = "--token or FLOCK_TOKEN"
	}
	logger.Info("flock is up", "dashboard", c.PublicURL, "token", tokenAt, "apps", "http://<app>."+c.Domain+urlPort(c.HTTP), "https", httpsApps(c),
		"stats", "http://"+c.Stats+"/stats", "scheduler", c.Scheduler, "data", c.DataDir)
	if c.Demo {
		g.Go(func() error { return deployDemo(ctx, svc, rt, c.DemoDir, c.DataDir, logger) })
	}
	return g.Wait()
}

func newScheduler(c upConfig, drainer deploy.Drainer, resign func(string) string, logger *slog.Logger) (deploy.Scheduler, bool, error) {
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
		s, err := marathon.New(marathon.Config{URLs: strings.Split(c.MarathonURL, ","), Group: c.MarathonGroup, Drainer: drainer, Logger: logger, Resign: resign,
			AgentPort: c.MesosAgentPort, User: c.MarathonUser, Password: c.MarathonPassword, TokenFile: c.MarathonTokenFile})
		if err != nil {
			return nil, false, err
		}
		return s, true, nil
	}
	return nil, false, fmt.Errorf("--scheduler %q: want local or marathon", c.Scheduler)
}

// The release pipeline is what the web server, the scaler and the waker
// are given; each declares the small interface it uses.
var (
	_ web.Platform    = (*engine.Service)(nil)
	_ scaler.Platform = (*engine.Service)(nil)
	_ backup.Platform = (*engine.Service)(nil)
)
