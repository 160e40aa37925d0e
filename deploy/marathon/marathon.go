// Package marathon is Flock's scheduler for a Mesos/Marathon cluster: one
// Marathon app per Flock app, written through go-marathon, read back with
// lenient types, kept fresh by Marathon's event stream.
package marathon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Config configures the Marathon scheduler.
type Config struct {
	// URLs are the Marathons of the cluster (--marathon-url, split on
	// commas by the caller). Any member works: non-leaders proxy to the
	// leader. Required.
	URLs []string
	// Group is the Marathon group of Flock's apps; an app is the group
	// <Group>/<app>, its process types the apps <Group>/<app>/web,
	// <Group>/<app>/<type> (appdef.go). Default "/flock".
	Group string
	// Drainer takes instances out of rotation before they are stopped.
	// Optional: without it instances are stopped at once.
	Drainer deploy.Drainer
	// DeployTimeout bounds the wait for a Marathon deployment. Default 5m.
	DeployTimeout time.Duration
	// Resync is how often every app is re-read, whatever the events said.
	// Default 3m.
	Resync time.Duration
	// EventIdle is how long the event stream may stay silent before it is
	// reconnected; Marathon sends a heartbeat every 10 s. Default 1m.
	EventIdle time.Duration
	// HTTPClient talks to Marathon. Default: a client with a 15 s timeout
	// (the event stream uses a copy without the timeout).
	HTTPClient *http.Client
	// Logger receives the event loop's logs. Default slog.Default().
	Logger *slog.Logger
	// User and Password authenticate with HTTP basic auth (Marathon's
	// --http_credentials; --marathon-user, --marathon-password[-file]).
	// Credentials in a URL ("http://user:pw@host") are used the same way
	// when User is empty. Optional.
	User, Password string
	// TokenFile holds a DC/OS token, sent as "Authorization: token=<t>"
	// (--marathon-token-file); it is re-read when it changes. It wins over
	// User. Optional.
	TokenFile string
	// Resign, when set, returns a freshly signed URL for a slug URL that
	// Flock signed earlier (signed slug URLs expire). Waking an app from
	// zero instances sends the fresh URL with the new count: no task runs
	// then, so the change restarts nothing. Optional.
	Resign func(url string) string
	// AgentPort is the Mesos agents' HTTP port, where Logs reads the
	// tasks' sandboxes (--mesos-agent-port). Default DefaultAgentPort.
	AgentPort int
}

// Scheduler runs Flock's apps as Marathon apps. It implements
// deploy.Scheduler; Run keeps its cache of apps and instances in step with
// Marathon.
type Scheduler struct {
	cfg Config
	api api
	log *slog.Logger

	mu      sync.Mutex
	apps    map[string]*entry      // by Flock app name
	synced  bool                   // a full list has succeeded once
	pending map[string]bool        // apps changed, not yet sent on Changes
	waiting map[string]string      // deployment id → app, while Deploy waits
	done    map[string]bool        // deployment id → succeeded, from events
	specs   map[string]deploy.Spec // process type → the spec last deployed, for a move (move.go)
	flat    map[string]bool        // app → its Marathon apps have the flat layout (appdef.go)
	// forgets counts forget calls; forgotAt holds its value when each app
	// was last forgotten. A read of Marathon begun before that is stale:
	// storing it would bring back the app a Remove has just deleted.
	forgets  uint64
	forgotAt map[string]uint64

	version   string    // Marathon's, from /v2/info (version.go)
	versionAt time.Time // when it was read

	wake    chan struct{} // a change is pending (cap 1)
	kick    chan struct{} // a deployment event arrived (cap 1)
	changes chan string

	// Timings, shortened by tests.
	pollEvery, debounce, retryBase, backoffMax time.Duration
	retries                                    int
}

// entry is the cached state of one app.
type entry struct {
	app       mApp
	instances []deploy.Instance
	older     map[string]string // task version → release, for rolling upgrades
	at        time.Time         // when it was read
}

// staleDeploying is how old the cache of an app with a deployment in
// progress may be before Instances re-reads it.
const staleDeploying = 500 * time.Millisecond

// New validates cfg and returns a Scheduler; it contacts nobody.
func New(cfg Config) (*Scheduler, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("marathon: no URL (--marathon-url): %w", deploy.ErrInvalid)
	}
	cfg.URLs = slices.Clone(cfg.URLs) // trimmed below; the caller's slice stays as it was
	cred := &credentials{user: cfg.User, password: cfg.Password, tokenFile: cfg.TokenFile}
	for i, u := range cfg.URLs {
		clean, user, pw, err := splitUserinfo(strings.TrimSuffix(strings.TrimSpace(u), "/"))
		if err != nil {
			return nil, err
		}
		if user != "" && cfg.User == "" {
			if cred.user != "" && (cred.user != user || cred.password != pw) {
				return nil, fmt.Errorf("marathon: the URLs carry different credentials; use --marathon-user: %w", deploy.ErrInvalid)
			}
			cred.user, cred.password = user, pw
		}
		cfg.URLs[i] = clean
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, fmt.Errorf("marathon: a password without a user (--marathon-user): %w", deploy.ErrInvalid)
	}
	if cfg.Group == "" {
		cfg.Group = "/flock"
	}
	if !strings.HasPrefix(cfg.Group, "/") || strings.ContainsAny(cfg.Group, " ?#") {
		return nil, fmt.Errorf("marathon: group %q must start with /: %w", cfg.Group, deploy.ErrInvalid)
	}
	if cfg.DeployTimeout <= 0 {
		cfg.DeployTimeout = 5 * time.Minute
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 3 * time.Minute
	}
	if cfg.EventIdle <= 0 {
		cfg.EventIdle = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Scheduler{
		cfg:        cfg,
		api:        newCluster(cfg.URLs, withAuth(cfg.HTTPClient, cred)),
		log:        cfg.Logger,
		apps:       map[string]*entry{},
		pending:    map[string]bool{},
		waiting:    map[string]string{},
		done:       map[string]bool{},
		flat:       map[string]bool{},
		forgotAt:   map[string]uint64{},
		specs:      map[string]deploy.Spec{},
		wake:       make(chan struct{}, 1),
		kick:       make(chan struct{}, 1),
		changes:    make(chan string),
		pollEvery:  time.Second,
		debounce:   250 * time.Millisecond,
		retryBase:  500 * time.Millisecond,
		backoffMax: 15 * time.Second,
		retries:    5,
	}, nil
}

// Changes implements deploy.Scheduler. Names are coalesced while the reader
// is busy, so the last change of an app is never lost. It is fed by Run.
func (s *Scheduler) Changes() <-chan string { return s.changes }

// Instances implements deploy.Scheduler from the cache; an app not cached
// yet is read from Marathon, and an app Marathon does not have has no
// instances. While Marathon is unreachable the last good state is served;
// an app never read fails with the unreachable error.
func (s *Scheduler) Instances(ctx context.Context, app string) ([]deploy.Instance, error) {
	if !deploy.ValidName(app) {
		return nil, fmt.Errorf("instances %q: %w", app, deploy.ErrInvalid)
	}
	s.mu.Lock()
	e, ok := s.apps[app]
	s.mu.Unlock()
	if ok && len(e.app.Deployments) > 0 && time.Since(e.at) > staleDeploying {
		// A deployment (a wake, a release) is in progress: do not depend
		// on the event stream alone for the moment it ends.
		if err := s.refresh(ctx, app); err == nil {
			s.mu.Lock()
			e, ok = s.apps[app]
			s.mu.Unlock()
		}
	}
	if ok {
		return s.withBridge(app, e.instances), nil
	}
	if err := s.refresh(ctx, app); err != nil {
		return nil, fmt.Errorf("instances %s: %w", app, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.apps[app]; ok {
		return s.withBridgeLocked(app, e.instances), nil
	}
	return s.withBridgeLocked(app, []deploy.Instance{}), nil // not in Marathon (yet): none, as the embedded scheduler says
}

// refresh re-reads one app and updates the cache; a missing app is
// forgotten.
func (s *Scheduler) refresh(ctx context.Context, app string) error {
	if err := s.layout(ctx, app); err != nil {
		return err
	}
	since := s.readBegins()
	a, err := s.api.App(ctx, s.appID(app))
	if errors.Is(err, errNotFound) || (err == nil && a.Labels[managedLabel] != "true") {
		s.forget(app)
		return nil
	}
	if err != nil {
		return err
	}
	s.store(app, a, since)
	return nil
}

// resync re-reads every Flock app and replaces the cache.
func (s *Scheduler) resync(ctx context.Context) error {
	since := s.readBegins()
	apps, err := s.api.Apps(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range apps {
		name, _, ok := s.appName(a.ID)
		if !ok || a.Labels[managedLabel] != "true" {
			continue
		}
		seen[name] = true
		s.store(name, a, since)
	}
	s.mu.Lock()
	s.synced = true
	var gone []string
	for name := range s.apps {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.forget(name)
	}
	return nil
}

// readBegins marks the start of a read of Marathon, for store.
func (s *Scheduler) readBegins() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forgets
}

// store caches app a, read from Marathon since readBegins said since,
// under name and signals a change when its instances differ from the
// cached ones. A read older than the app's last forget is dropped: the
// app was removed (or found gone) meanwhile, and the next read tells.
func (s *Scheduler) store(name string, a mApp, since uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forgotAt[name] > since {
		return
	}
	old := s.apps[name]
	e := &entry{app: a, older: map[string]string{}, at: time.Now()}
	if old != nil {
		// Only versions of tasks still running can be asked about: the
		// map would otherwise gain an entry with every release, for ever.
		for k, v := range old.older {
			if slices.ContainsFunc(a.Tasks, func(t mTask) bool { return t.Version == k }) {
				e.older[k] = v
			}
		}
		if r := old.app.Labels[releaseLabel]; r != "" && r != a.Labels[releaseLabel] {
			for _, t := range old.app.Tasks {
				if old.app.current(t) {
					e.older[t.Version] = r
				}
			}
		}
	}
	e.instances = a.instances(e.older)
	s.apps[name] = e
	if _, flat, ok := s.appName(a.ID); ok && !isBridge(name) {
		s.flat[parentApp(name)] = flat
	}
	if old == nil || !sameInstances(old.instances, e.instances) {
		s.notifyLocked(name)
	}
}

func (s *Scheduler) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgets++
	s.forgotAt[name] = s.forgets
	if _, ok := s.apps[name]; ok {
		delete(s.apps, name)
		s.notifyLocked(name)
	}
}

func (s *Scheduler) notifyLocked(name string) {
	if isBridge(name) { // its instances are the app's (withBridge)
		name = parentApp(name)
	}
	s.pending[name] = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump sends pending app names on Changes until ctx ends.
func (s *Scheduler) pump(ctx context.Context) {
	for {
		s.mu.Lock()
		var names []string
		for n := range s.pending {
			names = append(names, n)
		}
		clear(s.pending)
		s.mu.Unlock()
		slices.Sort(names)
		for _, n := range names {
			select {
			case s.changes <- n:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

func sameInstances(a, b []deploy.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y deploy.Instance) bool {
		return x.ID == y.ID && x.Healthy == y.Healthy && x.Host == y.Host &&
			x.Release == y.Release && slices.Equal(x.Ports, y.Ports)
	})
}

var _ deploy.Scheduler = (*Scheduler)(nil)
