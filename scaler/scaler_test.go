package scaler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// be is app "a"'s BACKEND row: stot requests so far, scur open sessions.
func be(stot, scur int64) Row {
	return Row{Proxy: "app_a", Server: Backend, Stot: stot, ReqTot: stot, Scur: scur, LastSess: -1, Status: "UP"}
}

// srv is a server row of app "a".
func srv(name string, scur int64, status string) Row {
	return Row{Proxy: "app_a", Server: name, Scur: scur, LastSess: -1, Status: status}
}

func waker() Row {
	return Row{Proxy: "app_a", Server: "waker", LastSess: -1, Status: "no check", Backup: true}
}

type step struct {
	after time.Duration     // clock advance before the tick
	rows  []Row             // app a's rows in the stats; nil: no backend
	app   func(*deploy.App) // change to app a before the tick
	want  []string          // Platform calls made by the tick
}

func runSteps(t *testing.T, cfg Config, app deploy.App, steps []step) *fakePlatform {
	t.Helper()
	clock := &fakeClock{t: t0}
	p := newFakePlatform(app)
	stats := &fakeStats{}
	cfg.Now = clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg, p, oneWorker(stats.read))
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		clock.Advance(st.after)
		if st.app != nil {
			p.update(app.Name, st.app)
		}
		stats.set(st.rows)
		if err := s.Tick(context.Background()); err != nil {
			t.Fatalf("step %d: tick: %v", i, err)
		}
		if diff := cmp.Diff(st.want, p.takeCalls()); diff != "" {
			t.Errorf("step %d (t0+%s): calls (-want +got):\n%s", i, clock.Now().Sub(t0), diff)
		}
	}
	return p
}

func runningApp() deploy.App {
	return deploy.App{Name: "a", State: deploy.StateRunning, Desired: 1, IdleTimeout: 10 * time.Minute}
}

func state(s deploy.State) func(*deploy.App) { return func(a *deploy.App) { a.State = s } }

func TestIdle(t *testing.T) {
	sleep := []string{"sleep a"}
	withLastSess := func(r Row, s int64) Row { r.LastSess = s; return r }
	withQcur := func(r Row, q int64) Row { r.Qcur = q; return r }
	tests := []struct {
		name  string
		app   func(*deploy.App)
		steps []step
	}{
		{
			name: "first sight counts as activity",
			steps: []step{
				{rows: []Row{be(100, 0)}},
				{after: 9 * time.Minute, rows: []Row{be(100, 0)}},
				{after: time.Minute, rows: []Row{be(100, 0)}, want: sleep},
			},
		},
		{
			name: "new requests keep the app awake",
			steps: []step{
				{rows: []Row{be(1, 0)}},
				{after: 6 * time.Minute, rows: []Row{be(2, 0)}},
				{after: 6 * time.Minute, rows: []Row{be(2, 0)}},
				{after: 4 * time.Minute, rows: []Row{be(2, 0)}, want: sleep},
			},
		},
		{
			name: "a request answered by the waker is activity",
			steps: []step{
				{rows: []Row{be(1, 0), waker()}},
				{after: 9 * time.Minute, rows: []Row{be(2, 0), func() Row { w := waker(); w.Stot = 1; return w }()}},
				{after: 9 * time.Minute, rows: []Row{be(2, 0)}},
				{after: time.Minute, rows: []Row{be(2, 0)}, want: sleep},
			},
		},
		{
			name: "a counter reset by a reload is neither activity nor idleness",
			steps: []step{
				{rows: []Row{be(50, 0)}},
				{after: 5 * time.Minute, rows: []Row{be(0, 0)}},
				{after: 4 * time.Minute, rows: []Row{be(0, 0)}},
				{after: time.Minute, rows: []Row{be(0, 0)}, want: sleep},
			},
		},
		{
			name: "requests after a reset that stay below the old count are seen through lastsess",
			steps: []step{
				{rows: []Row{be(50, 0)}},
				{after: 5 * time.Minute, rows: []Row{withLastSess(be(3, 0), 60)}}, // active at t0+4m
				{after: 8 * time.Minute, rows: []Row{withLastSess(be(3, 0), 540)}},
				{after: time.Minute, rows: []Row{withLastSess(be(3, 0), 600)}, want: sleep},
			},
		},
		{
			name: "an open session keeps the app awake across resets",
			steps: []step{
				{rows: []Row{be(50, 1)}},
				{after: 20 * time.Minute, rows: []Row{be(0, 1)}}, // reloaded, the websocket is still open
				{after: 20 * time.Minute, rows: []Row{be(0, 1)}},
				{after: 9 * time.Minute, rows: []Row{be(0, 0)}}, // closed
				{after: 10 * time.Minute, rows: []Row{be(0, 0)}, want: sleep},
			},
		},
		{
			name: "a queued request keeps the app awake",
			steps: []step{
				{rows: []Row{be(5, 0)}},
				{after: 30 * time.Minute, rows: []Row{withQcur(be(5, 0), 1)}},
				{after: 9 * time.Minute, rows: []Row{be(5, 0)}},
				{after: time.Minute, rows: []Row{be(5, 0)}, want: sleep},
			},
		},
		{
			name:  "idle never",
			app:   func(a *deploy.App) { a.IdleTimeout = 0 },
			steps: []step{{rows: []Row{be(1, 0)}}, {after: 48 * time.Hour, rows: []Row{be(1, 0)}}},
		},
		{
			name:  "minInstances 1 never sleeps",
			app:   func(a *deploy.App) { a.Descriptor.MinInstances = ptr(1) },
			steps: []step{{rows: []Row{be(1, 0)}}, {after: time.Hour, rows: []Row{be(1, 0)}}},
		},
		{
			name: "minInstances 0 with autoscaling sleeps",
			app: func(a *deploy.App) {
				a.Descriptor.MinInstances, a.Descriptor.MaxInstances = ptr(0), ptr(4)
			},
			steps: []step{{rows: []Row{be(1, 0)}}, {after: time.Hour, rows: []Row{be(1, 0)}, want: sleep}},
		},
		{
			name:  "no instance wanted",
			app:   func(a *deploy.App) { a.Desired = 0 },
			steps: []step{{rows: []Row{be(1, 0)}}, {after: time.Hour, rows: []Row{be(1, 0)}}},
		},
		{
			name: "waking restarts the idle clock",
			steps: []step{
				{rows: []Row{be(1, 0)}},
				{after: 9 * time.Minute, rows: []Row{be(1, 0)}, app: state(deploy.StateSleeping)},
				{after: time.Hour, rows: []Row{be(1, 0)}, app: state(deploy.StateWaking)},
				{after: time.Minute, rows: []Row{be(1, 0)}, app: state(deploy.StateRunning)},
				{after: 9 * time.Minute, rows: []Row{be(1, 0)}},
				{after: time.Minute, rows: []Row{be(1, 0)}, want: sleep},
			},
		},
		{
			name: "no backend in the stats: nothing is decided",
			steps: []step{
				{rows: nil},
				{after: time.Hour, rows: []Row{{Proxy: "be_other", Server: Backend, LastSess: -1}}},
			},
		},
	}
	for _, s := range []deploy.State{deploy.StateDeploying, deploy.StateWaking, deploy.StateSleeping, deploy.StateStopped, deploy.StateFailed} {
		tests = append(tests, struct {
			name  string
			app   func(*deploy.App)
			steps []step
		}{
			name:  "never sleeps a " + string(s) + " app",
			app:   state(s),
			steps: []step{{rows: []Row{be(1, 0)}}, {after: time.Hour, rows: []Row{be(1, 0)}}},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := runningApp()
			if tt.app != nil {
				tt.app(&app)
			}
			runSteps(t, Config{}, app, tt.steps)
		})
	}
}

func TestActivityReported(t *testing.T) {
	r := be(20, 0)
	r.LastSess = 4
	p := runSteps(t, Config{}, runningApp(), []step{
		{rows: []Row{be(10, 0)}},
		{after: 10 * time.Second, rows: []Row{r}}, // 10 more requests in 10 s, the last 4 s ago
	})
	want := deploy.Activity{LastRequestAt: t0.Add(6 * time.Second), RequestRate: 1}
	if diff := cmp.Diff(want, p.activity["a"]); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}
}

func TestTickWithoutStatsDecidesNothing(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newFakePlatform(runningApp())
	stats := &fakeStats{rows: []Row{be(1, 0)}}
	s, err := New(Config{Now: clock.Now}, p, oneWorker(stats.read))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	stats.err = errors.New("connection refused")
	clock.Advance(time.Hour)
	if err := s.Tick(context.Background()); err == nil {
		t.Error("tick without stats: no error")
	}
	if c := p.takeCalls(); len(c) != 0 {
		t.Errorf("calls without stats: %v", c)
	}
}

func TestNewValidates(t *testing.T) {
	p, stats := newFakePlatform(), (&fakeStats{}).read
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative every", Config{Every: -time.Second}},
		{"up ratio above 1", Config{UpRatio: 1.5}},
		{"down ratio not below up ratio", Config{UpRatio: 0.5, DownRatio: 0.5}},
		{"negative step", Config{Step: -1}},
		{"negative rate", Config{TargetRate: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, p, oneWorker(stats)); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := New(Config{}, nil, oneWorker(stats)); err == nil {
		t.Error("nil platform: no error")
	}
	s, err := New(Config{}, p, oneWorker(stats))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Every: 10 * time.Second, TargetSessions: 10, UpRatio: 0.9, DownRatio: 0.5, Step: 2, Cooldown: time.Minute}
	got := s.cfg
	got.Backend, got.Now, got.Logger = nil, nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

// TestTouch shows activity reported from outside HAProxy's counters (the
// waker) restarting the idle time, and that the scaler can be asked while
// a sleep is under way (it holds no lock during Platform calls).
func TestTouch(t *testing.T) {
	clock := &fakeClock{t: t0}
	p := newFakePlatform(runningApp())
	stats := &fakeStats{rows: []Row{be(1, 0)}}
	s, err := New(Config{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, oneWorker(stats.read))
	if err != nil {
		t.Fatal(err)
	}
	p.onSleep = func() { s.Touch("a") }
	ctx := context.Background()
	for i, st := range []struct {
		after time.Duration
		touch bool
		want  []string
	}{
		{},
		{after: 9 * time.Minute, touch: true},
		{after: 9 * time.Minute},
		{after: time.Minute, want: []string{"sleep a"}},
	} {
		clock.Advance(st.after)
		if st.touch {
			s.Touch("a")
		}
		if err := s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, p.takeCalls()); diff != "" {
			t.Errorf("step %d: calls (-want +got):\n%s", i, diff)
		}
	}
}

// TestTickOnCaptures runs ticks over real HAProxy captures: a running app
// and a scaled-to-zero one, then the same process right after a reload.
func TestTickOnCaptures(t *testing.T) {
	clock := &fakeClock{t: t0}
	app1, app2 := runningApp(), runningApp()
	app1.Name, app2.Name, app2.State = "app1", "app2", deploy.StateSleeping
	p := newFakePlatform(app1, app2)
	dump := readFixture(t, "show-stat-haproxy26-local-capture-scale-to-zero-backup.csv")
	stats := func(context.Context) ([]byte, error) { return dump, nil }
	s, err := New(Config{Now: clock.Now, Backend: func(app string) string { return "be_" + app },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p, oneWorker(stats))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]deploy.Activity{
		"app1": {LastRequestAt: t0.Add(-3 * time.Second)}, // lastsess 3
		"app2": {LastRequestAt: t0.Add(-6 * time.Second)}, // the waker's request
	}
	if diff := cmp.Diff(want, p.activity); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}

	dump = readFixture(t, "show-stat-haproxy26-local-capture-after-reload-counters-reset.csv")
	for i, st := range []struct {
		after time.Duration
		want  []string
	}{
		{after: 5 * time.Minute},                               // every counter reset: not activity
		{after: 5 * time.Minute, want: []string{"sleep app1"}}, // 10 min idle since first sight
	} {
		clock.Advance(st.after)
		if err := s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, p.takeCalls()); diff != "" {
			t.Errorf("tick %d: calls (-want +got):\n%s", i+2, diff)
		}
	}
	if diff := cmp.Diff(want, p.activity); diff != "" {
		t.Errorf("activity after the reload (-want +got):\n%s", diff)
	}
}
