package marathontest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtures are the real Marathon documents the marathon package's tests use too.
const fixtures = "../testdata/marathon"

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func do(t *testing.T, method, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestSeededAppsServedAsIs: a seeded foreign app keeps its env secret and
// the label selector filters as Marathon's does.
func TestSeededAppsServedAsIs(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	if err := s.SeedApps(fixture(t, "v2_app_definition_post_request_and_response.json")); err != nil {
		t.Fatal(err)
	}
	var all struct{ Apps []map[string]any }
	getJSON(t, s.URL+"/v2/apps?embed=apps.tasks", &all)
	if len(all.Apps) != 1 || all.Apps[0]["env"].(map[string]any)["PASSWORD"].(map[string]any)["secret"] != "/db/password" {
		t.Errorf("apps = %v", all.Apps)
	}
	tests := []struct {
		selector string
		n        int
	}{
		{"owner==zeus", 1}, {"owner==hera", 0}, {"owner", 1}, {"FLOCK_MANAGED==true", 0}, {"owner!=zeus", 0},
	}
	for _, tt := range tests {
		var got struct{ Apps []any }
		getJSON(t, s.URL+"/v2/apps?label="+tt.selector, &got)
		if len(got.Apps) != tt.n {
			t.Errorf("label=%s: %d apps, want %d", tt.selector, len(got.Apps), tt.n)
		}
	}
}

// TestFailures: Fail answers a status n times; SetDown drops connections.
func TestFailures(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Fail("GET", "/v2/info", 503, 1)
	if r := do(t, "GET", s.URL+"/v2/info", ""); r.StatusCode != 503 {
		t.Errorf("first GET: %d", r.StatusCode)
	}
	if r := do(t, "GET", s.URL+"/v2/info", ""); r.StatusCode != 200 {
		t.Errorf("second GET: %d", r.StatusCode)
	}
	s.SetDown(true)
	if _, err := http.Get(s.URL + "/ping"); err == nil {
		t.Error("a down server answered")
	}
	s.SetDown(false)
	if r := do(t, "GET", s.URL+"/ping", ""); r.StatusCode != 200 {
		t.Errorf("back up: %d", r.StatusCode)
	}
	if n := len(s.Requests()); n != 4 {
		t.Errorf("%d requests recorded, want 4", n)
	}
}

// TestDeploymentLifecycle: POST creates tasks and a deployment that ends;
// a PUT while one runs is refused with 409; the stream reports it all.
func TestDeploymentLifecycle(t *testing.T) {
	// The deployment lasts at least Settle: the PUT must come within it,
	// on a machine that may be busy.
	s := New(Options{Settle: time.Second})
	defer s.Close()
	resp, err := http.Get(s.URL + "/v2/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- name
			}
		}
		close(events)
	}()
	if r := do(t, "POST", s.URL+"/v2/apps", `{"id":"/a","cmd":"x","instances":2,"healthChecks":[{"protocol":"TCP"}]}`); r.StatusCode != 201 {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	if r := do(t, "PUT", s.URL+"/v2/apps/a", `{"instances":3}`); r.StatusCode != 409 {
		t.Errorf("PUT during a deployment: %d, want 409", r.StatusCode)
	}
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for !seen["deployment_success"] {
		select {
		case e := <-events:
			seen[e] = true
		case <-deadline:
			t.Fatalf("events seen: %v", seen)
		}
	}
	for _, e := range []string{"event_stream_attached", "api_post_event", "deployment_info", "status_update_event", "health_status_changed_event"} {
		if !seen[e] {
			t.Errorf("no %s", e)
		}
	}
	var tasks struct{ Tasks []map[string]any }
	getJSON(t, s.URL+"/v2/apps/a/tasks", &tasks)
	if len(tasks.Tasks) != 2 || tasks.Tasks[0]["state"] != "TASK_RUNNING" {
		t.Errorf("tasks = %v", tasks.Tasks)
	}
	s.DropStreams()
	for range events {
	}
}

// TestUntarRefusesEscapes: a slug cannot write outside its sandbox.
func TestUntarRefusesEscapes(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	io.WriteString(tw, "x")
	tw.Close()
	gz.Close()
	dir := t.TempDir()
	if err := untar(&buf, filepath.Join(dir, "sandbox")); err == nil {
		t.Error("untar accepted ../evil")
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
		t.Error("../evil was written")
	}
}
