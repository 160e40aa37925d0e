package marathon

import (
	"context"
	"errors"
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

// Marathon ids. Each process type of an app is a Marathon app in the
// app's group: <Group>/<app>/web, <Group>/<app>/worker, so that Marathon
// shows an app's processes together and a destroy deletes one group. Apps
// deployed before process types had groups are flat: the web process is
// <Group>/<app> and a type <Group>/<app>--<type>. Marathon refuses an id
// that is an app and a group at once (RootGroup validation, "Groups and
// Applications may not have the same identifier"), so a flat app cannot
// move into its group without deleting its web app first: it is adopted
// and keeps the flat layout until it is destroyed (docs/marathon.md).

// base is the group of Flock's apps without a trailing slash.
func (s *Scheduler) base() string { return strings.TrimSuffix(s.cfg.Group, "/") }

// groupID is the Marathon group of app's process types; in the flat
// layout it is the id of its web app.
func (s *Scheduler) groupID(app string) string { return s.base() + "/" + app }

// appID is the Marathon id of a scheduler app name (an app, or one of its
// process types named by deploy.ProcessApp), in the layout the app has.
func (s *Scheduler) appID(name string) string {
	app, typ, ok := deploy.ParentApp(name)
	if !ok {
		app, typ = name, "web"
	}
	s.mu.Lock()
	flat := s.flat[app] || isBridge(name)
	s.mu.Unlock()
	if flat {
		return s.base() + "/" + name
	}
	return s.groupID(app) + "/" + typ
}

// appName is the inverse of appID: the scheduler app name of a Marathon
// id, and whether the id is in the flat layout; ok is false for ids
// outside Flock's group or deeper in it.
func (s *Scheduler) appName(id string) (name string, flat, ok bool) {
	prefix := s.base() + "/"
	if !strings.HasPrefix(id, prefix) {
		return "", false, false
	}
	app, typ, grouped := strings.Cut(id[len(prefix):], "/")
	switch {
	case !grouped:
		return app, true, deploy.ValidName(app)
	case strings.Contains(app, "--") || !deploy.ValidName(app) || !deploy.ValidName(typ):
		return "", false, false
	case typ == "web":
		return app, false, true
	}
	return deploy.ProcessApp(app, typ), false, true
}

// parentApp is the app a scheduler app name belongs to.
func parentApp(name string) string {
	if app, _, ok := deploy.ParentApp(name); ok {
		return app
	}
	return name
}

// layout learns whether app's Marathon apps are flat: a managed Marathon
// app at the group's id is a web process deployed before process types
// had groups. Once an app is known (store caches the layout of every app
// read) nothing is asked; an app found in neither layout is asked about
// again next time, as it may yet be created.
func (s *Scheduler) layout(ctx context.Context, name string) error {
	app := parentApp(name)
	s.mu.Lock()
	_, known := s.flat[app]
	s.mu.Unlock()
	if known {
		return nil
	}
	a, err := s.api.App(ctx, s.groupID(app))
	if errors.Is(err, errNotFound) || (err == nil && a.Labels[managedLabel] != "true") {
		return nil
	}
	if err != nil {
		return err
	}
	s.setFlat(app, true)
	return nil
}

func (s *Scheduler) setFlat(app string, flat bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flat[app] = flat
}

func (s *Scheduler) isFlat(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flat[app]
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
