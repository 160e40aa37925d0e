package marathon

import (
	"strconv"
	"strings"

	gomarathon "github.com/gambol99/go-marathon"

	"github.com/flock-paas/flock/deploy"
)

// The labels Flock puts on its Marathon apps. FLOCK_MANAGED is the selector
// of every list; FLOCK_AWAKE_INSTANCES remembers how many instances a
// sleeping app had, so that a restarted Flock can wake it to the same count.
const (
	managedLabel = "FLOCK_MANAGED"
	appLabel     = "FLOCK_APP"
	releaseLabel = "FLOCK_RELEASE"
	versionLabel = "FLOCK_VERSION"
	commitLabel  = "FLOCK_COMMIT"
	awakeLabel   = "FLOCK_AWAKE_INSTANCES"
)

// taskKillGrace is how long Marathon waits between SIGTERM and SIGKILL:
// in-flight requests finish while the router drops the task.
const taskKillGrace = 30

// appID is the Marathon id of a Flock app: <group>/<app>.
func (s *Scheduler) appID(app string) string {
	return strings.TrimSuffix(s.cfg.Group, "/") + "/" + app
}

// appName is the inverse of appID; ok is false for apps outside the group
// or in a subgroup of it.
func (s *Scheduler) appName(id string) (string, bool) {
	prefix := strings.TrimSuffix(s.cfg.Group, "/") + "/"
	if !strings.HasPrefix(id, prefix) {
		return "", false
	}
	name := id[len(prefix):]
	return name, deploy.ValidName(name)
}

// definition builds the Marathon app of one release. The fields are those
// of Marathon's documented app definition (see docs/marathon.md): fetch
// (which replaced uris in Marathon 0.15) extracts the slug into the
// sandbox, where cmd runs; HTTP/TCP health checks are run by Marathon
// itself, so their results appear in the tasks Flock lists on every
// Marathon version.
func (s *Scheduler) definition(spec deploy.Spec) *gomarathon.Application {
	d := spec.Descriptor
	app := &gomarathon.Application{ID: s.appID(spec.App)}
	cmd := spec.Command
	app.Cmd = &cmd
	app.CPUs = d.CPUs
	mem := float64(d.Mem)
	app.Mem = &mem
	n := spec.Instances
	app.Instances = &n
	app.Dependencies = []string{}

	ports := max(d.Ports, 1)
	defs := make([]gomarathon.PortDefinition, ports)
	for i := range defs {
		defs[i] = gomarathon.PortDefinition{Protocol: "tcp", Name: "port" + strconv.Itoa(i)}.SetPort(0)
	}
	app.PortDefinitions = &defs

	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	env["FLOCK_APP"], env["FLOCK_PROCESS"] = spec.App, "web"
	if app, typ, ok := deploy.ParentApp(spec.App); ok { // a worker of app
		env["FLOCK_APP"], env["FLOCK_PROCESS"] = app, typ
	}
	env["FLOCK_RELEASE"] = spec.Release
	app.Env = &env

	checks := []gomarathon.HealthCheck{}
	if d.Ports > 0 || len(d.Checks) > 0 { // a process with no port (a worker) is judged by staying up
		mesos := s.mesosChecks()
		for i, c := range d.EffectiveChecks() {
			// Marathon allows one Mesos check per app
			// (AppValidation: "at most one Mesos health check").
			checks = append(checks, healthCheck(c, ports, mesos && i == 0))
		}
	}
	app.HealthChecks = &checks

	one := 1.0
	app.UpgradeStrategy = &gomarathon.UpgradeStrategy{MinimumHealthCapacity: &one, MaximumOverCapacity: &one}
	grace := float64(taskKillGrace)
	app.TaskKillGracePeriodSeconds = &grace

	awake := spec.Instances
	if awake == 0 {
		awake = max(d.Instances, 1)
	}
	app.Labels = &map[string]string{
		managedLabel: "true",
		appLabel:     spec.App,
		releaseLabel: spec.Release,
		versionLabel: strings.TrimPrefix(spec.Release, "v"),
		commitLabel:  spec.Commit,
		awakeLabel:   strconv.Itoa(awake),
	}

	if spec.Image != "" {
		// As the original Flock's Docker apps: host networking, the ports
		// come from portDefinitions as $PORT0…, nothing to fetch.
		app.Container = &gomarathon.Container{
			Type:   "DOCKER",
			Docker: &gomarathon.Docker{Image: spec.Image, Network: "HOST"},
		}
		if spec.Command == "" {
			app.Cmd = nil
		}
		place(app, d)
		return app
	}
	app.Fetch = &[]gomarathon.Fetch{{URI: spec.SlugURL, Extract: true}}
	place(app, d)
	return app
}

// healthCheck translates a descriptor check: HTTP with a path, else TCP;
// always on port index 0 unless the check names another existing port.
// With mesos it is the Mesos-run kind (MESOS_HTTP, MESOS_TCP): the
// executor on the agent checks its task, where Marathon's own kind is
// deprecated since 1.4 and throttled in 1.8. The values are the
// descriptor's, from EffectiveChecks, never defaults of Marathon's.
func healthCheck(c deploy.Check, ports int, mesos bool) gomarathon.HealthCheck {
	c = c.Normalized() // the descriptor's defaults; an explicit grace of 0 stays 0
	hc := gomarathon.HealthCheck{
		Protocol:           "TCP",
		GracePeriodSeconds: c.GracePeriodSeconds,
		IntervalSeconds:    c.IntervalSeconds,
		TimeoutSeconds:     c.TimeoutSeconds,
	}
	idx := 0
	if c.PortIndex > 0 && c.PortIndex < ports {
		idx = c.PortIndex
	}
	hc = hc.SetPortIndex(idx).SetMaxConsecutiveFailures(c.MaxConsecutiveFailures)
	if c.Path != "" {
		hc.Protocol = "HTTP"
		hc = hc.SetPath(c.Path)
	}
	if mesos {
		hc.Protocol = "MESOS_" + hc.Protocol
	}
	return hc
}

// resigned is a's fetch list with freshly signed slug URLs, or nil when
// Config.Resign is unset or changes none of them (then nothing is sent:
// a fetch change is a config change).
func (s *Scheduler) resigned(a mApp) *[]gomarathon.Fetch {
	if s.cfg.Resign == nil {
		return nil
	}
	changed := false
	out := make([]gomarathon.Fetch, len(a.Fetch))
	for i, f := range a.Fetch {
		out[i] = gomarathon.Fetch{URI: s.cfg.Resign(f.URI), Executable: f.Executable, Extract: f.Extract, Cache: f.Cache}
		changed = changed || out[i].URI != f.URI
	}
	if !changed {
		return nil
	}
	return &out
}

// scaleDefinition is the partial update that scales an app. Labels are
// sent only when they change: a label change is a config change, and
// Marathon restarts the running tasks for it.
func (s *Scheduler) scaleDefinition(app string, n int, labels map[string]string) *gomarathon.Application {
	def := &gomarathon.Application{ID: s.appID(app), Instances: &n}
	if labels != nil {
		def.Labels = &labels
	}
	return def
}
