package marathon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestParseEventFixtures parses every event of Marathon's event-bus docs
// and checks which app each asks to refresh.
func TestParseEventFixtures(t *testing.T) {
	want := map[string]trigger{
		"api_post_event.json":                                      {ids: []string{"/my-app"}},
		"app_terminated_event.json":                                {ids: []string{"/my-app"}},
		"deployment_failed.json":                                   {deployment: "867ed450-f6a8-4d33-9b0e-e11c5513990b", all: true},
		"deployment_info.json":                                     {ids: []string{"/my-app", "/my-app"}},
		"deployment_step_success.json":                             {ids: []string{"/my-app", "/my-app"}},
		"deployment_success.json":                                  {deployment: "867ed450-f6a8-4d33-9b0e-e11c5513990b", succeeded: true, all: true},
		"event_stream_attached.json":                               {all: true},
		"failed_health_check_event.json":                           {ids: []string{"/my-app"}},
		"group_change_success.json":                                {all: true},
		"health_status_changed_event.json":                         {ids: []string{"/my-app"}},
		"instance_changed_event.json":                              {ids: []string{"/app-id"}},
		"instance_health_changed_event.json":                       {ids: []string{"/app-id"}},
		"status_update_event.json":                                 {ids: []string{"/my-app"}},
		"unhealthy_instance_kill_event.json":                       {ids: []string{"/my-app"}},
		"health_status_changed_event_pre_marathon_1.4_taskId.json": {ids: []string{"/my-app"}},
	}
	files, _ := filepath.Glob(filepath.Join(fixtures, "events", "*.json"))
	if len(files) != len(want) {
		t.Errorf("%d event fixtures, %d expectations: a new event type?", len(files), len(want))
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			got, ok := parseEvent(fixture(t, "events/"+name))
			if !ok {
				t.Fatal("not understood")
			}
			if diff := cmp.Diff(want[name], got, cmp.AllowUnexported(trigger{})); diff != "" {
				t.Errorf("trigger (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthEventWithoutAppID: only the instance (≥1.4) or task (<1.4) id.
func TestHealthEventWithoutAppID(t *testing.T) {
	for _, data := range []string{
		`{"eventType":"health_status_changed_event","instanceId":"flock_hello.instance-c7c311a4","alive":true}`,
		`{"eventType":"health_status_changed_event","taskId":"flock_hello.c7c311a4","alive":false}`,
	} {
		got, _ := parseEvent([]byte(data))
		if !slices.Equal(got.ids, []string{"/flock/hello"}) {
			t.Errorf("%s → %v, want /flock/hello", data, got.ids)
		}
	}
}

// TestEventsRefreshTheNamedApp pushes every event fixture down a live
// stream and checks that the scheduler re-reads the app it names (or
// everything).
func TestEventsRefreshTheNamedApp(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}, Group: "/"})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "stream and first resync", func() bool {
		return f.Streams() == 1 && len(requests(f, "GET", "/v2/apps")) > 0
	})
	files, _ := filepath.Glob(filepath.Join(fixtures, "events", "*.json"))
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := "/v2/apps/my-app"
			switch {
			case strings.HasPrefix(name, "instance_"):
				want = "/v2/apps/app-id"
			case strings.HasPrefix(name, "deployment_success"), strings.HasPrefix(name, "deployment_failed"),
				strings.HasPrefix(name, "group_change"), strings.HasPrefix(name, "event_stream"):
				want = "/v2/apps"
			}
			before := len(requests(f, "GET", want))
			if err := f.Push(data); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 5*time.Second, "GET "+want, func() bool { return len(requests(f, "GET", want)) > before })
		})
	}
}

// TestEventStreamSample replays Marathon's recorded event stream.
func TestEventStreamSample(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}, Group: "/"})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "stream and first resync", func() bool {
		return f.Streams() == 1 && len(requests(f, "GET", "/v2/apps")) > 0
	})
	// The transcript starts with event_stream_attached (a resync), then
	// two status updates of two apps.
	attached, updates, _ := strings.Cut(string(fixture(t, "v2_events_stream_sample.txt")), "\n\n")
	lists := len(requests(f, "GET", "/v2/apps"))
	f.PushRaw([]byte(attached + "\n\n"))
	testkit.WaitFor(t, 5*time.Second, "resync", func() bool { return len(requests(f, "GET", "/v2/apps")) > lists })
	f.PushRaw([]byte(updates))
	for _, p := range []string{"/v2/apps/foo", "/v2/apps/test-app"} {
		testkit.WaitFor(t, 5*time.Second, "GET "+p, func() bool { return len(requests(f, "GET", p)) > 0 })
	}
}

// TestReadSSE parses the recorded transcript message by message.
func TestReadSSE(t *testing.T) {
	var names []string
	err := readSSE(bytes.NewReader(fixture(t, "v2_events_stream_sample.txt")), func(name string, data []byte) {
		if _, ok := parseEvent(data); ok {
			names = append(names, name)
		}
	})
	want := []string{"event_stream_attached", "status_update_event", "status_update_event"}
	if err != nil || !slices.Equal(names, want) {
		t.Errorf("readSSE = %v, %v; want %v", names, err, want)
	}
}

// TestStreamDropResyncs: when the stream drops (a leader change), the
// scheduler reconnects and re-reads everything, catching what it missed.
func TestStreamDropResyncs(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	run(t, s)
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "stream", func() bool { return f.Streams() == 1 })
	lists := len(requests(f, "GET", "/v2/apps"))
	f.SetDown(true) // Marathon goes away: the stream drops, events are lost
	testkit.WaitFor(t, 5*time.Second, "stream dropped", func() bool { return f.Streams() == 0 })
	f.SetDown(false)
	testkit.WaitFor(t, 5*time.Second, "reconnect", func() bool { return f.Streams() == 1 })
	testkit.WaitFor(t, 5*time.Second, "resync after reconnect", func() bool { return len(requests(f, "GET", "/v2/apps")) > lists })
	f.DropStreams()
	lists = len(requests(f, "GET", "/v2/apps"))
	testkit.WaitFor(t, 5*time.Second, "resync after a plain drop", func() bool {
		return f.Streams() == 1 && len(requests(f, "GET", "/v2/apps")) > lists
	})
}

// TestPeriodicResync: with no events at all, Resync still re-reads.
func TestPeriodicResync(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}, Resync: 30 * time.Millisecond})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "three resyncs", func() bool { return len(requests(f, "GET", "/v2/apps")) >= 3 })
}

// TestChangesNamesTheApp: a change Flock did not make (a task killed in
// Marathon) reaches Changes through the event stream.
func TestChangesNamesTheApp(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 2), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "stream", func() bool { return f.Streams() == 1 })
	drainChanges(s)
	ins, _ := s.Instances(ctx, "hello")
	// Kill one task behind Flock's back (scale=true: Marathon won't replace it).
	req, _ := newKill(f.URL, ins[0].ID)
	if resp, err := s.cfg.HTTPClient.Do(req); err == nil {
		resp.Body.Close()
	}
	select {
	case app := <-s.Changes():
		if app != "hello" {
			t.Errorf("Changes gave %q", app)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported")
	}
	testkit.WaitFor(t, 5*time.Second, "one instance", func() bool {
		got, _ := s.Instances(ctx, "hello")
		return len(got) == 1
	})
}
