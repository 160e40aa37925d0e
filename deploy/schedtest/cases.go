package schedtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
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
	done := make(chan error, 1)
	go func() { done <- su.s.Deploy(context.Background(), su.spec("hello", "v2", 1, "slow"), &syncBuffer{}) }()
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
	var log syncBuffer
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
	err := su.s.Deploy(context.Background(), su.spec("hello", "v1", 1, "unhealthy"), &syncBuffer{})
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy = %v, want ErrUnhealthy", err)
	}
	testkit.WaitFor(t, wait, "no instance left", func() bool { return len(su.instances("hello")) == 0 })
}

// Scale starts instances of the current release and stops surplus ones,
// the newest first (the oldest have proven themselves and hold warm
// caches; Marathon's own kill selection does the same), draining each
// before it stops; an app never deployed is ErrNotFound.
func testScale(su *suite) {
	t := su.t
	ctx := context.Background()
	su.deploy(su.spec("hello", "v1", 1, ""))
	first := su.serving("hello", "v1", 1)[0]
	if err := su.s.Scale(ctx, "hello", 3); err != nil {
		t.Fatalf("Scale to 3: %v", err)
	}
	three := su.serving("hello", "v1", 3)
	if err := su.s.Scale(ctx, "hello", 1); err != nil {
		t.Fatalf("Scale to 1: %v", err)
	}
	one := su.serving("hello", "v1", 1)
	var gone []deploy.Instance
	for _, in := range three {
		if in.ID != one[0].ID {
			gone = append(gone, in)
		}
	}
	su.silent(gone)
	d := su.drains.of("hello")
	for _, in := range gone {
		if x, ok := d[in.ID]; !ok || !x.answered {
			t.Errorf("instance %s scaled away: drained %v, answering when drained %v", in.ID, ok, x.answered)
		}
	}
	if _, ok := d[one[0].ID]; ok {
		t.Errorf("the instance kept, %s, was drained", one[0].ID)
	}
	if one[0].ID != first.ID {
		t.Errorf("scaling 3 → 1 kept %s, want the oldest, %s", one[0].ID, first.ID)
	}
	if err := su.s.Scale(ctx, "nobody", 1); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Scale of an app never deployed = %v, want ErrNotFound", err)
	}
}

// Scale to 0 is sleep: every instance drained, then stopped; Scale back
// up wakes the same release.
func testSleepAndWake(su *suite) {
	t := su.t
	ctx := context.Background()
	su.deploy(su.spec("hello", "v1", 2, ""))
	awake := su.serving("hello", "v1", 2)
	if err := su.s.Scale(ctx, "hello", 0); err != nil {
		t.Fatalf("Scale to 0: %v", err)
	}
	su.serving("hello", "v1", 0)
	su.silent(awake)
	d := su.drains.of("hello")
	for _, in := range awake {
		if x, ok := d[in.ID]; !ok || !x.answered {
			t.Errorf("instance %s put to sleep: drained %v, answering when drained %v", in.ID, ok, x.answered)
		}
	}
	if err := su.s.Scale(ctx, "hello", 2); err != nil {
		t.Fatalf("Scale to 2 (wake): %v", err)
	}
	su.serving("hello", "v1", 2)
}

// A release deployed with 0 instances is recorded, runs nothing, and is
// what Scale starts.
func testZero(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 0, ""))
	if got := su.instances("hello"); len(got) != 0 {
		t.Errorf("instances after a deploy of 0: %s", describe(got))
	}
	if err := su.s.Scale(context.Background(), "hello", 1); err != nil {
		t.Fatalf("Scale to 1: %v", err)
	}
	su.serving("hello", "v1", 1)
}

// An instance whose process exits is replaced (or restarted), and Changes
// names the app.
func testCrash(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 1, ""))
	in := su.serving("hello", "v1", 1)[0]
	before, _ := ask(in)
	seen := su.seen.count("hello")
	call(in, "/exit")
	su.changed("hello", seen)
	testkit.WaitFor(t, wait, "a new process serving", func() bool {
		list := su.instances("hello")
		if len(list) != 1 || !list[0].Healthy {
			return false
		}
		a, ok := ask(list[0])
		return ok && a.Pid != before.Pid && a.Release == "v1"
	})
}

// Remove stops every instance and forgets the app; removing it again is
// no error, and it can no longer be scaled.
func testRemove(su *suite) {
	t := su.t
	ctx := context.Background()
	su.deploy(su.spec("hello", "v1", 2, ""))
	ins := su.serving("hello", "v1", 2)
	seen := su.seen.count("hello")
	if err := su.s.Remove(ctx, "hello"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := su.instances("hello"); len(got) != 0 {
		t.Errorf("instances after Remove: %s", describe(got))
	}
	su.silent(ins)
	su.changed("hello", seen)
	if err := su.s.Remove(ctx, "hello"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := su.s.Scale(ctx, "hello", 1); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("Scale after Remove = %v, want ErrNotFound", err)
	}
	if got := su.instances("hello"); len(got) != 0 {
		t.Errorf("Scale after Remove started %s", describe(got))
	}
}

// A new scheduler over the same state (a Flock restarted after a crash
// or for an upgrade) finds the running instances, the same processes,
// and can scale and remove the app.
func testRestart(su *suite) {
	t := su.t
	ctx := context.Background()
	su.deploy(su.spec("hello", "v1", 2, ""))
	before := su.serving("hello", "v1", 2)
	pids := map[string]int{}
	for _, in := range before {
		a, _ := ask(in)
		pids[in.ID] = a.Pid
	}
	su.leave()
	su.start()
	after := su.serving("hello", "v1", 2)
	for _, in := range after {
		a, _ := ask(in)
		if pids[in.ID] != a.Pid {
			t.Errorf("after the restart %s (pid %d) is not one of the instances before %s: want them found, not replaced",
				in.ID, a.Pid, describe(before))
		}
	}
	if err := su.s.Scale(ctx, "hello", 1); err != nil {
		t.Fatalf("Scale after the restart: %v", err)
	}
	su.serving("hello", "v1", 1)
	if err := su.s.Remove(ctx, "hello"); err != nil {
		t.Fatalf("Remove after the restart: %v", err)
	}
	su.silent(after)
}

// Names that are not DNS labels, and negative counts, are ErrInvalid
// before anything runs.
func testInvalid(su *suite) {
	t := su.t
	ctx := context.Background()
	bad := su.spec("hello", "v1", 1, "")
	bad.App = "Not_A_Label"
	if err := su.s.Deploy(ctx, bad, &syncBuffer{}); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Deploy of app %q = %v, want ErrInvalid", bad.App, err)
	}
	neg := su.spec("hello", "v1", -1, "")
	if err := su.s.Deploy(ctx, neg, &syncBuffer{}); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Deploy of -1 instances = %v, want ErrInvalid", err)
	}
	if _, err := su.s.Instances(ctx, "../etc"); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Instances(../etc) = %v, want ErrInvalid", err)
	}
	if err := su.s.Remove(ctx, "../etc"); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Remove(../etc) = %v, want ErrInvalid", err)
	}
	if err := su.s.Scale(ctx, "hello", -1); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Scale to -1 = %v, want ErrInvalid", err)
	}
	if got := su.instances("hello"); len(got) != 0 {
		t.Errorf("bad input started %s", describe(got))
	}
}

// Logs gives the app's output, or says ErrUnsupported.
func testLogs(su *suite) {
	t := su.t
	su.deploy(su.spec("hello", "v1", 1, ""))
	su.serving("hello", "v1", 1)
	var out syncBuffer
	err := su.s.Logs(context.Background(), "hello", false, &out)
	if errors.Is(err, deploy.ErrUnsupported) {
		return
	}
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	testkit.WaitFor(t, wait, "the app's output in Logs", func() bool {
		var now syncBuffer
		if err := su.s.Logs(context.Background(), "hello", false, &now); err != nil {
			t.Fatalf("Logs: %v", err)
		}
		return strings.Contains(now.String(), banner)
	})
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
