package marathon

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestPlacementDefinition deploys apps with the descriptor's placement
// keys and checks the app definitions Marathon receives: Marathon's own
// Docker registry example (BRIDGE, a port mapping, forcePullImage), and
// a slug app spread one instance per host.
func TestPlacementDefinition(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	run(t, s)

	reg := testSpec("registry", "v1", 2)
	reg.Image, reg.Command, reg.SlugURL = "registry:2", "", ""
	reg.Descriptor.Image, reg.Descriptor.Ports = "registry:2", 1
	reg.Descriptor.Network, reg.Descriptor.ForcePullImage = deploy.NetworkBridge, true
	reg.Descriptor.PortMappings = []deploy.PortMapping{{ContainerPort: 5000, Protocol: "tcp"}}
	reg.Descriptor.Constraints = [][]string{{"hostname", "UNIQUE"}}
	if err := s.Deploy(context.Background(), reg, &bytes.Buffer{}); err != nil {
		t.Fatalf("Deploy registry: %v", err)
	}
	sent := lastBody(t, f, "POST", "/v2/apps")
	want := map[string]any{
		"type": "DOCKER",
		"docker": map[string]any{"image": "registry:2", "network": "BRIDGE", "forcePullImage": true,
			"portMappings": []any{map[string]any{"containerPort": 5000.0, "hostPort": 0.0, "protocol": "tcp"}}},
	}
	if diff := cmp.Diff(want, sent["container"]); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}
	if pd, ok := sent["portDefinitions"].([]any); !ok || len(pd) != 0 {
		t.Errorf("portDefinitions = %v, want [] beside BRIDGE port mappings", sent["portDefinitions"])
	}
	if diff := cmp.Diff([]any{[]any{"hostname", "UNIQUE"}}, sent["constraints"]); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	ins, err := s.Instances(context.Background(), "registry")
	if err != nil || len(ins) != 2 {
		t.Fatalf("Instances = %v, %v; want 2", ins, err)
	}
	for _, in := range ins {
		if in.Port == 0 || len(in.Ports) != 1 {
			t.Errorf("instance %s has ports %v, want the one host port of its mapping", in.ID, in.Ports)
		}
	}

	web := testSpec("web", "v1", 1)
	web.Descriptor.Constraints = [][]string{{"rack_id", "GROUP_BY", "3"}, {"@zone", "MAX_PER", "2"}}
	if err := s.Deploy(context.Background(), web, &bytes.Buffer{}); err != nil {
		t.Fatalf("Deploy web: %v", err)
	}
	sent = lastBody(t, f, "POST", "/v2/apps")
	if diff := cmp.Diff([]any{[]any{"rack_id", "GROUP_BY", "3"}, []any{"@zone", "MAX_PER", "2"}}, sent["constraints"]); diff != "" {
		t.Errorf("constraints (-want +got):\n%s", diff)
	}
	if _, ok := sent["container"]; ok {
		t.Errorf("a slug app sent container %v", sent["container"])
	}
}

// TestPlacementRefusedByMarathon checks the stand-in refuses what Marathon
// refuses, so the definitions above are not accepted by a lenient fake.
func TestPlacementRefusedByMarathon(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	for _, tt := range []struct{ name, body, want string }{
		{"unknown operator", `{"id":"/a","cmd":"x","constraints":[["hostname","UNIQUE_PER"]]}`, "Constraint operator must be one of"},
		{"one-field constraint", `{"id":"/a","cmd":"x","constraints":[["hostname"]]}`, "either 2 or 3 fields"},
		{"bridge with portDefinitions", `{"id":"/a","container":{"type":"DOCKER","docker":{"image":"r:2","network":"BRIDGE",
			"portMappings":[{"containerPort":80}]}},"portDefinitions":[{"port":0}]}`, "Port definitions must be empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(f.URL+"/v2/apps", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			if resp.StatusCode != 422 || !strings.Contains(b.String(), tt.want) {
				t.Errorf("POST = %d %s, want 422 with %q", resp.StatusCode, b.String(), tt.want)
			}
		})
	}
}
