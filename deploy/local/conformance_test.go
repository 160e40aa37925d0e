package local

import (
	"os"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/schedtest"
)

// TestSchedulerContract runs the deploy.Scheduler conformance suite on
// the embedded scheduler: real processes, each case on a Dir of its own;
// a restart is a Detach and a new Scheduler on the same Dir.
func TestSchedulerContract(t *testing.T) {
	schedtest.Run(t, func(t *testing.T) *schedtest.Harness {
		dir := t.TempDir()
		return &schedtest.Harness{
			Start: func(t *testing.T, d deploy.Drainer) (deploy.Scheduler, func()) {
				s, err := New(Config{Dir: dir, StopGrace: 2 * time.Second, Logger: quietLogger(), Unpack: untar, Drainer: d})
				if err != nil {
					t.Fatal(err)
				}
				// backoffMin keeps its default: on a restart New has
				// already started supervising the adopted instances,
				// which read it, so setting it now would race them.
				stop := schedtest.RunUntilStopped(t, s)
				return s, func() { s.Detach(); stop() }
			},
			Ship: func(_ *testing.T, spec *deploy.Spec, slug string) { spec.SlugPath = slug },
			Bin:  os.Getenv("FLOCK_TEST_APP_BIN"), // see runTests: a copy the apps' uids may run
		}
	})
}
