package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	gomarathon "github.com/gambol99/go-marathon"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// cannedResponse is one entry of go-marathon's fake server table.
type cannedResponse struct {
	URI, Method, Content string
}

// readMethodsYAML reads go-marathon's tests/rest-api/methods.yml: a list of
// "- uri:", "method:", "content: |" entries (block content indented by 4).
// Entries with a contentSequence are skipped.
func readMethodsYAML(t testing.TB, b []byte) []cannedResponse {
	var out []cannedResponse
	var cur *cannedResponse
	inContent := false
	var content strings.Builder
	flush := func() {
		if cur != nil {
			cur.Content = content.String()
			out = append(out, *cur)
		}
		content.Reset()
		inContent = false
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "- uri: "):
			flush()
			cur = &cannedResponse{URI: strings.TrimPrefix(line, "- uri: ")}
		case strings.HasPrefix(line, "  method: "):
			cur.Method = strings.TrimPrefix(line, "  method: ")
		case line == "  content: |":
			inContent = true
		case inContent && (strings.HasPrefix(line, "    ") || strings.TrimSpace(line) == ""):
			content.WriteString(strings.TrimPrefix(line, "    ") + "\n")
		default:
			inContent = false
		}
	}
	flush()
	if len(out) < 40 {
		t.Fatalf("read %d entries from methods.yml; the format changed?", len(out))
	}
	return out
}

// TestGoMarathonTable decodes the app and task documents of go-marathon
// v0.7.1's own fake server with Flock's lenient types, and checks what
// Flock makes of the apps with tasks.
func TestGoMarathonTable(t *testing.T) {
	table := readMethodsYAML(t, fixture(t, "go-marathon-v0.7.1-fake-server-methods.yml"))
	instances := map[string]int{}
	for _, c := range table {
		if c.Method != "GET" || strings.TrimSpace(c.Content) == "" {
			continue
		}
		switch {
		case c.URI == "/v2/apps" || strings.HasPrefix(c.URI, "/v2/apps?") || c.URI == "/marathon/v2/apps":
			if _, err := decodeApps([]byte(c.Content)); err != nil {
				t.Errorf("%s: %v", c.URI, err)
			}
		case strings.HasPrefix(c.URI, "/v2/apps/") && !strings.Contains(c.URI, "/versions") && !strings.HasSuffix(c.URI, "/tasks"):
			a, err := decodeApp([]byte(c.Content))
			if err != nil {
				// fake-app-broken is broken on purpose.
				if !strings.Contains(c.URI, "broken") {
					t.Errorf("%s: %v", c.URI, err)
				}
				continue
			}
			instances[c.URI] = len(a.instances(nil))
		case strings.HasPrefix(c.URI, "/v2/tasks"):
			var doc struct{ Tasks []mTask }
			if err := json.Unmarshal([]byte(c.Content), &doc); err != nil {
				t.Errorf("%s: %v", c.URI, err)
			}
		}
	}
	// fake-app: two started tasks without state (old Marathon), checks
	// alive; no-health-check-results-app: tasks never started.
	if instances["/v2/apps/fake-app"] != 2 || instances["/v2/apps/no-health-check-results-app"] != 0 {
		t.Errorf("instances per app = %v", instances)
	}

	// The deployments and leader documents go through go-marathon itself.
	f := newFake(t, marathontest.Options{})
	for _, c := range table {
		if c.Method == "GET" && (c.URI == "/v2/deployments" || c.URI == "/v2/leader" || c.URI == "/v2/info") {
			f.Static("GET", c.URI, []byte(c.Content))
		}
	}
	cl := newCluster([]string{f.URL}, f2client())
	ds, err := cl.Deployments(context.Background())
	if err != nil || len(ds) != 1 || !slices.Equal(ds[0].AffectedApps, []string{"/test-app-v1"}) && !slices.Equal(ds[0].AffectedApps, []string{"/test"}) {
		t.Errorf("deployments = %+v, %v", ds, err)
	}
	m, _ := cl.client(context.Background(), 0)
	if leader, err := m.Leader(); err != nil || leader != "127.0.0.1:8080" {
		t.Errorf("leader = %q, %v", leader, err)
	}

	// go-marathon's own POST /v2/apps answer decodes as an Application.
	for _, c := range table {
		if c.Method == "POST" && c.URI == "/v2/apps" {
			var a gomarathon.Application
			if err := json.Unmarshal([]byte(c.Content), &a); err != nil || a.ID != "/fake-app" {
				t.Errorf("POST /v2/apps answer: %v %q", err, a.ID)
			}
		}
	}
}

// TestFixtureServerDocuments: the fake answers with the shapes of the
// real documents: info verbatim, deployment results with the same keys,
// and foreign deployments in progress do not confuse a Deploy.
func TestFixtureServerDocuments(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	f.Static("GET", "/v2/info", fixture(t, "v2_info_response.json"))
	if err := f.SeedDeployments(fixture(t, "v2_deployments_response.json")); err != nil {
		t.Fatal(err)
	}
	cl := newCluster([]string{f.URL}, f2client())
	m, _ := cl.client(context.Background(), 0)
	info, err := m.Info()
	if err != nil || info.Version != "1.5.0-SNAPSHOT" || info.Leader != "localhost:8080" {
		t.Errorf("info = %+v, %v", info, err)
	}

	s := newSched(t, Config{URLs: []string{f.URL}})
	if err := s.Deploy(context.Background(), testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatalf("Deploy next to a foreign deployment: %v", err)
	}
	ds, err := cl.Deployments(context.Background())
	if err != nil || len(ds) != 1 || ds[0].ID != "97c136bf-5a28-4821-9d94-480d9fbb01c8" {
		t.Errorf("deployments = %+v, %v; want only the foreign one left", ds, err)
	}

	var want map[string]any
	json.Unmarshal(fixture(t, "v2_deployment_result_response.json"), &want)
	if err := s.Deploy(context.Background(), testSpec("hello", "v2", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	put := requests(f, "PUT", "/v2/apps/flock/hello/web")
	if len(put) != 1 {
		t.Fatalf("PUTs: %d", len(put))
	}
	resp, err := f2client().Post(f.URL+"/v2/tasks/delete?scale=true", "application/json", strings.NewReader(`{"ids":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("the fake's deployment result lacks %q (has %v)", k, got)
		}
	}
}

// TestOriginalDescriptor maps the original Flock's package.json
// descriptor onto the Marathon definition, as the original did.
func TestOriginalDescriptor(t *testing.T) {
	var pkg struct {
		Name  string
		Flock struct {
			Instances int
			CPUs      float64
			Mem       int
			Ports     int
		}
		Checks []deploy.Check
	}
	if err := json.Unmarshal(fixture(t, "original-flock/flock-demo-package-json-with-flock-descriptor.json"), &pkg); err != nil {
		t.Fatal(err)
	}
	s := newSched(t, Config{URLs: []string{"http://m1:8080"}})
	def := s.definition(deploy.Spec{App: pkg.Name, Release: "v1", Command: "npm start", SlugURL: "http://a/s.tar.gz",
		Instances: pkg.Flock.Instances,
		Descriptor: deploy.Descriptor{Instances: pkg.Flock.Instances, CPUs: pkg.Flock.CPUs, Mem: pkg.Flock.Mem,
			Ports: pkg.Flock.Ports, Checks: pkg.Checks}})
	hc := (*def.HealthChecks)[0]
	switch {
	case def.ID != "/flock/flock-demo/web", *def.Instances != 2, def.CPUs != 0.1, *def.Mem != 32, len(*def.PortDefinitions) != 1:
		t.Errorf("definition %s: instances %d cpus %v mem %v ports %d", def.ID, *def.Instances, def.CPUs, *def.Mem, len(*def.PortDefinitions))
	case hc.Protocol != "HTTP" || *hc.Path != "/" || hc.IntervalSeconds != 15 || *hc.MaxConsecutiveFailures != 3 || *hc.PortIndex != 0:
		t.Errorf("health check %+v", hc)
	}
	// No checks at all: a TCP check on the first port.
	def = s.definition(deploy.Spec{App: "x", Release: "v1", Command: "c", SlugURL: "u", Instances: 1, Descriptor: deploy.Descriptor{Ports: 2}})
	if hcs := *def.HealthChecks; len(hcs) != 1 || hcs[0].Protocol != "TCP" || hcs[0].Path != nil || len(*def.PortDefinitions) != 2 {
		t.Errorf("default check %+v", hcs)
	}
}
