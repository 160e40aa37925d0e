package engine_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// TestEventsCarrySnapshots: the events a subscriber (the router) routes
// from carry the app as it was just after the change: the release event
// has the new release with its healthy instance, each app's events come
// in the order their snapshots were taken (an instance seen healthy is
// never followed by an older snapshot without it while nothing stops
// it), traffic figures and a destroyed app carry none, nor does the
// "deploy started" of an app not created yet.
func TestEventsCarrySnapshots(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir())
	events, unsubscribe := p.svc.Subscribe()
	defer unsubscribe()
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: example(t, "hello"), Trigger: "test"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	p.svc.RecordActivity("hello", deploy.Activity{LastRequestAt: time.Now(), RequestRate: 1})
	var live, seenHealthy, activity, created bool
	timeout := time.After(20 * time.Second)
	for !activity {
		var e deploy.Event
		select {
		case e = <-events:
		case <-timeout:
			t.Fatal("no activity event after 20s")
		}
		switch {
		case e.Type == "activity":
			if e.Snapshot != nil {
				t.Errorf("%s event with a snapshot", e.Type)
			}
			activity = true
			continue
		case e.Snapshot == nil && !created && e.Type == "deploy":
			continue // "deploy started" of a first deploy: no app yet
		case e.Snapshot == nil:
			t.Errorf("%s event (%s) without a snapshot", e.Type, e.Message)
			continue
		case e.Snapshot.Name != "hello":
			t.Errorf("event of %s with a snapshot of %s", e.App, e.Snapshot.Name)
		}
		created = true
		healthy := e.Snapshot.HealthyCount() > 0
		if seenHealthy && !healthy && !live {
			t.Errorf("%s event (%s): a snapshot without the healthy instance an earlier one had", e.Type, e.Message)
		}
		seenHealthy = seenHealthy || healthy
		if e.Type == "release" {
			live = true
			if e.Snapshot.Release != "v1" || !healthy {
				t.Errorf("release event's snapshot: release %q, %d healthy, want v1 with its instance", e.Snapshot.Release, e.Snapshot.HealthyCount())
			}
		}
	}
	if !live {
		t.Error("no release event")
	}
	// Instances that stop while the app goes may come without a snapshot:
	// the app is gone, and the router reads every app again.
	if err := p.svc.Destroy(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-events:
			if e.Type != "destroyed" {
				continue
			}
			if e.Snapshot != nil {
				t.Error("destroyed event with a snapshot")
			}
			return
		case <-timeout:
			t.Fatal("no destroyed event after 20s")
		}
	}
}
