// Package scaler reads HAProxy's stats, keeps its own "last active" time
// per app, puts idle apps to sleep and scales apps with load bounds
// between their minInstances and maxInstances.
//
// HAProxy zeroes every counter when it reloads, and after a reload the
// sessions still open live in old worker processes. So the scaler never
// reads "no new requests" from one dump: it counts requests per worker
// (a new worker starts from 0, an old one takes its counts along when it
// exits), an open or queued session is activity, and the stats include
// the old workers' (the router's Workers reads every worker).
// See docs/scaling.md.
package scaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/robfig/cron/v3"

	"github.com/flock-paas/flock/router/hap"
)

// Stats is where the scaler reads HAProxy's counters: every worker's
// `show stat` CSV, old workers' too, each with its pid, so that requests
// are counted per worker. *router.Router implements it.
type Stats interface {
	Workers(ctx context.Context) ([]hap.WorkerStats, error)
}

// StatsFunc adapts a function to Stats.
type StatsFunc func(ctx context.Context) ([]hap.WorkerStats, error)

// Workers calls f.
func (f StatsFunc) Workers(ctx context.Context) ([]hap.WorkerStats, error) { return f(ctx) }

// Platform is what the scaler needs of Flock: the apps, and the three
// actions it takes. engine.Service implements it.
type Platform interface {
	// Apps lists every app with its state, desired instances, resolved
	// IdleTimeout and descriptor (scaling bounds).
	Apps(ctx context.Context) ([]deploy.App, error)
	// Sleep drains the app and scales it to zero (state sleeping).
	Sleep(ctx context.Context, app string) error
	// Scale sets the app's desired instances.
	Scale(ctx context.Context, app string, n int) error
	// RecordActivity tells what the scaler learned about the app's traffic.
	RecordActivity(app string, a deploy.Activity)
}

// Config tunes the scaler. The zero value of each field means its default.
type Config struct {
	// Every is how often the stats are read (--scale-every). Default 10s;
	// cron rounds it up to whole seconds.
	Every time.Duration
	// TargetSessions is the number of current sessions per instance at or
	// above which an instance counts as overloaded. Default 10.
	TargetSessions int
	// TargetRate, when above 0, also counts an instance as overloaded when
	// it receives at least this many requests per second (measured over a
	// tick). Default 0: off.
	TargetRate float64
	// UpRatio: when at least this share of an app's running instances is
	// overloaded, add Step instances. Default 0.9.
	UpRatio float64
	// DownRatio: when at most this share is overloaded, remove Step
	// instances. Default 0.5; must be below UpRatio.
	DownRatio float64
	// Step is how many instances one scaling decision adds or removes.
	// Default 2.
	Step int
	// Cooldown is how long the scaler leaves an app's instance count alone
	// after any change of it (its own, a user's, a deploy's, a wake), so
	// that it cannot flap. Default 1m.
	Cooldown time.Duration
	// Backend maps an app to the name of its HAProxy backend. Default
	// hap.BackendName, "app_<app>", as the router names them.
	Backend func(app string) string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Proxied, when set, tells which apps have connections HAProxy does
	// not see (the waker's); Run counts them as active every second.
	// Default none.
	Proxied Proxied
	// Logger receives what Run does. Default slog.Default().
	Logger *slog.Logger
}

// Scaler watches HAProxy's stats and sleeps or scales apps.
type Scaler struct {
	cfg   Config
	p     Platform
	stats Stats
	log   *slog.Logger

	tickMu sync.Mutex // serialises ticks; guards last
	last   time.Time  // time of the previous tick

	mu   sync.Mutex // guards apps; never held during a Platform call
	apps map[string]*appState
}

// New checks cfg, fills in its defaults and returns a Scaler. It starts
// nothing.
func New(cfg Config, p Platform, stats Stats) (*Scaler, error) {
	if p == nil || stats == nil {
		return nil, errors.New("new scaler: platform and stats source are required")
	}
	if cfg.Every == 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.TargetSessions == 0 {
		cfg.TargetSessions = 10
	}
	if cfg.UpRatio == 0 {
		cfg.UpRatio = 0.9
	}
	if cfg.DownRatio == 0 {
		cfg.DownRatio = 0.5
	}
	if cfg.Step == 0 {
		cfg.Step = 2
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = time.Minute
	}
	if cfg.Backend == nil {
		cfg.Backend = hap.BackendName
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.Every < 0:
		return nil, errors.New("new scaler: scale-every must be positive")
	case cfg.TargetSessions < 0:
		return nil, errors.New("new scaler: target sessions must be positive")
	case cfg.TargetRate < 0:
		return nil, errors.New("new scaler: target rate must not be negative")
	case cfg.UpRatio < 0 || cfg.UpRatio > 1:
		return nil, errors.New("new scaler: up ratio must be between 0 and 1")
	case cfg.DownRatio < 0 || cfg.DownRatio >= cfg.UpRatio:
		return nil, errors.New("new scaler: down ratio must be at least 0 and below the up ratio")
	case cfg.Step < 0:
		return nil, errors.New("new scaler: step must be positive")
	case cfg.Cooldown < 0:
		return nil, errors.New("new scaler: cooldown must not be negative")
	}
	return &Scaler{cfg: cfg, p: p, stats: stats, log: cfg.Logger, apps: map[string]*appState{}}, nil
}

// Run ticks once at once, then every cfg.Every (a robfig/cron schedule),
// until ctx ends. A failed tick is logged and the next one tries again.
func (s *Scaler) Run(ctx context.Context) error {
	tick := func() {
		// A tick that panics is logged; the next one runs, and Flock stays up.
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("scaler tick panicked", "panic", v, "stack", string(debug.Stack()))
			}
		}()
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scaler tick failed", "err", err)
		}
	}
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := c.AddFunc(fmt.Sprintf("@every %s", s.cfg.Every), tick); err != nil {
		return fmt.Errorf("schedule scaler: %w", err)
	}
	tick()
	c.Start()
	s.touchProxied(ctx)
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

// Tick reads the stats once, updates every app's activity and sleeps or
// scales the apps that need it. Without readable stats it does nothing:
// an app is never put to sleep on missing information.
func (s *Scaler) Tick(ctx context.Context) error {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	ws, err := s.stats.Workers(ctx)
	if err != nil {
		return fmt.Errorf("read stats: %w", err)
	}
	rows, per, err := parseWorkers(ws)
	if err != nil {
		return err
	}
	apps, err := s.p.Apps(ctx)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	now := s.cfg.Now()
	var elapsed time.Duration
	if !s.last.IsZero() {
		elapsed = now.Sub(s.last)
	}
	s.last = now

	byProxy := map[string][]Row{}
	for _, r := range rows {
		byProxy[r.Proxy] = append(byProxy[r.Proxy], r)
	}
	acts := make([]action, 0, len(apps))
	listed := make(map[string]bool, len(apps))
	var cs []counters // one app's counters per worker; reused
	s.mu.Lock()
	for _, app := range apps {
		listed[app.Name] = true
		st, ok := s.apps[app.Name]
		if !ok {
			st = newAppState(app, now)
			s.apps[app.Name] = st
		}
		name := s.cfg.Backend(app.Name)
		be, ok := byProxy[name]
		cs = backendCounters(cs[:0], per, name)
		acts = append(acts, s.decide(app, st, be, cs, ok, now, elapsed))
	}
	for name := range s.apps {
		if !listed[name] {
			delete(s.apps, name) // destroyed
		}
	}
	s.mu.Unlock()

	var errs []error
	for _, act := range acts {
		if err := s.do(ctx, act); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		if st, ok := s.apps[act.app]; ok {
			st.done(act, now)
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Touch records activity of an app that HAProxy's counters may not show
// yet, e.g. a request the waker is holding or a wake by hand: the app's
// idle time starts again now.
func (s *Scaler) Touch(app string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.apps[app]; ok {
		st.lastActive = later(st.lastActive, s.cfg.Now())
	}
}
