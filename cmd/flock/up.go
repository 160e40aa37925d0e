package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/spf13/cobra"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/local"
	"github.com/flock-paas/flock/deploy/marathon"
	"github.com/flock-paas/flock/scaler"
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
	logger, token, err := setUp(&c)
	if err != nil {
		return err
	}
	store, err := engine.OpenStore(c.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	p, err := newPlatform(c, token, store, logger)
	if err != nil {
		return err
	}
	return p.run(ctx, c, logger)
}

// setUp settles what the flags leave open: the logger, the data dir (made
// absolute), the secrets kept in files, the API token and the URLs that
// default to --api. It returns the logger and the token.
func setUp(c *upConfig) (*slog.Logger, string, error) {
	logger, err := newLogger(c.LogLevel)
	if err != nil {
		return nil, "", err
	}
	slog.SetDefault(logger)
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("data dir: %w", err)
	}
	if c.Token, err = c.TokenFrom.resolve(); err != nil {
		return nil, "", err
	}
	if c.GitHubSecret, err = c.GitHubSecretFrom.resolve(); err != nil {
		return nil, "", err
	}
	if c.GitHubToken, err = c.GitHubTokenFrom.resolve(); err != nil {
		return nil, "", err
	}
	if c.MarathonPassword, err = c.MarathonPasswordFrom.resolve(); err != nil {
		return nil, "", err
	}
	for _, s := range []secretSource{c.TokenFrom, c.GitHubSecretFrom, c.GitHubTokenFrom, c.MarathonPasswordFrom} {
		s.warn(logger)
	}
	dropSecretEnv()
	token, err := loadToken(c.DataDir, c.Token, logger)
	if err != nil {
		return nil, "", err
	}
	// After loadToken, which warns of a token file left readable.
	if err := closeDataDir(c.DataDir, "instances"); err != nil {
		return nil, "", err
	}
	if c.ArtifactURL == "" {
		c.ArtifactURL = "http://" + c.API
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.API
	}
	return logger, token, nil
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
