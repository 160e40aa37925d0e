package marathon

import (
	"bytes"
	"context"
	"testing"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestSwitchImageAndSlugLeavesNothingStale switches one app from a slug to
// a Docker image and back. Marathon's PUT merges unless partialUpdate=false
// (apps.raml), so without a full replacement the image app kept the slug's
// fetch and cmd, and the slug app then kept container DOCKER redis:7.
func TestSwitchImageAndSlugLeavesNothingStale(t *testing.T) {
	f := newFake(t, marathontest.Options{})
	s := newSched(t, Config{URLs: []string{f.URL}})
	ctx := context.Background()
	image := func(release string) deploy.Spec {
		sp := testSpec("hello", release, 1)
		sp.SlugURL, sp.Command, sp.Image = "", "", "redis:7"
		return sp
	}
	for _, step := range []struct {
		spec      deploy.Spec
		want      []string
		gone      []string
		wantImage string
	}{
		{spec: testSpec("hello", "v1", 1), want: []string{"fetch", "cmd"}, gone: []string{"container"}},
		{spec: image("v2"), want: []string{"container"}, gone: []string{"fetch", "cmd"}, wantImage: "redis:7"},
		{spec: testSpec("hello", "v3", 1), want: []string{"fetch", "cmd"}, gone: []string{"container"}},
		{spec: image("v4"), want: []string{"container"}, gone: []string{"fetch", "cmd"}, wantImage: "redis:7"},
	} {
		var log bytes.Buffer
		if err := s.Deploy(ctx, step.spec, &log); err != nil {
			t.Fatalf("Deploy %s: %v\n%s", step.spec.Release, err, &log)
		}
		app := f.App("/flock/hello/web")
		for _, k := range step.want {
			if _, ok := app[k]; !ok {
				t.Errorf("after %s: no %q in %v", step.spec.Release, k, app)
			}
		}
		for _, k := range step.gone {
			if v, ok := app[k]; ok {
				t.Errorf("after %s: stale %q = %v", step.spec.Release, k, v)
			}
		}
		if step.wantImage != "" {
			c, _ := app["container"].(map[string]any)
			d, _ := c["docker"].(map[string]any)
			if d["image"] != step.wantImage {
				t.Errorf("after %s: container %v, want image %s", step.spec.Release, c, step.wantImage)
			}
		}
	}
	for _, r := range requests(f, "PUT", "/v2/apps/flock/hello/web") {
		if query(r).Get("partialUpdate") != "false" {
			t.Errorf("deploy PUT ?%s: want partialUpdate=false", r.Query)
		}
	}
}
