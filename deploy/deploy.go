// Package deploy is Flock's contract: the types every other part speaks
// (App, Release, Descriptor, Instance, Event, the Rollout record), the
// Scheduler interface that the embedded and the Marathon schedulers
// implement, the descriptor with every rule derived from it (checks, hosts,
// names), and the sentinel errors.
//
// deploy imports nothing of Flock and runs nothing. The engine that builds,
// records and rolls out releases is deploy/engine, which only cmd/flock
// imports; the packages, the path of a push and the store layout are
// described in docs/architecture.md.
package deploy

import (
	"errors"
	"regexp"
	"time"
)

// Sentinel errors, checked with errors.Is. The API maps them to statuses.
var (
	// ErrNotFound: no such app or release (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request or the descriptor breaks a rule (400).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the operation cannot run in the app's current state (409).
	ErrConflict = errors.New("conflict")
	// ErrSuperseded: a queued deploy was replaced by a newer push.
	ErrSuperseded = errors.New("superseded by a newer deploy")
	// ErrUnsupported: the scheduler cannot do this (501), e.g. logs on Marathon.
	ErrUnsupported = errors.New("not supported by this scheduler")
	// ErrUnhealthy: the release's instances never passed their checks.
	ErrUnhealthy = errors.New("instances never became healthy")
)

// nameRE is the DNS-label rule for app names (docs/descriptor.md, "Keys": name).
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is a valid app name: a lower-case DNS label.
// Every part that puts a name into a file, a URL or a command checks it here.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// State is an app's state as users see it.
type State string

// The states of an app.
const (
	StateDeploying State = "deploying" // a first release is being built or rolled out
	StateRunning   State = "running"   // awake, at least one instance or none wanted
	StateSleeping  State = "sleeping"  // scaled to zero while idle; the next request wakes it
	StateWaking    State = "waking"    // woken, no instance healthy yet
	StateFailed    State = "failed"    // last deploy or wake failed and nothing serves
	StateCrashed   State = "crashed"   // was live, but its instances keep exiting or failing their checks; restarted with backoff
	StateStopped   State = "stopped"   // scaled to zero by hand; requests are not answered
)

// Instance is one running copy of an app's release.
type Instance struct {
	ID        string    `json:"id"`
	Release   string    `json:"release"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`  // first port, the one HAProxy routes to
	Ports     []int     `json:"ports"` // every port, PORT0..PORTn-1
	Healthy   bool      `json:"healthy"`
	StartedAt time.Time `json:"startedAt"`
	// LastExit is why the instance's last run ended, when it was
	// restarted: "status 1", "signal killed", "out of memory (limit 64 MiB)".
	LastExit string `json:"lastExit,omitempty"`
	// LastOutput is the first error line and the last lines the instance
	// wrote before that run ended, when it was restarted.
	LastOutput string `json:"lastOutput,omitempty"`
}

// Release is an immutable build of an app: slug, descriptor, env, commit.
// A rollback re-runs an old release's slug under a new release name.
type Release struct {
	App        string            `json:"app"`
	Name       string            `json:"name"`    // "v3"
	Version    int               `json:"version"` // 3
	Commit     string            `json:"commit,omitempty"`
	Trigger    string            `json:"trigger,omitempty"` // "cli", "git push", "github", "rollback to v1"
	Slug       string            `json:"slug,omitempty"`    // path of the slug in the artifact store
	Command    string            `json:"command,omitempty"` // start command, run with sh -c in the unpacked slug
	Image      string            `json:"image,omitempty"`   // Docker image instead of a slug (Marathon only)
	Descriptor Descriptor        `json:"descriptor"`
	Env        map[string]string `json:"env,omitempty"` // the descriptor's env
	// Config is the app's config vars as this release runs with them
	// (they override Env). Never shown: the store keeps it, the API
	// shows ConfigKeys.
	Config     map[string]string `json:"-"`
	ConfigKeys []string          `json:"configKeys,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
}

// App is an app as the API shows it (docs/api.md, "GET /api/v1/apps").
type App struct {
	Name           string     `json:"name"`
	URL            string     `json:"url"`
	State          State      `json:"state"`
	Desired        int        `json:"desired"` // instances wanted when awake
	Instances      []Instance `json:"instances"`
	Release        string     `json:"release"`
	Version        int        `json:"version"`
	Commit         string     `json:"commit"`
	LastRequestAt  *time.Time `json:"lastRequestAt"`
	Idle           string     `json:"idle"` // "15m0s" or "never"
	Domains        []string   `json:"domains,omitempty"`
	Error          string     `json:"error,omitempty"` // why the app is failed, or a router error
	MemoryEnforced bool       `json:"memoryEnforced"`
	// Processes are the app's non-web process types (Procfile worker:,
	// clock: …) and their instances.
	Processes   []Process `json:"processes,omitempty"`
	RequestRate float64   `json:"requestRate"` // requests per second, from the scaler
	// AsleepSince is when the app last went to sleep, while it sleeps.
	AsleepSince *time.Time `json:"asleepSince,omitempty"`
	// SavedInstanceSeconds is how many instance-seconds sleeping saved
	// (desired instances × time asleep), summed over the app's life.
	SavedInstanceSeconds float64 `json:"savedInstanceSeconds"`
	// ConfigKeys names the app's config vars (docs/config.md); their
	// values are shown only by GET /api/v1/apps/<app>/config. Domains
	// above lists the descriptor's domains, then those added with
	// flock domains add.
	ConfigKeys []string `json:"configKeys,omitempty"`

	// Descriptor of the current release: checks, ports and scaling bounds
	// for the router, the scaler and the waker.
	Descriptor Descriptor `json:"-"`
	// IdleTimeout is the resolved idle time (descriptor, else the default);
	// 0 means never.
	IdleTimeout time.Duration `json:"-"`
}

// HealthyCount returns how many of the app's instances pass their checks.
func (a App) HealthyCount() int {
	n := 0
	for _, in := range a.Instances {
		if in.Healthy {
			n++
		}
	}
	return n
}

// Event tells that something about an app changed. Subscribers (waker,
// dashboard) re-read the app; the router takes Snapshot as it is.
type Event struct {
	App   string    `json:"app"`
	Type  string    `json:"type"` // "state", "instances", "deploy", "release", "destroyed", "activity"
	State State     `json:"state,omitempty"`
	Time  time.Time `json:"time"`
	// Message is a short human text ("v3 live", "scaled to 2").
	Message string `json:"message,omitempty"`
	// Rollout is, on a "deploy" event, the status of the rollout it tells
	// of (running, succeeded, failed): what a counter keys on, never the
	// wording of Message.
	Rollout RolloutStatus `json:"rollout,omitempty"`
	// Snapshot is the app, instances included, as it was just after the
	// change, so that a subscriber keeping its own copy (the router) knows
	// a new instance without asking anyone. The events of one app come in
	// the order their snapshots were taken. Nil for "activity" and
	// "destroyed", and when the app could not be read. Every subscriber
	// gets the same one: read it, copy what you keep. Not sent to API
	// clients.
	Snapshot *App `json:"-"`
}
