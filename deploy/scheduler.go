package deploy

import (
	"context"
	"io"
	"slices"
)

// Spec is what a scheduler needs to run one release of an app.
type Spec struct {
	App       string
	Release   string // release name, "v3"
	Commit    string
	Command   string // start command, run with `sh -c` from the root of the unpacked slug
	SlugPath  string // the slug (.tar.gz) on this machine (embedded scheduler)
	SlugURL   string // the slug's URL under --artifact-url (Marathon)
	Image     string // a Docker image instead of a slug (Marathon only)
	Instances int
	// Env is the descriptor's env; schedulers add PORT, PORTn, HOST,
	// FLOCK_APP and FLOCK_RELEASE themselves.
	Env        map[string]string
	Descriptor Descriptor // ports, checks, cpus, mem
}

// ReleaseRunner is a Scheduler that can run a release's release phase:
// the Procfile's "release:" command, once, in the release's slug and
// environment, before any instance of the release starts (as Heroku's
// release phase). The embedded scheduler is one; a Service over another
// fails the deploy of a release that has a release command.
type ReleaseRunner interface {
	// RunRelease runs command for spec's release and returns when it
	// ended; its output goes to log. A command that exits non-zero, or
	// does not end before ctx, is an error naming its exit status.
	RunRelease(ctx context.Context, spec Spec, command string, log io.Writer) error
}

// Scheduler runs instances of releases: the embedded one (deploy/local) on
// this machine, or Marathon (deploy/marathon).
type Scheduler interface {
	// Run supervises until ctx ends, then returns; on return no instance
	// started by the embedded scheduler is left running.
	Run(ctx context.Context) error

	// Deploy runs spec's release with spec.Instances instances and waits
	// until they pass their checks; then it retires the instances of every
	// other release of the app (drained first). If they never pass, it stops
	// the new instances, leaves the old release serving and returns an error
	// wrapping ErrUnhealthy. Progress is written to log, a line at a time.
	// spec.Instances == 0 records the release without starting anything.
	Deploy(ctx context.Context, spec Spec, log io.Writer) error

	// Scale sets the number of instances of the app's current release and
	// returns without waiting for them to become healthy. Instances removed
	// are drained first. Scale to 0 is how an app sleeps.
	Scale(ctx context.Context, app string, n int) error

	// Remove stops every instance of the app and forgets it.
	Remove(ctx context.Context, app string) error

	// Instances lists the app's instances (any release), with their health.
	Instances(ctx context.Context, app string) ([]Instance, error)

	// Logs writes the app's recent output to w, then, with follow, new
	// output until ctx ends. Schedulers without logs return ErrUnsupported.
	Logs(ctx context.Context, app string, follow bool, w io.Writer) error

	// Changes delivers the name of an app whenever its instances change
	// (started, healthy, unhealthy, exited). Sends never block: a slow
	// reader misses repeats, never the last change of an app.
	Changes() <-chan string
}

// Drainer takes an instance out of rotation and waits (up to ctx) until
// the requests it is serving are done. Schedulers call it before they stop
// an instance; the router implements it.
type Drainer interface {
	Drain(ctx context.Context, app string, in Instance) error
}

// DrainFunc adapts a function to Drainer.
type DrainFunc func(ctx context.Context, app string, in Instance) error

// Drain calls f.
func (f DrainFunc) Drain(ctx context.Context, app string, in Instance) error { return f(ctx, app, in) }

// Builder turns a source tree into a slug. The builder package implements
// it with plain types so that it imports nothing of Flock.
type Builder interface {
	// Build builds dir as release of app and writes the slug to the artifact
	// store. cmd, when set, overrides the detected start command. It returns
	// the slug's path and the start command.
	Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (slug, command string, err error)
}

// Undrainer puts an instance that Drain took out of rotation, and that
// still runs, back in: a rollout that handed the traffic to a new release
// gives it back to the old one when the new one fails within its stability
// window. A Drainer may implement it; a scheduler whose Drainer does not
// keeps the old release in rotation until the new one is stable.
type Undrainer interface {
	Undrain(ctx context.Context, app string, in Instance) error
}

// Drainers drains through each of its Drainers in turn (the router's
// HAProxy, then the waker), all of them even when one fails; it returns
// the first error.
type Drainers []Drainer

// Drain calls every Drainer in order.
func (ds Drainers) Drain(ctx context.Context, app string, in Instance) error {
	var first error
	for _, d := range ds {
		if err := d.Drain(ctx, app, in); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Undrain puts the instance back through every Drainer that is an
// Undrainer, in reverse order (the waker, then the router's HAProxy), all
// of them even when one fails; it returns the first error.
func (ds Drainers) Undrain(ctx context.Context, app string, in Instance) error {
	var first error
	for _, d := range slices.Backward(ds) {
		if u, ok := d.(Undrainer); ok {
			if err := u.Undrain(ctx, app, in); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
