package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestDockerImageApp compares a Docker-image app with the ones the
// original Flock posted.
func TestDockerImageApp(t *testing.T) {
	for _, name := range []string{"flock-apps-docker-app-definition.json", "flock-apps-redis-app-definition.json"} {
		t.Run(name, func(t *testing.T) {
			var orig struct {
				Container struct {
					Type   string
					Docker struct{ Image string }
				}
				ID        string
				Instances int
				CPUs      float64
				Mem       int
				Cmd       string
				Ports     []int
			}
			if err := json.Unmarshal(fixture(t, "original-flock/"+name), &orig); err != nil {
				t.Fatal(err)
			}
			f := newFake(t, marathontest.Options{})
			s := newSched(t, Config{URLs: []string{f.URL}})
			spec := deploy.Spec{App: orig.ID, Release: "v1", Image: orig.Container.Docker.Image, Command: orig.Cmd,
				Instances:  orig.Instances,
				Descriptor: deploy.Descriptor{CPUs: orig.CPUs, Mem: orig.Mem, Ports: len(orig.Ports)}}
			// No agent runs Docker in the fake with tasks: only the definition matters.
			_ = s.Deploy(context.Background(), spec, &bytes.Buffer{})
			sent := lastBody(t, f, "POST", "/v2/apps")
			c := sent["container"].(map[string]any)
			if c["type"] != orig.Container.Type || c["docker"].(map[string]any)["image"] != orig.Container.Docker.Image {
				t.Errorf("container = %v, want %s %s", c, orig.Container.Type, orig.Container.Docker.Image)
			}
			if sent["cmd"] != orig.Cmd || sent["instances"] != float64(orig.Instances) ||
				sent["cpus"] != orig.CPUs || sent["mem"] != float64(orig.Mem) {
				t.Errorf("cmd/instances/cpus/mem = %v %v %v %v", sent["cmd"], sent["instances"], sent["cpus"], sent["mem"])
			}
			if _, ok := sent["fetch"]; ok {
				t.Errorf("a Docker app fetches %v; want nothing", sent["fetch"])
			}
			pd := sent["portDefinitions"].([]any)
			if len(pd) != len(orig.Ports) || pd[0].(map[string]any)["port"] != 0.0 {
				t.Errorf("portDefinitions %v, want one per original port %v (0 = any)", pd, orig.Ports)
			}
		})
	}
}

// TestDeployRejectsBadSpecs before anything reaches Marathon.
func TestDeployRejectsBadSpecs(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	good := testSpec("hello", "v1", 1)
	tests := []struct {
		name string
		edit func(*deploy.Spec)
	}{
		{"bad name", func(s *deploy.Spec) { s.App = "../etc" }},
		{"no slug", func(s *deploy.Spec) { s.SlugURL = "" }},
		{"no command", func(s *deploy.Spec) { s.Command = "" }},
		{"negative", func(s *deploy.Spec) { s.Instances = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good
			tt.edit(&spec)
			if err := s.Deploy(context.Background(), spec, &bytes.Buffer{}); !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("Deploy = %v, want ErrInvalid", err)
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests reached Marathon", n)
	}
	if err := s.Scale(context.Background(), "a b", 1); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("Scale with a bad name = %v", err)
	}
}
