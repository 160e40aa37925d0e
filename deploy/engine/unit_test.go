package engine_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
)

// These tests check the Service's own rules over a fake scheduler and
// builder, in milliseconds; service_test.go checks the same pipeline end
// to end over the real builder and the embedded scheduler.

func deployOK(t *testing.T, u *unit, dir string) deploy.Release {
	t.Helper()
	var log strings.Builder
	rel, err := u.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: dir, Trigger: "cli"}, &log)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log.String())
	}
	return rel
}

func appOf(t *testing.T, u *unit, name string) deploy.App {
	t.Helper()
	a, err := u.svc.App(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestUnitDeployRunsTheDescriptorsRelease(t *testing.T) {
	u := startUnit(t, t.TempDir(), newFakeScheduler())
	rel := deployOK(t, u, source(t, "hello", 2))
	if rel.Name != "v1" {
		t.Errorf("first release = %s, want v1", rel.Name)
	}
	spec, ok := u.sched.spec("hello")
	if !ok || spec.Release != "v1" || spec.Instances != 2 || spec.Env["GREETING"] != "hi" || spec.Command != "node server.js" {
		t.Errorf("scheduler got %+v, want v1 with 2 instances, the descriptor's env and the built command", spec)
	}
	a := appOf(t, u, "hello")
	if a.State != deploy.StateRunning || a.Release != "v1" || a.HealthyCount() != 2 || a.URL != "http://hello.localhost" {
		t.Errorf("app = %s %s healthy %d url %s, want running v1 with 2 healthy at http://hello.localhost", a.State, a.Release, a.HealthyCount(), a.URL)
	}
	rs, err := u.svc.Deploys(context.Background(), "hello")
	if err != nil || len(rs) != 1 || rs[0].Status != deploy.RolloutSucceeded || rs[0].Release != "v1" {
		t.Fatalf("rollout records = %+v (%v), want one succeeded v1", rs, err)
	}
	full, err := u.svc.DeployByID(context.Background(), rs[0].ID)
	if err != nil || !strings.Contains(full.Log, "building hello v1") || !strings.Contains(full.Log, "v1 is live at http://hello.localhost") {
		t.Errorf("rollout log = %q (%v), want the build's lines and where v1 is live", full.Log, err)
	}
}

func TestUnitFailedBuildKeepsTheRunningRelease(t *testing.T) {
	u := startUnit(t, t.TempDir(), newFakeScheduler())
	deployOK(t, u, source(t, "hello", 1))
	_, err := u.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: source(t, "hello", 1, "FAIL"), Trigger: "cli"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "missing script") {
		t.Fatalf("deploy of a failing build = %v, want the build's error", err)
	}
	if a := appOf(t, u, "hello"); a.Release != "v1" || a.HealthyCount() != 1 {
		t.Errorf("after a failed build the app is at %s with %d healthy, want v1 still serving", a.Release, a.HealthyCount())
	}
	if spec, _ := u.sched.spec("hello"); spec.Release != "v1" {
		t.Errorf("the scheduler runs %s, want v1", spec.Release)
	}
	rs, _ := u.svc.Deploys(context.Background(), "hello")
	if len(rs) != 2 || rs[0].Status != deploy.RolloutFailed || !strings.Contains(rs[0].Error, "missing script") {
		t.Errorf("newest rollout = %+v, want failed naming the build's error", rs[0])
	}
	if full, err := u.svc.DeployByID(context.Background(), rs[0].ID); err != nil || !strings.Contains(full.Log, "-----> Deploy failed: ") {
		t.Errorf("the failed rollout's log (%v) does not end saying so:\n%s", err, full.Log)
	}
	rels, _ := u.svc.Releases(context.Background(), "hello")
	if len(rels) != 1 {
		t.Errorf("releases = %d, want 1: a failed build records no release", len(rels))
	}
}

func TestUnitUnhealthyReleaseFailsTheDeploy(t *testing.T) {
	sched := newFakeScheduler()
	u := startUnit(t, t.TempDir(), sched)
	deployOK(t, u, source(t, "hello", 1))
	sched.mu.Lock()
	sched.unhealthy["v2"] = true
	sched.mu.Unlock()
	_, err := u.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: source(t, "hello", 1), Trigger: "cli"}, io.Discard)
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("deploy of a release that never passes = %v, want ErrUnhealthy", err)
	}
	if a := appOf(t, u, "hello"); a.Release != "v1" || a.HealthyCount() != 1 {
		t.Errorf("app = %s with %d healthy, want v1 still serving", a.Release, a.HealthyCount())
	}
	// The failed release never reuses its number: the next one is v3.
	if rel := deployOK(t, u, source(t, "hello", 1)); rel.Name != "v3" {
		t.Errorf("release after a failed v2 = %s, want v3", rel.Name)
	}
}

func TestUnitRollbackRunsTheOldSlugWithoutBuilding(t *testing.T) {
	u := startUnit(t, t.TempDir(), newFakeScheduler())
	v1 := deployOK(t, u, source(t, "hello", 1))
	deployOK(t, u, source(t, "hello", 1))
	builds := u.b.count()
	rel, err := u.svc.Rollback(context.Background(), "hello", "v1", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if u.b.count() != builds {
		t.Errorf("rollback built %d times, want none", u.b.count()-builds)
	}
	if rel.Name != "v3" || rel.Slug != v1.Slug {
		t.Errorf("rollback made %s with slug %s, want v3 running v1's slug %s", rel.Name, rel.Slug, v1.Slug)
	}
	if spec, _ := u.sched.spec("hello"); spec.Release != "v3" || spec.SlugPath != v1.Slug {
		t.Errorf("scheduler runs %s from %s, want v3 from v1's slug", spec.Release, spec.SlugPath)
	}
	if _, err := u.svc.Rollback(context.Background(), "hello", "v9", io.Discard); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("rollback to a missing release = %v, want ErrNotFound", err)
	}
}

func TestUnitSleepAndWakeAreIdempotent(t *testing.T) {
	u := startUnit(t, t.TempDir(), newFakeScheduler())
	deployOK(t, u, source(t, "hello", 2))
	ctx := context.Background()
	for range 2 {
		if err := u.svc.Sleep(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	if a := appOf(t, u, "hello"); a.State != deploy.StateSleeping || len(a.Instances) != 0 || a.Desired != 2 {
		t.Errorf("asleep: %s with %d instances, desired %d; want sleeping, 0, and 2 remembered", a.State, len(a.Instances), a.Desired)
	}
	for range 2 {
		if err := u.svc.Wake(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	if spec, _ := u.sched.spec("hello"); spec.Instances != 2 {
		t.Errorf("woken to %d instances, want the 2 desired", spec.Instances)
	}
	if a := appOf(t, u, "hello"); a.State != deploy.StateRunning {
		t.Errorf("woken app is %s, want running", a.State)
	}
	if err := u.svc.Scale(ctx, "hello", -1); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("scale to -1 = %v, want ErrInvalid", err)
	}
	if err := u.svc.Sleep(ctx, "nope"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("sleep of a missing app = %v, want ErrNotFound", err)
	}
}

func TestUnitDestroyForgetsTheApp(t *testing.T) {
	sched := newFakeScheduler()
	u := startUnit(t, t.TempDir(), sched)
	deployOK(t, u, source(t, "hello", 1))
	if err := u.svc.Destroy(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.svc.App(context.Background(), "hello"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("app after destroy: %v, want ErrNotFound", err)
	}
	if _, ok := sched.spec("hello"); ok {
		t.Error("the scheduler still runs the destroyed app")
	}
	// The name is free again and numbering starts over.
	if rel := deployOK(t, u, source(t, "hello", 1)); rel.Name != "v1" {
		t.Errorf("first release after destroy = %s, want v1", rel.Name)
	}
}

func TestUnitRestartHandsDesiredStateToANewScheduler(t *testing.T) {
	dir := t.TempDir()
	u := startUnit(t, dir, newFakeScheduler())
	deployOK(t, u, source(t, "awake", 2))
	deployOK(t, u, source(t, "asleep", 1))
	if err := u.svc.Sleep(context.Background(), "asleep"); err != nil {
		t.Fatal(err)
	}
	u.stop()

	sched := newFakeScheduler()
	u2 := startUnit(t, dir, sched)
	testkit.WaitFor(t, 10*time.Second, "the new scheduler to run both apps", func() bool {
		_, a := sched.spec("awake")
		_, b := sched.spec("asleep")
		return a && b
	})
	if s, _ := sched.spec("awake"); s.Release != "v1" || s.Instances != 2 {
		t.Errorf("awake app reconciled to %s × %d, want v1 × 2", s.Release, s.Instances)
	}
	if s, _ := sched.spec("asleep"); s.Instances != 0 {
		t.Errorf("sleeping app reconciled to %d instances, want 0", s.Instances)
	}
	if a := appOf(t, u2, "asleep"); a.State != deploy.StateSleeping {
		t.Errorf("sleeping app after restart is %s, want sleeping", a.State)
	}
}
