package schedtest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// wait bounds every wait of the suite: generous, for a loaded machine;
// a passing case waits for what it checks, not for this.
const wait = 30 * time.Second

// cases are the contract, one subtest each. Names are what Gaps refers to.
var cases = []struct {
	name string
	run  func(su *suite)
}{
	{"Deploy", testDeploy},
	{"TwoPortsAndTheEnvironment", testPortsAndEnv},
	{"RedeployKeepsTheInstances", testRedeploy},
	{"NewReleaseReplacesTheOld", testNewRelease},
	{"BothReleasesListedDuringARollout", testRolloutListing},
	{"HealthIsTracked", testHealth},
	{"NewReleaseDrainsTheOld", testNewReleaseDrains},
	{"UnhealthyReleaseLeavesTheOldServing", testUnhealthy},
	{"UnhealthyFirstReleaseLeavesNothing", testUnhealthyFirst},
	{"Scale", testScale},
	{"SleepAndWake", testSleepAndWake},
	{"ZeroInstancesRecordsTheRelease", testZero},
	{"CrashedInstanceIsReplaced", testCrash},
	{"Remove", testRemove},
	{"RestartFindsTheApps", testRestart},
	{"InvalidInput", testInvalid},
	{"Logs", testLogs},
}

// Deploy runs spec.Instances instances that pass their checks, each on a
// port of its own, answering as the release, and Changes names the app.
func testDeploy(su *suite) {
	t := su.t
	before := su.seen.count("hello")
	log := su.deploy(su.spec("hello", "v1", 2, ""))
	if log == "" || !strings.HasSuffix(log, "\n") {
		t.Errorf("Deploy's progress %q: want whole lines", log)
	}
	ins := su.serving("hello", "v1", 2)
	if ins[0].ID == ins[1].ID || ins[0].Port == ins[1].Port {
		t.Errorf("two instances share an id or a port: %s", describe(ins))
	}
	for _, in := range ins {
		if in.Host == "" || len(in.Ports) != 1 || in.Ports[0] != in.Port || in.StartedAt.IsZero() {
			t.Errorf("instance %+v: want a host, Ports [Port] and a start time", in)
		}
	}
	su.changed("hello", before)
	if got := su.instances("nobody"); len(got) != 0 {
		t.Errorf("Instances of an app never deployed = %s, want none", describe(got))
	}
}

// Every port the descriptor asks for is given as PORTn and listed in
// Ports (Port is the first); the spec's Env reaches the app.
func testPortsAndEnv(su *suite) {
	t := su.t
	spec := su.spec("hello", "v1", 1, "")
	spec.Descriptor.Ports = 2
	su.deploy(spec)
	in := su.serving("hello", "v1", 1)[0]
	a, _ := ask(in)
	if len(in.Ports) != 2 || in.Ports[0] != in.Port || in.Ports[1] == in.Port || a.Port1 != in.Ports[1] {
		t.Errorf("instance ports %v (Port %d), the app's PORT1 %d: want two ports, PORT1 the second", in.Ports, in.Port, a.Port1)
	}
	if a.Greet != "hi there" {
		t.Errorf("GREETING = %q, want the spec's env", a.Greet)
	}
}

// Deploying the release that runs again, with the same count (what the
// Service does for every app when Flock starts), keeps its instances.
func testRedeploy(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 2, ""))
	before := su.serving("hello", "v1", 2)
	su.deploy(su.spec("hello", "v1", 2, "")) // the same release, its slug shipped again
	after := su.serving("hello", "v1", 2)
	if describe(before) != describe(after) {
		t.Errorf("redeploy of the running release replaced its instances: %s, then %s", describe(before), describe(after))
	}
}

// A new release replaces the old one once it is healthy: in the end only
// its instances run, and the old ones no longer answer.
func testNewRelease(su *suite) {
	su.deploy(su.spec("hello", "v1", 2, ""))
	old := su.serving("hello", "v1", 2)
	su.deploy(su.spec("hello", "v2", 2, ""))
	su.serving("hello", "v2", 2)
	su.silent(old)
}

// While a new release starts, Instances lists the old release's
// instances, healthy, beside the new ones: the router keeps routing to
// them until the new ones pass.
func testRolloutListing(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 1, ""))
	old := su.serving("hello", "v1", 1)[0]
	// The spec is made here: su.spec calls t.TempDir and t.Fatal, which
	// belong to the test's goroutine (a TempDir made after the test ended
	// fails with "no such file or directory").
	v2 := su.spec("hello", "v2", 1, "slow")
	done := make(chan error, 1)
	go func() {
		done <- su.s.Deploy(context.Background(), v2, &testkit.Buffer{})
	}()
	testkit.WaitFor(t, wait, "v1 healthy and a v2 instance listed during the rollout", func() bool {
		var v1, v2 bool
		for _, in := range su.instances("hello") {
			v1 = v1 || (in.ID == old.ID && in.Release == "v1" && in.Healthy)
			v2 = v2 || in.Release == "v2"
		}
		return v1 && v2
	})
	if err := <-done; err != nil {
		t.Fatalf("Deploy v2: %v", err)
	}
	su.serving("hello", "v2", 1)
}

// An instance that starts failing its check is listed unhealthy, and
// Changes names the app; the app then gets a healthy instance again (the
// same once it passes, or a replacement).
func testHealth(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 1, ""))
	in := su.serving("hello", "v1", 1)[0]
	seen := su.seen.count("hello")
	call(in, "/sick")
	testkit.WaitFor(t, wait, "the failing instance listed unhealthy", func() bool {
		for _, x := range su.instances("hello") {
			if x.ID == in.ID && x.Healthy {
				return false
			}
		}
		return true
	})
	su.changed("hello", seen)
	call(in, "/well")
	su.serving("hello", "v1", 1)
}

// The old release's instances are drained before they are stopped
// (Scheduler.Deploy: "retires the instances of every other release of
// the app (drained first)").
func testNewReleaseDrains(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 2, ""))
	old := su.serving("hello", "v1", 2)
	su.deploy(su.spec("hello", "v2", 2, ""))
	su.serving("hello", "v2", 2)
	d := su.drains.of("hello")
	for _, in := range old {
		if x, ok := d[in.ID]; !ok || !x.answered {
			t.Errorf("old instance %s: drained %v, answering when drained %v; want drained before it stopped", in.ID, ok, x.answered)
		}
	}
}

// A release whose instances never pass their checks fails with
// ErrUnhealthy, and the release before it serves on.
func testUnhealthy(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 1, ""))
	old := su.serving("hello", "v1", 1)
	var log testkit.Buffer
	err := su.s.Deploy(context.Background(), su.spec("hello", "v2", 1, "unhealthy"), &log)
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy of a release that never passes its check = %v, want ErrUnhealthy\n%s", err, log.String())
	}
	now := su.serving("hello", "v1", 1)
	if now[0].ID != old[0].ID {
		t.Errorf("v1 instance %s replaced by %s: the old release should have served on untouched", old[0].ID, now[0].ID)
	}
}

// The first release of an app failing its checks leaves no instance.
func testUnhealthyFirst(su *suite) {
	t := su.t
	err := su.s.Deploy(context.Background(), su.spec("hello", "v1", 1, "unhealthy"), &testkit.Buffer{})
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy = %v, want ErrUnhealthy", err)
	}
	testkit.WaitFor(t, wait, "no instance left", func() bool { return len(su.instances("hello")) == 0 })
}
