package marathon

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/schedtest"
)

// TestMain lets the test binary be the app the fake Marathon runs for the
// conformance suite (schedtest.ServeIfApp).
func TestMain(m *testing.M) {
	schedtest.ServeIfApp()
	os.Exit(m.Run())
}

// TestSchedulerContract runs the deploy.Scheduler conformance suite on
// the Marathon scheduler against marathontest running real tasks: the
// slugs are served over HTTP as Flock's artifact store serves them, and a
// restart is a new Scheduler on the same Marathon.
func TestSchedulerContract(t *testing.T) {
	schedtest.Run(t, func(t *testing.T) *schedtest.Harness {
		f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
		var mu sync.Mutex
		slugs := map[string]string{} // URL path → slug file
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			slug, ok := slugs[r.URL.Path]
			mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			http.ServeFile(w, r, slug)
		}))
		t.Cleanup(srv.Close)
		return &schedtest.Harness{
			Start: func(t *testing.T, d deploy.Drainer) (deploy.Scheduler, func()) {
				// DeployTimeout: how long an unhealthy release takes to fail.
				// AgentPort: Logs reads the tasks' sandboxes from
				// marathontest's Mesos agent, on the tasks' host.
				s := newSched(t, Config{URLs: []string{f.URL}, Drainer: d, DeployTimeout: 6 * time.Second,
					AgentPort: f.Agent().Port})
				stop := schedtest.RunUntilStopped(t, s)
				return s, stop
			},
			Ship: func(_ *testing.T, spec *deploy.Spec, slug string) {
				path := "/artifacts/" + spec.App + "/" + filepath.Base(slug)
				mu.Lock()
				slugs[path] = slug
				mu.Unlock()
				// One URL per release, as Flock's: its signature changes
				// once a signing period at most (cmd/flock/artifacts.go).
				spec.SlugURL = srv.URL + path
			},
			Gaps: map[string]string{
				"NewReleaseDrainsTheOld": "Marathon kills the old release's tasks itself once the new ones are healthy " +
					"(upgradeStrategy); Flock's Drainer never hears of them",
			},
		}
	})
}
