// Package engine is Flock's release engine: the pipeline that builds,
// records and rolls out releases through a deploy.Scheduler (Service), the
// per-app deploy queue, the live log of a deploy in progress, and the bbolt
// store of desired state. It owns desired state; the contract it speaks is
// package deploy. Only cmd/flock imports it: the web server, the scaler and
// the waker each declare the small interface they use, and cmd/flock hands
// them the Service.
package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Config configures the release pipeline.
type Config struct {
	// Domain is the routing domain: an app answers at <app>.<Domain>.
	Domain string
	// APIHosts are the host names the API is served under; no app may
	// claim one as a domain.
	APIHosts []string
	// URLPort is appended to app URLs when the router is not on port 80
	// (":8000"); empty for port 80.
	URLPort string
	// Idle is the default idle time before an app sleeps (descriptor's
	// "idle" overrides it). Default 15m.
	Idle time.Duration
	// Builds is how many apps may build at once. Default 2.
	Builds int
	// ArtifactURL is the base URL schedulers fetch slugs from
	// (<ArtifactURL>/artifacts/<app>/<release>.tar.gz).
	ArtifactURL string
	// Artifacts is the artifact store's folder (slugs live at
	// <Artifacts>/<app>/<release>.tar.gz).
	Artifacts string
	// MemoryEnforced is reported in every app's JSON: whether the
	// scheduler enforces "mem".
	MemoryEnforced bool
	// Router, when set, is the router the pipeline waits on before it
	// reports a release live, and whose refusals show as apps' errors.
	Router Router
	// Signer, when set, signs slug URLs handed to schedulers, so that the
	// artifact server can serve them to machines without the token.
	Signer Signer
	// HTTPS, when set, says which apps users should be sent to over
	// HTTPS (their certificate is publicly trusted, so plain HTTP
	// redirects there). Default: every URL is http://.
	HTTPS HTTPSLinks
}

// Service is the release pipeline and the owner of desired state: it
// builds, records releases, rolls them out through the Scheduler, scales,
// sleeps and wakes apps, and tells subscribers what changed.
type Service struct {
	cfg     Config
	store   *Store
	sched   deploy.Scheduler
	builder deploy.Builder
	log     *slog.Logger

	builds chan struct{} // semaphore: cfg.Builds slots
	hosts  hostClaims    // hosts of rollouts in progress

	mu        sync.Mutex
	locks     map[string]*sync.Mutex // per-app lock for state changes
	queues    map[string]*queue      // per-app deploy queue
	deploying map[string]int         // apps with a deploy running
	waking    map[string]bool        // woken, no healthy instance seen yet
	activity  map[string]deploy.Activity
	live      map[string]*liveLog // logs of deploys in progress, by id
	subs      map[int]chan deploy.Event
	nextSub   int
	pubLocks  sync.Map // app → *sync.Mutex: the order of its events (events.go)
	seq       int
}

// New returns a Service over store, scheduler and builder. It starts
// nothing; Run reconciles and follows the scheduler.
func New(cfg Config, store *Store, sched deploy.Scheduler, b deploy.Builder) (*Service, error) {
	if store == nil || sched == nil || b == nil {
		return nil, fmt.Errorf("new service: store, scheduler and builder are required")
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.Idle == 0 {
		cfg.Idle = 15 * time.Minute
	}
	if cfg.Builds <= 0 {
		cfg.Builds = 2
	}
	return &Service{
		cfg: cfg, store: store, sched: sched, builder: b,
		log:       slog.Default().With("part", "deploy"),
		builds:    make(chan struct{}, cfg.Builds),
		locks:     map[string]*sync.Mutex{},
		queues:    map[string]*queue{},
		deploying: map[string]int{},
		waking:    map[string]bool{},
		activity:  map[string]deploy.Activity{},
		live:      map[string]*liveLog{},
		subs:      map[int]chan deploy.Event{},
	}, nil
}

// Run marks deploys interrupted by a previous stop as failed, brings every
// app back to its desired instances, then turns the scheduler's changes
// into events until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.failInterrupted(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	go s.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case app, ok := <-s.sched.Changes():
			if !ok {
				return nil
			}
			s.instancesChanged(ctx, app)
		}
	}
}

func (s *Service) failInterrupted() error {
	ds, err := s.store.deploys("")
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Status == deploy.RolloutQueued || d.Status == deploy.RolloutRunning {
			now := time.Now().UTC()
			d.Status, d.Error, d.FinishedAt = deploy.RolloutFailed, "interrupted: flock stopped during the deploy", &now
			if err := s.store.putDeploy(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// reconcile restarts every app's current release at its desired count
// (zero while asleep or stopped), a few apps at a time.
func (s *Service) reconcile(ctx context.Context) {
	recs, err := s.store.apps()
	if err != nil {
		s.log.Error("reconcile: list apps", "err", err)
		return
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, rec := range recs {
		if rec.Current == "" {
			continue
		}
		rel, err := s.store.release(rec.Name, rec.Current)
		if err != nil {
			s.log.Error("reconcile: read release", "app", rec.Name, "release", rec.Current, "err", err)
			continue
		}
		n := rec.Desired
		if rec.Asleep {
			n = 0
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// A panic restarting one app leaves the others to restart.
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("reconcile panicked", "app", rel.App, "release", rel.Name, "panic", v, "stack", string(debug.Stack()))
				}
			}()
			if err := s.deployProcesses(ctx, rec, rel, n > 0, io.Discard); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile", "app", rel.App, "release", rel.Name, "err", err)
			}
			if err := s.sched.Deploy(ctx, s.spec(rel, n), io.Discard); err != nil && ctx.Err() == nil {
				s.log.Error("reconcile", "app", rel.App, "release", rel.Name, "err", err)
			}
			s.publish(deploy.Event{App: rel.App, Type: "instances", Message: "reconciled"})
		}()
	}
	wg.Wait()
}

func (s *Service) instancesChanged(ctx context.Context, app string) {
	if parent, _, ok := deploy.ParentApp(app); ok {
		s.publish(deploy.Event{App: parent, Type: "instances"}) // a worker: not routed, nothing wakes
		return
	}
	ins, err := s.sched.Instances(ctx, app)
	if err == nil && healthy(ins) > 0 {
		s.mu.Lock()
		delete(s.waking, app)
		s.mu.Unlock()
	}
	s.publish(deploy.Event{App: app, Type: "instances"})
}

func healthy(ins []deploy.Instance) int { return deploy.App{Instances: ins}.HealthyCount() }

// spec turns a release into what a scheduler runs.
func (s *Service) spec(r deploy.Release, n int) deploy.Spec {
	sp := deploy.Spec{
		App: r.App, Release: r.Name, Commit: r.Commit, Command: r.Command,
		SlugPath: r.Slug, Image: r.Image, Instances: n, Env: deploy.RunEnv(deploy.MergeEnv(r.Env, r.Config)), Descriptor: r.Descriptor,
	}
	if r.Slug != "" && s.cfg.ArtifactURL != "" {
		sp.SlugURL = strings.TrimSuffix(s.cfg.ArtifactURL, "/") + "/artifacts/" + r.App + "/" + slugFile(r)
		if s.cfg.Signer != nil {
			sp.SlugURL = s.cfg.Signer.SignURL(sp.SlugURL)
		}
	}
	return sp
}

// lockApp takes the state lock of an existing app. Names of apps that do
// not exist get ErrNotFound and no lock, so the map of locks holds only
// apps that existed.
func (s *Service) lockApp(app string) (unlock func(), err error) {
	if _, err := s.store.app(app); err != nil {
		return nil, err
	}
	l := s.lock(app)
	l.Lock()
	return l.Unlock, nil
}

// lock returns the app's state lock.
func (s *Service) lock(app string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[app]
	if !ok {
		l = &sync.Mutex{}
		s.locks[app] = l
	}
	return l
}

// Apps lists every app with its live instances, sorted by name.
func (s *Service) Apps(ctx context.Context) ([]deploy.App, error) {
	recs, rels, err := s.store.appsWithCurrent()
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	out := make([]deploy.App, 0, len(recs))
	for i, rec := range recs {
		a, err := s.view(ctx, rec, rels[i])
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// App returns one app; ErrNotFound when there is none of that name.
func (s *Service) App(ctx context.Context, name string) (deploy.App, error) {
	rec, err := s.store.app(name)
	if err != nil {
		return deploy.App{}, fmt.Errorf("app %s: %w", name, err)
	}
	var rel deploy.Release
	if rec.Current != "" {
		if rel, err = s.store.release(rec.Name, rec.Current); err != nil {
			return deploy.App{}, fmt.Errorf("app %s: %w", name, err)
		}
	}
	a, err := s.view(ctx, rec, rel)
	if err != nil {
		return deploy.App{}, fmt.Errorf("app %s: %w", name, err)
	}
	return a, nil
}

// URL is where an app answers: its HTTPS URL when it has one, else
// plain HTTP.
func (s *Service) URL(app string) string {
	if s.cfg.HTTPS != nil {
		if u := s.cfg.HTTPS.HTTPSURL(app); u != "" {
			return u
		}
	}
	return "http://" + app + "." + s.cfg.Domain + s.cfg.URLPort
}

// view joins an app's record, its current release (zero before the first
// one) and what the scheduler and the scaler know into what users see.
func (s *Service) view(ctx context.Context, rec appRecord, rel deploy.Release) (deploy.App, error) {
	a := deploy.App{
		Name: rec.Name, URL: s.URL(rec.Name), Desired: rec.Desired, Release: rec.Current,
		MemoryEnforced: s.cfg.MemoryEnforced, SavedInstanceSeconds: rec.SavedSeconds,
		Instances: []deploy.Instance{},
		Version:   rel.Version, Commit: rel.Commit, Descriptor: rel.Descriptor, Domains: appDomains(rec, rel), ConfigKeys: deploy.ConfigKeys(rec.Config),
	}
	a.IdleTimeout = a.Descriptor.IdleTimeout(s.cfg.Idle)
	a.Idle = "never"
	if a.IdleTimeout > 0 {
		a.Idle = a.IdleTimeout.String()
	}
	ins, err := s.sched.Instances(ctx, rec.Name)
	if err != nil {
		return deploy.App{}, err
	}
	if ins != nil {
		a.Instances = ins
	}
	if len(rel.Descriptor.Processes) > 0 { // rel is the current release, already read
		a.Processes = s.processes(ctx, rec, rel)
	}
	if rec.Asleep && rec.AsleepSince != nil {
		t := *rec.AsleepSince
		a.AsleepSince = &t
		a.SavedInstanceSeconds += float64(rec.Desired) * time.Since(t).Seconds()
	}
	s.mu.Lock()
	act, seen := s.activity[rec.Name]
	deploying := s.deploying[rec.Name] > 0
	waking := s.waking[rec.Name]
	s.mu.Unlock()
	if seen && !act.LastRequestAt.IsZero() {
		t := act.LastRequestAt
		a.LastRequestAt = &t
		a.RequestRate = act.RequestRate
	}
	a.Error = rec.Failed
	if a.Error == "" && s.cfg.Router != nil {
		a.Error = s.cfg.Router.Err(rec.Name)
	}
	var restarted *deploy.Instance
	for i := range a.Instances {
		if a.Instances[i].LastExit != "" {
			restarted = &a.Instances[i]
			break
		}
	}
	a.State = state(rec, a.HealthyCount(), restarted != nil, deploying, waking)
	if a.State == deploy.StateCrashed && a.Error == "" {
		a.Error = fmt.Sprintf("%s ended (%s) and is being restarted", restarted.ID, restarted.LastExit)
		if restarted.LastOutput != "" && restarted.LastOutput != "no output" {
			a.Error += ": " + restarted.LastOutput
		}
	}
	return a, nil
}

// state derives what users see from desired state and what runs.
//
// An app whose instances all ended since it went live (they keep exiting,
// or failing their checks, and are restarted with backoff) is crashed, not
// running: nothing serves it.
func state(rec appRecord, healthy int, restarted, deploying, waking bool) deploy.State {
	switch {
	case rec.Current == "" && deploying:
		return deploy.StateDeploying
	case rec.Current == "" && rec.LastVersion == 0 && rec.Failed == "":
		return deploy.StateStopped // made by flock create: nothing deployed yet
	case rec.Current == "":
		return deploy.StateFailed
	case rec.Asleep:
		return deploy.StateSleeping
	case deploying:
		return deploy.StateDeploying
	case rec.Desired == 0:
		return deploy.StateStopped
	case healthy > 0:
		return deploy.StateRunning
	case rec.Failed != "":
		return deploy.StateFailed
	case waking:
		return deploy.StateWaking
	case restarted:
		return deploy.StateCrashed
	}
	return deploy.StateRunning
}

// Releases lists an app's releases, oldest first.
func (s *Service) Releases(ctx context.Context, name string) ([]deploy.Release, error) {
	if _, err := s.store.app(name); err != nil {
		return nil, fmt.Errorf("releases of %s: %w", name, err)
	}
	rs, err := s.store.releases(name)
	if err != nil {
		return nil, fmt.Errorf("releases of %s: %w", name, err)
	}
	return rs, nil
}

// Deploys lists an app's deploy records, newest first, without logs.
func (s *Service) Deploys(ctx context.Context, name string) ([]deploy.Rollout, error) {
	if _, err := s.store.app(name); err != nil {
		return nil, fmt.Errorf("deploys of %s: %w", name, err)
	}
	ds, err := s.store.deploys(name)
	if err != nil {
		return nil, fmt.Errorf("deploys of %s: %w", name, err)
	}
	for i := range ds {
		ds[i].Log = ""
	}
	return ds, nil
}

// DeployByID returns one deploy record with its log so far.
func (s *Service) DeployByID(ctx context.Context, id string) (deploy.Rollout, error) {
	d, err := s.store.deploy(id)
	if err != nil {
		return deploy.Rollout{}, fmt.Errorf("deploy %s: %w", id, err)
	}
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l != nil {
		d.Log = l.String()
	}
	return d, nil
}

// FollowDeploy writes a deploy's log to w and, while the deploy runs,
// what it logs next; it returns when the deploy ends or ctx does.
func (s *Service) FollowDeploy(ctx context.Context, id string, w io.Writer) error {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l == nil {
		d, err := s.store.deploy(id)
		if err != nil {
			return fmt.Errorf("deploy %s: %w", id, err)
		}
		_, err = io.WriteString(w, d.Log)
		return err
	}
	return l.Follow(ctx, w)
}

// Logs writes an app's output to w (and follows it).
func (s *Service) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	if _, err := s.store.app(name); err != nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	if err := s.sched.Logs(ctx, name, follow, w); err != nil {
		return fmt.Errorf("logs of %s: %w", name, err)
	}
	return nil
}

// RecordActivity keeps what the scaler saw of an app's traffic.
// The change is published (type "activity") so that open dashboards show
// the last request without polling.
func (s *Service) RecordActivity(name string, a deploy.Activity) {
	s.mu.Lock()
	old := s.activity[name]
	s.activity[name] = a
	s.mu.Unlock()
	if !old.LastRequestAt.Equal(a.LastRequestAt) || old.RequestRate != a.RequestRate {
		s.publish(deploy.Event{App: name, Type: "activity"})
	}
}
