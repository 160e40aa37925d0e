package deploy

import (
	"context"
	"io"
	"time"
)

// Config configures the release pipeline.
type Config struct {
	// Domain is the routing domain: an app answers at <app>.<Domain>.
	Domain string
	// URLPort is appended to app URLs when the router is not on port 80
	// (":8000"); empty for port 80.
	URLPort string
	// Idle is the default idle time before an app sleeps (descriptor's
	// "idle" overrides it). Default 15m.
	Idle time.Duration
	// Builds is how many apps may build at once. Default 2.
	Builds int
	// ArtifactURL is the base URL schedulers fetch slugs from
	// (<ArtifactURL>/artifacts/<app>/<release>.tar.gz).
	ArtifactURL string
	// Artifacts is the artifact store's folder (slugs live at
	// <Artifacts>/<app>/<release>.tar.gz).
	Artifacts string
	// MemoryEnforced is reported in every app's JSON: whether the
	// scheduler enforces "mem".
	MemoryEnforced bool
}

// DeployRequest asks for a source tree to be built and rolled out.
type DeployRequest struct {
	// App names the app; empty: the descriptor's name.
	App string
	// Dir is the source tree. The caller owns it and removes it after
	// Deploy returns.
	Dir     string
	Commit  string
	Trigger string // "cli", "git push", "github"
}

// DeployStatus is the outcome of a deploy.
type DeployStatus string

// Deploy outcomes.
const (
	DeployQueued     DeployStatus = "queued"
	DeployRunning    DeployStatus = "running"
	DeploySucceeded  DeployStatus = "succeeded"
	DeployFailed     DeployStatus = "failed"
	DeploySuperseded DeployStatus = "superseded"
)

// Deploy is the record of one deploy (or rollback): what triggered it,
// when, how it ended and its log.
type Deploy struct {
	ID         string       `json:"id"`
	App        string       `json:"app"`
	Release    string       `json:"release,omitempty"` // set once built
	Commit     string       `json:"commit,omitempty"`
	Trigger    string       `json:"trigger"`
	Status     DeployStatus `json:"status"`
	Error      string       `json:"error,omitempty"`
	QueuedAt   time.Time    `json:"queuedAt"`
	StartedAt  *time.Time   `json:"startedAt,omitempty"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
	Log        string       `json:"log,omitempty"`
}

// Activity is what the scaler learned about an app's traffic.
type Activity struct {
	LastRequestAt time.Time
	RequestRate   float64 // requests per second over the last scaler tick
}

// The Service API, used by the webhook (through cmd), the scaler, the
// waker and the web package:
//
//	New(cfg Config, store *Store, sched Scheduler, b Builder) (*Service, error)
//	(*Service).Run(ctx) error
//	(*Service).Deploy(ctx, req DeployRequest, log io.Writer) (Release, error)
//	(*Service).Submit(req DeployRequest, cleanup func()) (Deploy, error)
//	(*Service).Apps(ctx) ([]App, error)
//	(*Service).App(ctx, name) (App, error)
//	(*Service).Releases(ctx, name) ([]Release, error)
//	(*Service).Deploys(ctx, name) ([]Deploy, error)
//	(*Service).DeployByID(ctx, id) (Deploy, error)
//	(*Service).FollowDeploy(ctx, id, w io.Writer) error
//	(*Service).Rollback(ctx, name, release string, log io.Writer) (Release, error)
//	(*Service).Scale(ctx, name string, n int) error
//	(*Service).Sleep(ctx, name) error
//	(*Service).Wake(ctx, name) error
//	(*Service).Fail(name, reason string)
//	(*Service).Destroy(ctx, name) error
//	(*Service).Logs(ctx, name string, follow bool, w io.Writer) error
//	(*Service).Subscribe() (<-chan Event, func())
//	(*Service).RecordActivity(name string, a Activity)
var _ = context.Background
var _ io.Writer
