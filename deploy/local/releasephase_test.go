package local

import (
	"context"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestRunRelease: the release command runs once in the release's folder
// and environment, its output reaches the log line by line, and a failing
// one is an error with its exit status and its first error line.
func TestRunRelease(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	spec := appSpec("web", "v1", 1)

	var log testkit.Buffer
	if err := s.RunRelease(ctx, spec, `echo "migrating $FLOCK_APP $FLOCK_RELEASE in $(basename "$PWD")"; echo "GREETING=$GREETING"`, &log); err != nil {
		t.Fatalf("RunRelease: %v\n%s", err, log.String())
	}
	for _, want := range []string{"release: migrating web v1 in v1", "release: GREETING=hi there"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	if got := instances(t, s, "web"); len(got) != 0 {
		t.Errorf("the release phase started instances: %+v", got)
	}

	log = testkit.Buffer{}
	err := s.RunRelease(ctx, spec, `echo "Error: migration 42 failed: relation exists" >&2; echo cleanup; exit 3`, &log)
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "Error: migration 42 failed") {
		t.Errorf("failing release command: %v\n%s", err, log.String())
	}

	// A command that leaves a child behind still ends, and the child with it.
	log = testkit.Buffer{}
	if err := s.RunRelease(ctx, spec, `sleep 300 & echo started a child`, &log); err != nil {
		t.Errorf("release command leaving a child: %v\n%s", err, log.String())
	}
}
