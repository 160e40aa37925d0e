package deploy

import (
	"fmt"
	"strings"
)

// Process types. An app's web process is the app itself: routed, checked,
// autoscaled, woken by requests. Every other type of its Procfile
// ("worker", "clock") runs beside it without a route, as a scheduler app
// of its own named <app>--<type>, so the router, the waker and the scaler,
// which know only the apps in the store, never see it. It runs the same
// release, is scaled on its own (flock scale APP worker=2), sleeps and
// wakes with the app, and logs into the app's log.

// processSep joins an app's name and a process type into the name the
// scheduler knows the type by. App names may not hold it (CheckNewName).
const processSep = "--"

// ProcessApp is the scheduler's name of app's process type typ.
func ProcessApp(app, typ string) string { return app + processSep + typ }

// ParentApp splits a scheduler app name made by ProcessApp into the app and
// the process type; ok is false for the name of an app itself.
func ParentApp(name string) (app, typ string, ok bool) {
	return strings.Cut(name, processSep)
}

// Process is one non-web process type of an app as the API shows it.
type Process struct {
	Type      string     `json:"type"`
	Command   string     `json:"command"`
	Desired   int        `json:"desired"`
	Instances []Instance `json:"instances"`
}

// CheckNewName says why name cannot name a new app: it must be a DNS label
// (ValidName) and may not hold the process separator, which would make it
// look like another app's process type (app--worker).
func CheckNewName(name string) error {
	if strings.Contains(name, processSep) {
		return fmt.Errorf("app name %q holds %q, which names an app's process types (app--worker): %w", name, processSep, ErrInvalid)
	}
	if !ValidName(name) {
		return fmt.Errorf("app name %q must be a DNS label (lower-case letters, digits and '-', at most 63): %w", name, ErrInvalid)
	}
	return nil
}
