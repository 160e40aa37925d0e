package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
)

// TestStabilityWindow: a release whose instances pass their first check
// and then exit (an app that listens for 150 ms, as a Next.js app without
// its build does) fails its deploy, says why with the app's own error,
// and the running release keeps serving; a healthy release is live only
// once its instances have stayed up for the window.
func TestStabilityWindow(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	window := 1
	v1 := appSpec("web", "v1", 1)
	v1.Descriptor.StableSeconds = &window
	if err := s.Deploy(ctx, v1, nil); err != nil {
		t.Fatal(err)
	}
	for _, in := range instances(t, s, "web") {
		if up := time.Since(in.StartedAt); up < time.Second {
			t.Errorf("v1 went live after %s up, less than its 1s window", up)
		}
	}
	old := instances(t, s, "web")

	v2 := appSpec("web", "v2", 1, "APP_MODE", "flap")
	v2.Descriptor.StableSeconds = &window
	var log testkit.Buffer
	err := s.Deploy(ctx, v2, &log)
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy of a release that exits after its first check = %v, want ErrUnhealthy\n%s", err, log.String())
	}
	for _, want := range []string{"after passing its check", "must stay up 1s", "Error: boom: missing DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	now := instances(t, s, "web")
	if len(now) != 1 || now[0].ID != old[0].ID || now[0].Release != "v1" {
		t.Errorf("instances after the failed deploy: %+v, want v1's %s still running", now, old[0].ID)
	}
}
