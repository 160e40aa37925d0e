package marathontest

import (
	"bufio"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// The tests of this file check that the stand-in behaves as the Marathon
// documents it cites say (server.go's Options, apps.go, engine.go,
// queue.go, events.go).

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	return s
}

func idle(s *Server, id string) func() bool {
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.locked(id) == ""
	}
}

// TestPutMergesUnlessPartialUpdateFalse: apps.raml, partialUpdate.
func TestPutMergesUnlessPartialUpdateFalse(t *testing.T) {
	s := newServer(t, Options{})
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"sleep 9","instances":1,"container":{"type":"DOCKER","docker":{"image":"redis:7"}}}`)
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	do(t, "PUT", s.URL+"/v2/apps/a", `{"fetch":[{"uri":"http://x/s.tar.gz"}]}`)
	if a := s.App("/a"); a["container"] == nil || a["cmd"] != "sleep 9" || a["fetch"] == nil {
		t.Errorf("a plain PUT replaced: %v", a)
	}
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	do(t, "PUT", s.URL+"/v2/apps/a?partialUpdate=false", `{"id":"/a","cmd":"node s.js","fetch":[{"uri":"http://x/s.tar.gz"}]}`)
	a := s.App("/a")
	if a["container"] != nil || a["cmd"] != "node s.js" || a["instances"] != 1.0 {
		t.Errorf("partialUpdate=false kept: %v", a)
	}
}

// TestSameDefinitionKeepsTasks: a full PUT of the definition the app
// already has (null fields as go-marathon sends them) is no config
// change: lastConfigChangeAt stays and so do the tasks (apps.raml,
// AppDefinition.isUpgrade); a changed cmd replaces them.
func TestSameDefinitionKeepsTasks(t *testing.T) {
	s := newServer(t, Options{})
	def := `{"id":"/a","cmd":"sleep 9","instances":2,"ports":null,"labels":{"L":"1"}}`
	do(t, "POST", s.URL+"/v2/apps", def)
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	state := func() (cfgAt, version string, tasks []string) {
		var one struct{ App map[string]any }
		getJSON(t, s.URL+"/v2/apps/a", &one)
		vi, _ := one.App["versionInfo"].(map[string]any)
		ts, _ := one.App["tasks"].([]any)
		for _, x := range ts {
			tasks = append(tasks, x.(map[string]any)["id"].(string))
		}
		sort.Strings(tasks)
		return fmt.Sprint(vi["lastConfigChangeAt"]), fmt.Sprint(one.App["version"]), tasks
	}
	cfg1, v1, tasks1 := state()
	do(t, "PUT", s.URL+"/v2/apps/a?partialUpdate=false", def)
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	cfg2, v2, tasks2 := state()
	if cfg2 != cfg1 || v2 == v1 || fmt.Sprint(tasks2) != fmt.Sprint(tasks1) {
		t.Errorf("the same definition again: config %s → %s, version %s → %s, tasks %v → %v; want a new version, the config and tasks kept",
			cfg1, cfg2, v1, v2, tasks1, tasks2)
	}
	do(t, "PUT", s.URL+"/v2/apps/a?partialUpdate=false", strings.Replace(def, "sleep 9", "sleep 10", 1))
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	testkit.WaitFor(t, 5*time.Second, "the old tasks gone", func() bool { _, _, ts := state(); return len(ts) == 2 })
	cfg3, _, tasks3 := state()
	if cfg3 == cfg2 || slices.ContainsFunc(tasks3, func(id string) bool { return slices.Contains(tasks2, id) }) {
		t.Errorf("a changed cmd: config %s → %s, tasks %v → %v; want a new config and new tasks", cfg2, cfg3, tasks2, tasks3)
	}
}

// TestChangeDuringDeploymentNeedsForce: 409 "App is locked by one or more
// deployments" for PUT and kill-and-scale, unless force=true.
func TestChangeDuringDeploymentNeedsForce(t *testing.T) {
	s := newServer(t, Options{})
	s.SetUnhealthy("/a", true)
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"sleep 9","instances":1,"healthChecks":[{"protocol":"TCP"}]}`)
	if r := do(t, "PUT", s.URL+"/v2/apps/a", `{"instances":2}`); r.StatusCode != 409 {
		t.Errorf("PUT during a deployment: %d, want 409", r.StatusCode)
	}
	var tasks struct{ Tasks []map[string]any }
	testkit.WaitFor(t, 5*time.Second, "a task", func() bool { getJSON(t, s.URL+"/v2/apps/a/tasks", &tasks); return len(tasks.Tasks) > 0 })
	body := `{"ids":["` + tasks.Tasks[0]["id"].(string) + `"]}`
	if r := do(t, "POST", s.URL+"/v2/tasks/delete?scale=true", body); r.StatusCode != 409 {
		t.Errorf("kill and scale during a deployment: %d, want 409", r.StatusCode)
	}
	if r := do(t, "PUT", s.URL+"/v2/apps/a?force=true", `{"instances":0}`); r.StatusCode != 200 {
		t.Errorf("forced PUT: %d", r.StatusCode)
	}
	var ds []map[string]any
	getJSON(t, s.URL+"/v2/deployments", &ds)
	if len(ds) != 1 {
		t.Errorf("deployments after a forced change: %v, want the new one only", ds)
	}
}

// TestTaskLifeCycle: STAGING, RUNNING, a health result only after the
// grace period for a failing task, KILLING on scale-down, then gone.
func TestTaskLifeCycle(t *testing.T) {
	// Staging lasts 1 s and the grace period 1 s (10 Marathon seconds of
	// 100 ms): the test reads each state within it, on a machine that may
	// be busy (at 100 and 200 ms a held-up test read the next state).
	s := newServer(t, Options{Stage: time.Second, Second: 100 * time.Millisecond})
	s.SetUnhealthy("/a", true)
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"sleep 9","instances":1,"taskKillGracePeriodSeconds":10,
		"healthChecks":[{"protocol":"MESOS_TCP","gracePeriodSeconds":10}]}`)
	state := func() (string, bool) {
		var tasks struct{ Tasks []map[string]any }
		getJSON(t, s.URL+"/v2/apps/a/tasks", &tasks)
		if len(tasks.Tasks) == 0 {
			return "", false
		}
		_, hc := tasks.Tasks[0]["healthCheckResults"]
		return tasks.Tasks[0]["state"].(string), hc
	}
	testkit.WaitFor(t, 5*time.Second, "a task", func() bool { st, _ := state(); return st != "" })
	if st, _ := state(); st != "TASK_STAGING" {
		t.Errorf("new task %s, want TASK_STAGING", st)
	}
	testkit.WaitFor(t, 5*time.Second, "TASK_RUNNING", func() bool { st, _ := state(); return st == "TASK_RUNNING" })
	if _, hc := state(); hc {
		t.Error("a failing check reported within the grace period")
	}
	testkit.WaitFor(t, 5*time.Second, "a failed check after the grace period", func() bool { _, hc := state(); return hc })
	do(t, "PUT", s.URL+"/v2/apps/a?force=true", `{"instances":0}`)
	testkit.WaitFor(t, 5*time.Second, "TASK_KILLING", func() bool { st, _ := state(); return st == "TASK_KILLING" })
	testkit.WaitFor(t, 5*time.Second, "the task gone", func() bool { st, _ := state(); return st == "" })
	if r := do(t, "POST", s.URL+"/v2/apps", `{"id":"/b","cmd":"x","healthChecks":[{"protocol":"MESOS_TCP"},{"protocol":"MESOS_HTTP"}]}`); r.StatusCode != 422 {
		t.Errorf("two Mesos checks: %d, want 422", r.StatusCode)
	}
}

// TestLaunchDelay: a failure delays the next launch by backoffSeconds
// (shown in /v2/queue); DELETE /v2/queue/<id>/delay resets it, and 404s
// when there is none.
func TestLaunchDelay(t *testing.T) {
	s := newServer(t, Options{})
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"sleep 9","instances":1,"backoffSeconds":3600}`)
	testkit.WaitFor(t, 5*time.Second, "deployment", idle(s, "/a"))
	if r := do(t, "DELETE", s.URL+"/v2/queue/a/delay", ""); r.StatusCode != 404 {
		t.Errorf("DELETE without a delay: %d, want 404", r.StatusCode)
	}
	s.Crash("/a")
	var q struct {
		Queue []struct {
			Count int
			Delay struct{ TimeLeftSeconds float64 }
		}
	}
	getJSON(t, s.URL+"/v2/queue", &q)
	if len(q.Queue) != 1 || q.Queue[0].Count != 1 || q.Queue[0].Delay.TimeLeftSeconds < 3000 {
		t.Errorf("queue %+v, want /a waiting ~3600 s", q)
	}
	if r := do(t, "DELETE", s.URL+"/v2/queue/a/delay", ""); r.StatusCode != 200 {
		t.Errorf("DELETE delay: %d", r.StatusCode)
	}
	testkit.WaitFor(t, 5*time.Second, "a relaunch", func() bool {
		var tasks struct{ Tasks []map[string]any }
		getJSON(t, s.URL+"/v2/apps/a/tasks", &tasks)
		return len(tasks.Tasks) == 1
	})
}

// TestAuthEnforced: --http_credentials and a DC/OS token.
func TestAuthEnforced(t *testing.T) {
	for _, opts := range []Options{{User: "u", Password: "p"}, {Token: "t"}} {
		s := newServer(t, opts)
		for _, auth := range []string{"", "Basic dTp4", "token=x"} {
			req, _ := http.NewRequest("GET", s.URL+"/v2/apps", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("%+v with %q: %d, want 401", opts, auth, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest("GET", s.URL+"/v2/apps", nil)
		req.SetBasicAuth("u", "p")
		if opts.Token != "" {
			req.Header.Set("Authorization", "token=t")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%+v with the credentials: %v %v", opts, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

// TestStandby: /v2/events redirects to the leader with the query kept;
// the rest is proxied.
func TestStandby(t *testing.T) {
	leader := newServer(t, Options{})
	standby := newServer(t, Options{Leader: leader.URL})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(standby.URL + "/v2/events?event_type=deployment_info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || loc != leader.URL+"/v2/events?event_type=deployment_info" {
		t.Errorf("standby /v2/events: %d %q", resp.StatusCode, loc)
	}
	do(t, "POST", standby.URL+"/v2/apps", `{"id":"/a","cmd":"x"}`)
	if leader.App("/a") == nil {
		t.Error("POST to the standby did not reach the leader")
	}
}

// readEvents opens /v2/events?query and returns a function reading the
// next event's name (skipping heartbeats) and data.
func readEvents(t *testing.T, url string) func() (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	return func() (string, string) {
		var name, data string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && name != "":
				return name, data
			}
		}
	}
}

// TestEventFormats: event_type filters; heavy deployment events before
// 1.7 unless a 1.6 client asks for plan-format=light; heartbeats.
func TestEventFormats(t *testing.T) {
	for _, tt := range []struct {
		version, query string
		heavy          bool
	}{
		{"1.5.0", "plan-format=light", true},
		{"1.6.0", "", true},
		{"1.6.0", "plan-format=light", false},
		{"1.7.0", "", false},
	} {
		s := newServer(t, Options{Version: tt.version, Heartbeat: 10 * time.Millisecond})
		next := readEvents(t, s.URL+"/v2/events?event_type=deployment_info&"+tt.query)
		testkit.WaitFor(t, 5*time.Second, "the stream", func() bool { return s.Streams() == 1 })
		do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"x"}`) // api_post_event (filtered), deployment_info
		name, data := next()
		if name != "deployment_info" {
			t.Errorf("%s ?%s: first event %s, want deployment_info only", tt.version, tt.query, name)
		}
		if heavy := strings.Contains(data, `"original"`); heavy != tt.heavy {
			t.Errorf("%s ?%s: heavy %v, want %v", tt.version, tt.query, heavy, tt.heavy)
		}
	}
}
