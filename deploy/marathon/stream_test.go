package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestEventStreamIsLightAndFiltered: Flock asks for the light plan format
// (changelog 1.6) and only the event types it reads (event-bus.md,
// Marathon ≥1.3.7).
func TestEventStreamIsLightAndFiltered(t *testing.T) {
	f := newFake(t, marathontest.Options{Version: "1.6.0"})
	s := newSched(t, Config{URLs: []string{f.URL}})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "the event stream", func() bool { return f.Streams() == 1 })
	r := requests(f, "GET", "/v2/events")[0]
	q := query(r)
	if q.Get("plan-format") != "light" {
		t.Errorf("/v2/events?%s: no plan-format=light", r.Query)
	}
	got := slices.Sorted(slices.Values(q["event_type"]))
	want := slices.Sorted(slices.Values(eventTypes))
	if !slices.Equal(got, want) {
		t.Errorf("event_type = %v, want %v", got, want)
	}
	// Every type Flock asks for is one parseEvent acts on.
	for _, typ := range eventTypes {
		if _, ok := parseEvent([]byte(`{"eventType":"` + typ + `"}`)); !ok {
			t.Errorf("asked for %s, which parseEvent ignores", typ)
		}
	}
}

// TestHeavyEventKeepsTheStream: Marathon 1.5 sends heavy deployment
// events (the whole root group, twice) whatever Flock asks; with a
// 4.5 MiB app in the cluster one event passes 8 MiB, which ended the old reader
// ("token too long"). Now it is skipped for a resync and the stream stays.
func TestHeavyEventKeepsTheStream(t *testing.T) {
	f := newFake(t, marathontest.Options{Version: "1.5.0"})
	// The root group holds it twice (original and target): 9 MiB.
	big, _ := json.Marshal(map[string]any{"id": "/other/big", "cmd": "sleep 1", "instances": 0,
		"labels": map[string]string{"NOTE": strings.Repeat("x", 9<<19)}})
	if err := f.SeedApps(big); err != nil {
		t.Fatal(err)
	}
	var logs testkit.Buffer
	s := newSched(t, Config{URLs: []string{f.URL}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("events connections %d; log:\n%s", len(requests(f, "GET", "/v2/events")), logs.String())
		}
	})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "the event stream", func() bool { return f.Streams() == 1 })
	lists := len(requests(f, "GET", "/v2/apps"))
	var log bytes.Buffer
	if err := s.Deploy(context.Background(), testSpec("hello", "v1", 1), &log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, &log)
	}
	testkit.WaitFor(t, 10*time.Second, "a resync for the oversize event", func() bool { return len(requests(f, "GET", "/v2/apps")) > lists })
	// The stream still delivers: an event about another app makes Flock
	// read that app. (Pushed again until read: an event that arrives in the
	// same quarter second as a resync is covered by it, not read alone.)
	testkit.WaitFor(t, 10*time.Second, "the event after the heavy one", func() bool {
		f.Push([]byte(`{"eventType":"status_update_event","appId":"/flock/other","taskId":"x","taskStatus":"TASK_RUNNING"}`))
		time.Sleep(20 * time.Millisecond)
		return len(requests(f, "GET", "/v2/apps/flock/other")) > 0
	})
	if n := len(requests(f, "GET", "/v2/events")); n != 1 {
		t.Errorf("%d connections to /v2/events, want the one", n)
	}
}

// TestReadSSEHasNoLineCap: a 9 MiB event is reported with nil data and
// the events after it arrive, through Jetty's CRLF heartbeats.
func TestReadSSEHasNoLineCap(t *testing.T) {
	var in bytes.Buffer
	in.WriteString("event: deployment_info\ndata: {\"plan\":\"" + strings.Repeat("y", 9<<20) + "\"}\n\n")
	in.WriteString("\r\n\r\n")
	in.WriteString("event: deployment_success\r\ndata: {\"eventType\":\"deployment_success\",\"id\":\"d1\"}\r\n\r\n")
	in.WriteString("event: app_terminated_event\ndata: {\"eventType\":\"app_terminated_event\",\ndata: \"appId\":\"/flock/a\"}") // no final blank line
	type got struct {
		name string
		data string
		nil  bool
	}
	var gots []got
	err := readSSE(&in, func(name string, data []byte) {
		gots = append(gots, got{name, string(data), data == nil})
	})
	want := []got{
		{"deployment_info", "", true},
		{"deployment_success", `{"eventType":"deployment_success","id":"d1"}`, false},
		{"app_terminated_event", "{\"eventType\":\"app_terminated_event\",\n\"appId\":\"/flock/a\"}", false},
	}
	if err != nil || !slices.Equal(gots, want) {
		t.Errorf("readSSE = %+v, %v; want %+v", gots, err, want)
	}
}

// TestSilentStreamReconnects: a stream that sends nothing, not even
// Marathon's 10 s heartbeat, is a dead connection; Flock reconnects after
// EventIdle and resyncs.
func TestSilentStreamReconnects(t *testing.T) {
	f := newFake(t, marathontest.Options{Heartbeat: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, EventIdle: 300 * time.Millisecond})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "the event stream", func() bool { return f.Streams() == 1 })
	f.Stall(true)
	testkit.WaitFor(t, 5*time.Second, "a reconnect", func() bool { return len(requests(f, "GET", "/v2/events")) >= 2 })
	f.Stall(false)
	// The resync may come before this goroutine looks: find it in the
	// request log, after the reconnect, rather than count from now.
	testkit.WaitFor(t, 5*time.Second, "a resync after the reconnect", func() bool {
		streams := 0
		for _, r := range f.Requests() {
			switch {
			case r.Method == "GET" && r.Path == "/v2/events":
				streams++
			case r.Method == "GET" && r.Path == "/v2/apps" && streams >= 2:
				return true
			}
		}
		return false
	})
}

// BenchmarkReadSSEHeavy reads heavy deployment events (2 MiB each, over
// maxEvent, so read through and dropped) and small ones, as a 1.5 cluster
// sends them.
func BenchmarkReadSSEHeavy(b *testing.B) {
	var in bytes.Buffer
	for range 4 {
		in.WriteString("event: deployment_info\ndata: {\"plan\":\"" + strings.Repeat("y", 2<<20) + "\"}\n\n")
		for range 100 {
			in.WriteString("event: status_update_event\ndata: {\"eventType\":\"status_update_event\",\"appId\":\"/flock/a\"}\n\n")
		}
	}
	doc := in.Bytes()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		readSSE(bytes.NewReader(doc), func(string, []byte) { events++ })
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
