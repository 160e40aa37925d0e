package marathon

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestWakeResetsLaunchDelay: after a crash loop Marathon holds the app's
// next launch back (backoffSeconds × backoffFactor^n, up to
// maxLaunchDelaySeconds, 3600 in the recorded 1.5 document); a wake
// deletes the delay (DELETE /v2/queue/<id>/delay) instead of waiting it out.
func TestWakeResetsLaunchDelay(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// An operator sets a long backoff (a partial PUT, as the UI does).
	req, _ := http.NewRequest("PUT", f.URL+"/v2/apps/flock/hello/web", strings.NewReader(`{"backoffSeconds":3600}`))
	if resp, err := f2client().Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT backoff: %v %v", resp, err)
	}
	testkit.WaitFor(t, 5*time.Second, "the backoff deployment", func() bool {
		_ = s.refresh(ctx, "hello")
		ins, _ := s.Instances(ctx, "hello")
		a, err := s.api.App(ctx, "/flock/hello/web")
		return len(ins) == 1 && ins[0].Healthy && err == nil && len(a.Deployments) == 0
	})
	f.Crash("/flock/hello/web")
	if !f.Delayed("/flock/hello/web") {
		t.Fatal("no launch delay after the crash")
	}
	if err := s.Scale(ctx, "hello", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Scale(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	if len(requests(f, "DELETE", "/v2/queue/flock/hello/web/delay")) != 1 {
		t.Error("the wake did not reset the launch delay")
	}
	testkit.WaitFor(t, 5*time.Second, "the woken instance (not 36 s of backoff)", func() bool {
		_ = s.refresh(ctx, "hello")
		ins, _ := s.Instances(ctx, "hello")
		return len(ins) == 1 && ins[0].Healthy
	})
}

// TestSleepDuringDeploymentWins: a sleep while a release rolls out is
// forced (Marathon answers 409 "App is locked by one or more deployments"
// otherwise) and supersedes the deployment; the deploy reports the
// release in place at zero instances instead of rolling the sleep back.
func TestSleepDuringDeploymentWins(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	run(t, s)
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	f.SetUnhealthy("/flock/hello/web", true) // v2 never gets healthy: its deployment stays
	var log testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- s.Deploy(ctx, testSpec("hello", "v2", 1), &log) }()
	testkit.WaitFor(t, 5*time.Second, "the v2 deployment", func() bool { return strings.Contains(log.String(), "updated /flock/hello/web") })

	if err := s.Scale(ctx, "hello", 0); err != nil {
		t.Fatalf("sleep during a deployment: %v", err)
	}
	puts := requests(f, "PUT", "/v2/apps/flock/hello/web")
	if q := query(puts[len(puts)-1]); q.Get("force") != "true" {
		t.Errorf("sleep PUT ?%s, want force=true", puts[len(puts)-1].Query)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Deploy v2 = %v\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deploy v2 still waiting")
	}
	if !strings.Contains(log.String(), "superseded by a scale to 0") {
		t.Errorf("deploy log:\n%s", log.String())
	}
	app := f.App("/flock/hello/web")
	if app["instances"] != 0.0 || app["labels"].(map[string]any)[releaseLabel] != "v2" {
		t.Errorf("after the sleep: instances %v, release %v; want 0 of v2", app["instances"], app["labels"].(map[string]any)[releaseLabel])
	}
	if rs := requests(f, "DELETE", "/v2/deployments/"); len(rs) != 0 {
		t.Errorf("rolled back: %+v", rs)
	}
}

// TestUnforcedChangeDuringDeploymentConflicts: the stand-in answers 409
// to a change during a deployment unless forced, as Marathon does; a
// deploy retries, then gives up with ErrConflict.
func TestUnforcedChangeDuringDeploymentConflicts(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	f.SetUnhealthy("/flock/hello/web", true)
	go s.Deploy(ctx, testSpec("hello", "v2", 1), &bytes.Buffer{})
	testkit.WaitFor(t, 5*time.Second, "the v2 deployment", func() bool { return len(requests(f, "PUT", "/v2/apps/flock/hello/web")) == 1 })
	err := s.Deploy(ctx, testSpec("hello", "v3", 1), &bytes.Buffer{})
	var c *conflictError
	if !errors.As(err, &c) || !strings.Contains(err.Error(), "App is locked by one or more deployments") {
		t.Errorf("Deploy during a deployment = %v, want the 409", err)
	}
}
