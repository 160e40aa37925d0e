package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	gomarathon "github.com/gambol99/go-marathon"
	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestListingClusterShapes lists Flock's apps on clusters of both shapes
// (Marathon 1.4: no task state, health results; 1.5: networks and
// container.portMappings), next to foreign apps, one with an env secret.
func TestListingClusterShapes(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    map[string]int // app → healthy instances
		healthy bool
	}{
		{"marathon 1.4 health checks", "v2_apps_embed_tasks_response_marathon14_healthchecks.json", map[string]int{"nginx-green": 3, "nginx-blue": 1}, true},
		{"marathon 1.5 networks", "v2_apps_embed_tasks_response_marathon15_networks.json", map[string]int{"pywebserver": 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, marathontest.Options{})
			for _, foreign := range []string{"v2_app_definition_post_request_and_response.json", "v2_apps_list_response.json"} {
				if err := f.SeedApps(fixture(t, foreign)); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.SeedApps(managed(t, fixture(t, tt.file))); err != nil {
				t.Fatal(err)
			}
			s := newSched(t, Config{URLs: []string{f.URL}, Group: "/"})
			if err := s.resync(context.Background()); err != nil {
				t.Fatalf("resync: %v", err)
			}
			got := map[string]int{}
			for app := range tt.want {
				ins, err := s.Instances(context.Background(), app)
				if err != nil {
					t.Fatalf("Instances(%s): %v", app, err)
				}
				for _, in := range ins {
					if in.Healthy && in.Host != "" && in.Port != 0 && in.Release == "v1" && !in.StartedAt.IsZero() {
						got[app]++
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("healthy instances (-want +got):\n%s", diff)
			}
			for _, foreign := range []string{"foo", "myapp"} {
				if _, ok := s.apps[foreign]; ok {
					t.Errorf("foreign app %s listed", foreign)
				}
			}
			list := requests(f, "GET", "/v2/apps")
			if len(list) == 0 || query(list[0]).Get("label") != "FLOCK_MANAGED==true" || query(list[0]).Get("embed") != "apps.tasks" {
				t.Errorf("list request %+v, want label selector and embedded tasks", list)
			}
		})
	}
}

// TestDecodeIsLenient decodes, in one list, every app document the
// fixtures hold, including the one go-marathon v0.7.1 cannot decode.
func TestDecodeIsLenient(t *testing.T) {
	var all []json.RawMessage
	for _, name := range []string{"v2_apps_list_response.json", "v2_apps_embed_tasks_response_marathon14_healthchecks.json",
		"v2_apps_embed_tasks_response_marathon15_networks.json"} {
		var doc struct{ Apps []json.RawMessage }
		if err := json.Unmarshal(fixture(t, name), &doc); err != nil {
			t.Fatal(err)
		}
		all = append(all, doc.Apps...)
	}
	all = append(all, fixture(t, "v2_app_definition_post_request_and_response.json"))
	body, _ := json.Marshal(map[string]any{"apps": all})

	var theirs gomarathon.Applications
	if err := json.Unmarshal(body, &theirs); err == nil {
		t.Log("go-marathon now decodes an env secret; the lenient decoder could go")
	}
	apps, err := decodeApps(body)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range apps {
		ids = append(ids, a.ID)
	}
	want := []string{"/myapp", "/nginx-green", "/nginx-blue", "/pywebserver", "/foo"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("decoded apps (-want +got):\n%s", diff)
	}
}

// TestTaskDocuments reads the task documents: a staging task is no
// instance; running tasks are, with their ports.
func TestTaskDocuments(t *testing.T) {
	tests := []struct {
		file    string
		running []string
	}{
		{"v2_app_id_tasks_response.json", nil},
		{"v2_tasks_response.json", []string{"tools_docker_registry.002b4d28-46b9-11e5-b731-525400cce7ed", "frontend-foosball.083be411-5d1f-11e5-88f7-56b91e7a505b"}}, // oldest first
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var doc struct{ Tasks []mTask }
			if err := json.Unmarshal(fixture(t, tt.file), &doc); err != nil {
				t.Fatal(err)
			}
			ins := mApp{Tasks: doc.Tasks}.instances(nil)
			if diff := cmp.Diff(tt.running, instanceIDs(ins)); diff != "" {
				t.Errorf("instances (-want +got):\n%s", diff)
			}
			for _, in := range ins {
				if !in.Healthy || in.Port == 0 {
					t.Errorf("%+v: want healthy (no checks) with a port", in)
				}
			}
		})
	}
}

// TestUnreachable: with every Marathon down, writes fail naming each URL
// tried, and Instances serves the last good state.
func TestUnreachable(t *testing.T) {
	a := newFake(t, marathontest.Options{})
	b := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{a.URL, b.URL}})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	a.SetDown(true)
	b.SetDown(true)
	err := s.Scale(ctx, "hello", 3)
	if !errors.Is(err, errUnreachable) || !strings.Contains(err.Error(), a.URL) || !strings.Contains(err.Error(), b.URL) {
		t.Errorf("Scale with Marathon down: %v; want an error naming %s and %s", err, a.URL, b.URL)
	}
	err = s.Deploy(ctx, testSpec("hello", "v2", 2), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "marathon unreachable") {
		t.Errorf("Deploy with Marathon down: %v", err)
	}
	if err := s.resync(ctx); err == nil {
		t.Error("resync succeeded with Marathon down")
	}
	ins, err := s.Instances(ctx, "hello")
	if err != nil || len(ins) != 2 {
		t.Errorf("Instances while down = %v, %v; want the 2 cached", ins, err)
	}
	a.SetDown(false) // the Marathon that holds the app is back
	if err := s.Scale(ctx, "hello", 3); err != nil {
		t.Errorf("Scale once one Marathon is back: %v", err)
	}
}

// TestFailover: the first Marathon of two is down; everything goes to the
// second, including the event stream.
func TestFailover(t *testing.T) {
	a := newFake(t, marathontest.Options{})
	b := newFake(t, marathontest.Options{})
	a.SetDown(true)
	s := newSched(t, Config{URLs: []string{a.URL, b.URL}})
	run(t, s)
	if err := s.Deploy(context.Background(), testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatalf("Deploy with the first Marathon down: %v", err)
	}
	if len(requests(b, "POST", "/v2/apps")) != 1 {
		t.Error("the second Marathon did not get the app")
	}
	testkit.WaitFor(t, 5*time.Second, "event stream on the second Marathon", func() bool { return b.Streams() == 1 })
	// The second dies too, the first comes back: the stream moves back.
	a.SetDown(false)
	b.SetDown(true)
	testkit.WaitFor(t, 5*time.Second, "event stream back on the first Marathon", func() bool { return a.Streams() == 1 })
}

// TestLogsMarathonDown: without Marathon there is no task list to read
// logs from; the error names what was tried.
func TestLogsMarathonDown(t *testing.T) {
	s := newSched(t, Config{URLs: []string{"http://127.0.0.1:1"}})
	if err := s.Logs(context.Background(), "hello", false, &bytes.Buffer{}); !errors.Is(err, errUnreachable) {
		t.Errorf("Logs = %v, want unreachable", err)
	}
}

// TestNewValidates rejects configurations that cannot work.
func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{}},
		{"no scheme", Config{URLs: []string{"m1:8080"}}},
		{"relative group", Config{URLs: []string{"http://m1:8080"}, Group: "flock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("New = %v, want ErrInvalid", err)
			}
		})
	}
	s, err := New(Config{URLs: []string{"http://m1:8080/", " http://m2:8080"}})
	if err != nil || s.cfg.Group != "/flock" || s.cfg.DeployTimeout != 5*time.Minute || s.cfg.Resync != 3*time.Minute ||
		s.cfg.URLs[0] != "http://m1:8080" || s.cfg.URLs[1] != "http://m2:8080" {
		t.Errorf("defaults: %+v, %v", s.cfg, err)
	}
}
