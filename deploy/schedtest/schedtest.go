// Package schedtest is the conformance suite of the deploy.Scheduler
// contract (deploy/scheduler.go), modelled on Nomad's driver test harness
// (plugins/drivers/testutils): a scheduler's tests give Run a Harness
// that starts the scheduler over some state (a folder, a Marathon), and
// the suite checks, with real processes answering over HTTP, what Flock
// relies on: deploy (ports, environment), a new release replacing the old
// (drained, listed beside the new one meanwhile), an unhealthy release
// leaving the old one serving, scale, sleep to zero and wake, health,
// change events, a crashed instance replaced, destroy, and a new
// scheduler over the same state finding the apps (cases.go,
// cases_scale.go). A third scheduler gets these tests by writing a
// Harness.
//
// The instances run the test binary itself: the package's TestMain calls
// ServeIfApp first, which turns the binary into the suite's app when the
// scheduler starts it.
package schedtest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// Harness is what a scheduler's tests give the suite.
type Harness struct {
	// Start builds a scheduler over the harness's state (the same folder,
	// the same Marathon every time), with d as its Drainer, and runs it
	// (Run) until leave is called or the test ends. leave ends Run so that
	// the instances keep running, as a Flock that is killed or upgraded
	// leaves them, and returns once Run has returned. Required.
	Start func(t *testing.T, d deploy.Drainer) (s deploy.Scheduler, leave func())
	// Ship makes the slug (a .tar.gz on this machine) reachable by the
	// scheduler: spec.SlugPath for one that runs here, a served
	// spec.SlugURL for one that fetches it. Required.
	Ship func(t *testing.T, spec *deploy.Spec, slug string)
	// Bin is the program instances run: the test binary (the default)
	// or a copy of it that the apps' uids can read.
	Bin string
	// Gaps names the cases this scheduler is known to break, with why:
	// they are skipped, saying so, instead of failing. Every gap is a
	// disagreement with the contract to mend, not a feature.
	Gaps map[string]string
}

// NewHarness returns a Harness with fresh state for one case.
type NewHarness func(t *testing.T) *Harness

// suite is one case's view of the scheduler under test.
type suite struct {
	t      *testing.T
	h      *Harness
	drains *drains
	s      deploy.Scheduler
	leave  func()
	seen   *changes
}

func newSuite(t *testing.T, newHarness NewHarness) *suite {
	h := newHarness(t)
	if h.Bin == "" {
		bin, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		h.Bin = bin
	}
	su := &suite{t: t, h: h, drains: &drains{}, seen: &changes{}}
	su.start()
	return su
}

// start runs a new scheduler over the harness's state and follows its
// Changes until the test ends.
func (su *suite) start() {
	su.s, su.leave = su.h.Start(su.t, su.drains)
	ch, stop := su.s.Changes(), make(chan struct{})
	su.t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case app := <-ch:
				su.seen.add(app)
			case <-stop:
				return
			}
		}
	}()
}

// spec is release rel of app with n instances: the test binary, an HTTP
// check on /health, and a slug holding release.txt.
func (su *suite) spec(app, rel string, n int, mode string) deploy.Spec {
	t := su.t
	dir := t.TempDir()
	slug := filepath.Join(dir, rel+".tar.gz")
	if err := os.WriteFile(slug, slugOf("schedtest "+app+" "+rel), 0o644); err != nil {
		t.Fatal(err)
	}
	stable := 0
	spec := deploy.Spec{
		App: app, Release: rel, Commit: "c0ffee", Instances: n,
		Command: `exec "$` + binEnv + `"`,
		// GORACE: a race-enabled app would otherwise wait 1s to exit.
		Env: map[string]string{appEnv: "1", modeEnv: mode, binEnv: su.h.Bin, "GORACE": "atexit_sleep_ms=0", "GREETING": "hi there"},
		Descriptor: deploy.Descriptor{Name: app, Instances: n, Ports: 1, Mem: 64, CPUs: 0.1, StableSeconds: &stable,
			Checks: []deploy.Check{{Path: "/health", IntervalSeconds: 1, TimeoutSeconds: 1, GracePeriodSeconds: 3, MaxConsecutiveFailures: 2}}},
	}
	su.h.Ship(t, &spec, slug)
	return spec
}

// deploy deploys spec, fails the test when Deploy fails, and returns
// the progress Deploy wrote.
func (su *suite) deploy(spec deploy.Spec) string {
	su.t.Helper()
	var log testkit.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := su.s.Deploy(ctx, spec, &log); err != nil {
		su.t.Fatalf("Deploy %s %s: %v\n%s", spec.App, spec.Release, err, log.String())
	}
	return log.String()
}

func (su *suite) instances(app string) []deploy.Instance {
	su.t.Helper()
	list, err := su.s.Instances(context.Background(), app)
	if err != nil {
		su.t.Fatalf("Instances(%s): %v", app, err)
	}
	return list
}

// Run runs the conformance suite against the scheduler newHarness makes,
// each case in parallel on a harness (fresh state) of its own.
func Run(t *testing.T, newHarness NewHarness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			su := newSuite(t, newHarness)
			if why, ok := su.h.Gaps[c.name]; ok {
				t.Skipf("known gap of this scheduler: %s", why)
			}
			c.run(su)
		})
	}
}

// serving waits until app has exactly n instances, all of release rel,
// healthy and answering as that release (the slug's text, FLOCK_APP,
// FLOCK_RELEASE and PORT as the scheduler listed them), and returns them.
func (su *suite) serving(app, rel string, n int) []deploy.Instance {
	su.t.Helper()
	var list []deploy.Instance
	var why string
	ok := func() bool {
		list = su.instances(app)
		if len(list) != n {
			why = "instances: " + describe(list)
			return false
		}
		for _, in := range list {
			a, answered := ask(in)
			switch {
			case !in.Healthy || in.Release != rel:
				why = "instances: " + describe(list)
				return false
			case !answered:
				why = in.ID + " does not answer"
				return false
			case a.App != app || a.Release != rel || a.Port != in.Port || a.Text != "schedtest "+app+" "+rel:
				why = in.ID + " answers as " + a.App + " " + a.Release + " on " + itoa(a.Port) + ": " + a.Text
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(wait)
	for !ok() {
		if time.Now().After(deadline) {
			su.t.Fatalf("%s %s: want %d healthy instances answering; %s", app, rel, n, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return list
}

// silent waits until none of ins answers any more.
func (su *suite) silent(ins []deploy.Instance) {
	su.t.Helper()
	testkit.WaitFor(su.t, wait, "the stopped instances to stop answering", func() bool {
		for _, in := range ins {
			if _, ok := ask(in); ok {
				return false
			}
		}
		return true
	})
}

// changed waits until Changes delivered app more than before times.
func (su *suite) changed(app string, before int) {
	su.t.Helper()
	testkit.WaitFor(su.t, wait, "Changes to deliver "+app, func() bool { return su.seen.count(app) > before })
}

func describe(list []deploy.Instance) string {
	var parts []string
	for _, in := range list {
		h := "unhealthy"
		if in.Healthy {
			h = "healthy"
		}
		parts = append(parts, in.ID+" "+in.Release+" "+h+" :"+itoa(in.Port))
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}

// RunUntilStopped runs s until the returned stop is called or the test
// ends, whichever comes first; stop returns once Run has, and reports
// Run's error on t. What a Harness's Start needs to run its scheduler.
func RunUntilStopped(t *testing.T, s deploy.Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
