package marathon

import (
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestDefinitionTakesTheDescriptorsCheck: the Marathon health check is the
// descriptor's check as parsed (deploy.Check.Normalized owns the
// defaults): an explicit "gracePeriodSeconds": 0 stays 0 (it was 30 here
// while the embedded scheduler kept 0), a path with parentheses stays an
// HTTP check, and a worker without ports gets no check.
func TestDefinitionTakesTheDescriptorsCheck(t *testing.T) {
	d, err := deploy.ParseDescriptor("package.json", []byte(`{"name":"a","flock":{"checks":[{"path":"/health(deep)","gracePeriodSeconds":0,"intervalSeconds":3}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := &Scheduler{cfg: Config{Group: "/flock"}}
	app := s.definition(deploy.Spec{App: "a", Release: "v1", Command: "node s.js", Instances: 1, Descriptor: d})
	hcs := *app.HealthChecks
	if len(hcs) != 1 {
		t.Fatalf("health checks: %+v", hcs)
	}
	hc := hcs[0]
	if hc.GracePeriodSeconds != 0 || hc.IntervalSeconds != 3 || hc.TimeoutSeconds != 3 || hc.Protocol != "HTTP" || hc.Path == nil || *hc.Path != "/health(deep)" {
		t.Errorf("health check %+v (path %v), want HTTP /health(deep), grace 0, interval 3, timeout 3", hc, hc.Path)
	}
	worker := d
	worker.Ports, worker.Checks = 0, nil
	app = s.definition(deploy.Spec{App: "a--worker", Release: "v1", Command: "node w.js", Instances: 1, Descriptor: worker})
	if n := len(*app.HealthChecks); n != 0 {
		t.Errorf("a worker without ports got %d health checks", n)
	}
}
