package schedtest

import (
	"context"
	"errors"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

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
	if err := su.s.Deploy(ctx, bad, &testkit.Buffer{}); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Deploy of app %q = %v, want ErrInvalid", bad.App, err)
	}
	neg := su.spec("hello", "v1", -1, "")
	if err := su.s.Deploy(ctx, neg, &testkit.Buffer{}); !errors.Is(err, deploy.ErrInvalid) {
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
	var out testkit.Buffer
	err := su.s.Logs(context.Background(), "hello", false, &out)
	if errors.Is(err, deploy.ErrUnsupported) {
		return
	}
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	testkit.WaitFor(t, wait, "the app's output in Logs", func() bool {
		var now testkit.Buffer
		if err := su.s.Logs(context.Background(), "hello", false, &now); err != nil {
			t.Fatalf("Logs: %v", err)
		}
		return strings.Contains(now.String(), banner)
	})
}
