package marathon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// workerSpec is the spec the engine gives a worker: the app's release, the
// type's command, no port, no check.
func workerSpec(app, release string, n int) deploy.Spec {
	sp := testSpec(deploy.ProcessApp(app, "worker"), release, n)
	sp.Command = "node worker.js"
	sp.Descriptor.Ports, sp.Descriptor.Checks = 0, nil
	return sp
}

// TestProcessTypesInTheAppsGroup: an app's web process and its worker are
// two Marathon apps in the app's group, read back under Flock's names
// (also by a restarted Flock), and removing the app deletes the group
// with everything in it, forced.
func TestProcessTypesInTheAppsGroup(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, workerSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if ids := f.AppsIn("/flock/hello"); strings.Join(ids, " ") != "/flock/hello/web /flock/hello/worker" {
		t.Fatalf("Marathon apps in /flock/hello: %v", ids)
	}
	env := f.App("/flock/hello/worker")["env"].(map[string]any)
	if env["FLOCK_APP"] != "hello" || env["FLOCK_PROCESS"] != "worker" {
		t.Errorf("worker env FLOCK_APP=%v FLOCK_PROCESS=%v", env["FLOCK_APP"], env["FLOCK_PROCESS"])
	}

	restarted := newSched(t, Config{URLs: []string{f.URL}})
	run(t, restarted)
	testkit.WaitFor(t, 5*time.Second, "both read back by their Flock names", func() bool {
		w, err1 := restarted.Instances(ctx, "hello--worker")
		web, err2 := restarted.Instances(ctx, "hello")
		return err1 == nil && err2 == nil && len(w) == 2 && len(web) == 1
	})
	// Marathon's events about the worker's Marathon app refresh the
	// worker's cache entry: a scale made outside Flock shows without a read.
	req, _ := http.NewRequest("PUT", f.URL+"/v2/apps/flock/hello/worker?force=true", strings.NewReader(`{"instances":3}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT instances 3: %v %v", resp, err)
	}
	testkit.WaitFor(t, 5*time.Second, "the events' refresh of hello--worker", func() bool {
		restarted.mu.Lock()
		defer restarted.mu.Unlock()
		e, ok := restarted.apps["hello--worker"]
		return ok && len(e.instances) == 3
	})
	if err := restarted.Scale(ctx, "hello--worker", 0); err != nil {
		t.Fatal(err)
	}
	if n := f.App("/flock/hello/worker")["instances"]; n != 0.0 {
		t.Errorf("worker instances after Scale 0: %v", n)
	}

	if err := restarted.Remove(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	del := requests(f, "DELETE", "/v2/groups/flock/hello")
	if len(del) != 1 || query(del[0]).Get("force") != "true" {
		t.Errorf("DELETE /v2/groups/flock/hello requests: %+v", del)
	}
	if ids := f.AppsIn("/flock/hello"); len(ids) != 0 {
		t.Errorf("left in Marathon after Remove: %v", ids)
	}
	testkit.WaitFor(t, 5*time.Second, "the worker forgotten", func() bool {
		w, err := restarted.Instances(ctx, "hello--worker")
		return err == nil && len(w) == 0
	})
	// The engine removes each process type after the app: nothing left
	// is no error.
	if err := restarted.Remove(ctx, "hello--worker"); err != nil {
		t.Errorf("Remove of a worker its group took along: %v", err)
	}
}

// seedFlat creates Marathon apps as a Flock before groups left them.
func seedFlat(t *testing.T, f *marathontest.Server, ids ...string) {
	t.Helper()
	for _, id := range ids {
		body := `{"id":"` + id + `","cmd":"node server.js","instances":1,"labels":{"FLOCK_MANAGED":"true","FLOCK_RELEASE":"v1"}}`
		resp, err := http.Post(f.URL+"/v2/apps", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("seed %s: %v %v", id, resp, err)
		}
		resp.Body.Close()
	}
}

// TestFlatAppsAdopted: apps deployed before process types had groups
// (<Group>/<app>, <Group>/<app>--<type>) are read, redeployed and scaled
// under their ids: a redeploy of the running release (Flock's start)
// moves nothing, and a release whose process types this Flock did not
// deploy stays flat. Removing the app removes all its flat apps, also for
// a Flock that has not listed them yet; a new app of that name gets a
// group.
func TestFlatAppsAdopted(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	seedFlat(t, f, "/flock/old", "/flock/old--worker")
	s := newSched(t, Config{URLs: []string{f.URL}})
	run(t, s)
	ctx := context.Background()
	testkit.WaitFor(t, 5*time.Second, "the flat apps read", func() bool {
		w, err1 := s.Instances(ctx, "old--worker")
		web, err2 := s.Instances(ctx, "old")
		return err1 == nil && err2 == nil && len(w) == 1 && len(web) == 1
	})
	if err := s.Deploy(ctx, testSpec("old", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Scale(ctx, "old--worker", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Deploy(ctx, testSpec("old", "v2", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if a := f.App("/flock/old"); a == nil || a["labels"].(map[string]any)[releaseLabel] != "v2" {
		t.Errorf("/flock/old after the v2 deploy: %v", a)
	}
	if a := f.App("/flock/old--worker"); a == nil || a["instances"] != 2.0 {
		t.Errorf("/flock/old--worker after its scale to 2: %v", a)
	}
	if ids := f.AppsIn("/flock/old"); len(ids) != 0 {
		t.Errorf("a group beside the flat app: %v", ids)
	}
	if err := s.Remove(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if f.App("/flock/old") != nil || f.App("/flock/old--worker") != nil {
		t.Errorf("flat apps left after Remove")
	}
	// A Flock that has not listed the apps yet (no Run) removes them too.
	seedFlat(t, f, "/flock/gone", "/flock/gone--worker")
	if err := newSched(t, Config{URLs: []string{f.URL}}).Remove(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if ids := f.AppsIn("/flock"); len(ids) != 0 {
		t.Errorf("left after Remove by a fresh Flock: %v", ids)
	}
	if err := s.Deploy(ctx, testSpec("old", "v3", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if f.App("/flock/old/web") == nil {
		t.Errorf("a new app of the removed flat app's name is not in its group: %v", f.AppsIn("/flock"))
	}
}

// TestFlatAppMoves: the next release of a flat app moves it into its
// group, and at every moment of the move the app has a healthy instance:
// the release starts beside the flat app (/flock/old--web), the flat apps
// are drained and deleted, the release and its worker are deployed into
// /flock/old, and the bridge is drained and deleted.
func TestFlatAppMoves(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	seedFlat(t, f, "/flock/old", "/flock/old--worker")
	d := &drains{}
	s := newSched(t, Config{URLs: []string{f.URL}, Drainer: d})
	run(t, s)
	ctx := context.Background()
	testkit.WaitFor(t, 5*time.Second, "the flat app healthy", func() bool {
		web, err := s.Instances(ctx, "old")
		return err == nil && len(web) == 1 && web[0].Healthy
	})
	stop := make(chan struct{})
	gaps := make(chan string, 1)
	go func() { // the router's view, polled through the move
		defer close(gaps)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ins, err := s.Instances(ctx, "old")
			healthy := 0
			for _, in := range ins {
				if in.Healthy {
					healthy++
				}
			}
			if err != nil || healthy == 0 {
				gaps <- fmt.Sprintf("%v %v", ins, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var log bytes.Buffer
	if err := s.Deploy(ctx, workerSpec("old", "v2", 1), &log); err != nil {
		t.Fatal(err)
	}
	if err := s.Deploy(ctx, testSpec("old", "v2", 1), &log); err != nil {
		t.Fatal(err)
	}
	close(stop)
	if gap, ok := <-gaps; ok {
		t.Errorf("no healthy instance during the move: %s", gap)
	}
	if ids := f.AppsIn("/flock"); strings.Join(ids, " ") != "/flock/old/web /flock/old/worker" {
		t.Errorf("Marathon apps after the move: %v, want web and worker in /flock/old", ids)
	}
	for _, id := range []string{"/flock/old/web", "/flock/old/worker"} {
		if a := f.App(id); a == nil || a["labels"].(map[string]any)[releaseLabel] != "v2" {
			t.Errorf("%s after the move: %v", id, a)
		}
	}
	drained := strings.Join(d.list(), " ")
	if !strings.Contains(drained, "old/flock_old.") || !strings.Contains(drained, "old--web/flock_old--web.") {
		t.Errorf("drained %s, want the flat web app's and the bridge's instances", drained)
	}
	if !strings.Contains(log.String(), "moved into /flock/old") {
		t.Errorf("deploy log:\n%s", log.String())
	}
	ins, err := s.Instances(ctx, "old")
	if err != nil || len(ins) != 1 || ins[0].Release != "v2" {
		t.Errorf("instances after the move: %v %v", ins, err)
	}
}

// TestFailedMoveKeepsServing: when the release does not come up in the
// group, the bridge keeps serving it; the next release that does drops
// the bridge.
func TestFailedMoveKeepsServing(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	seedFlat(t, f, "/flock/old")
	s := newSched(t, Config{URLs: []string{f.URL}, DeployTimeout: time.Second})
	run(t, s)
	ctx := context.Background()
	f.SetUnhealthy("/flock/old/web", true)
	if err := s.Deploy(ctx, testSpec("old", "v2", 1), &bytes.Buffer{}); err == nil {
		t.Fatal("the move succeeded with the group's web app unhealthy")
	}
	testkit.WaitFor(t, 5*time.Second, "the bridge serving v2", func() bool {
		ins, err := s.Instances(ctx, "old")
		return err == nil && slices.ContainsFunc(ins, func(in deploy.Instance) bool {
			return in.Healthy && in.Release == "v2" && strings.HasPrefix(in.ID, "flock_old--web.")
		})
	})
	f.SetUnhealthy("/flock/old/web", false)
	if err := s.Deploy(ctx, testSpec("old", "v3", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if ids := f.AppsIn("/flock"); strings.Join(ids, " ") != "/flock/old/web" {
		t.Errorf("Marathon apps after v3: %v, want the group's web app only", ids)
	}
	testkit.WaitFor(t, 5*time.Second, "v3 alone", func() bool {
		ins, err := s.Instances(ctx, "old")
		return err == nil && len(ins) == 1 && ins[0].Release == "v3"
	})
}

// TestProcessTypeNotAMarathonID: a Procfile type Marathon cannot take in
// an id (Heroku allows '_' and capitals) fails the deploy, naming it, and
// sends Marathon nothing.
func TestProcessTypeNotAMarathonID(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	for _, typ := range []string{"my_worker", "Worker"} {
		sp := workerSpec("hello", "v1", 1)
		sp.App = deploy.ProcessApp("hello", typ)
		err := s.Deploy(context.Background(), sp, &bytes.Buffer{})
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `process type "`+typ+`"`) {
			t.Errorf("deploy of type %s: %v", typ, err)
		}
	}
	if n := len(requests(f, "POST", "/v2/apps")); n != 0 {
		t.Errorf("%d POSTs for types Marathon refuses", n)
	}
}
