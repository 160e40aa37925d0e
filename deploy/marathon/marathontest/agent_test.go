package marathontest

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestAgentEndpoints runs a task and reads its sandbox through the agent
// stand-in as a Mesos agent answers (src/files/files.cpp, the agent's
// /state).
func TestAgentEndpoints(t *testing.T) {
	s := New(Options{RunTasks: true})
	defer s.Close()
	a := s.Agent()
	if a2 := s.Agent(); a2 != a || a.Port == 0 {
		t.Fatalf("Agent() = %p port %d, then %p", a, a.Port, a2)
	}
	if r := do(t, "POST", s.URL+"/v2/apps", `{"id":"/logs","cmd":"echo out; echo err >&2; sleep 60","instances":1}`); r.StatusCode != 201 {
		t.Fatalf("POST /v2/apps: %d", r.StatusCode)
	}

	var dir, task string
	testkit.WaitFor(t, 10*time.Second, "the task's executor in /state", func() bool {
		var st struct {
			Frameworks []struct {
				Name      string
				Executors []struct {
					ID, Directory string
					Tasks         []struct{ ID string }
				}
			}
		}
		getJSON(t, a.URL+"/state", &st)
		if len(st.Frameworks) != 1 || st.Frameworks[0].Name != "marathon" || len(st.Frameworks[0].Executors) != 1 {
			return false
		}
		e := st.Frameworks[0].Executors[0]
		dir, task = e.Directory, e.ID
		return len(e.Tasks) == 1 && e.Tasks[0].ID == e.ID
	})
	if !strings.HasPrefix(task, "logs.") {
		t.Errorf("executor id %q, want the task's id", task)
	}

	read := func(q url.Values) (int, map[string]any) {
		var v map[string]any
		return getJSON(t, a.URL+"/files/read?"+q.Encode(), &v), v
	}
	testkit.WaitFor(t, 10*time.Second, "stdout written", func() bool {
		_, v := read(url.Values{"path": {dir + "/stdout"}})
		return v["offset"] == 4.0 // offset -1 by default: the size
	})
	for _, tt := range []struct {
		name   string
		q      url.Values
		status int
		offset float64
		data   string
	}{
		{"whole file", url.Values{"path": {dir + "/stdout"}, "offset": {"0"}}, 200, 0, "out\n"},
		{"a slice", url.Values{"path": {dir + "/stdout"}, "offset": {"1"}, "length": {"2"}}, 200, 1, "ut"},
		{"size", url.Values{"path": {dir + "/stderr"}, "offset": {"-1"}}, 200, 4, ""},
		{"past the end answers the size", url.Values{"path": {dir + "/stdout"}, "offset": {"100"}}, 200, 4, ""},
		{"a directory", url.Values{"path": {dir}, "offset": {"0"}}, 400, 0, ""},
		{"bad offset", url.Values{"path": {dir + "/stdout"}, "offset": {"x"}}, 400, 0, ""},
		{"outside the sandboxes", url.Values{"path": {"/etc/passwd"}, "offset": {"0"}}, 404, 0, ""},
		{"escaping with ..", url.Values{"path": {dir + "/../../etc/passwd"}}, 404, 0, ""},
		{"no path", url.Values{}, 400, 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, v := read(tt.q)
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
			if status == 200 && (v["offset"] != tt.offset || v["data"] != tt.data) {
				t.Errorf("read = %v, want offset %v data %q", v, tt.offset, tt.data)
			}
		})
	}

	var list []struct {
		Path string
		Size float64
		Mode string
	}
	if st := getJSON(t, a.URL+"/files/browse?path="+url.QueryEscape(dir), &list); st != 200 || len(list) != 2 ||
		list[0].Path != dir+"/stderr" || list[1].Path != dir+"/stdout" || list[1].Size != 4 || !strings.HasPrefix(list[1].Mode, "-rw") {
		t.Errorf("browse = %d %+v, want stderr and stdout, sorted", st, list)
	}
	if st := getJSON(t, a.URL+"/files/browse?path=/tmp", &list); st != 404 {
		t.Errorf("browse /tmp = %d, want 404", st)
	}
}
