package deploy

import "time"

// DeployRequest asks for a source tree to be built and rolled out.
type DeployRequest struct {
	// App names the app; empty: the descriptor's name.
	App string
	// Dir is the source tree. The caller owns it and may remove it as soon
	// as Deploy returns: Deploy takes its own copy first, because a deploy
	// goes on after a caller that left.
	Dir     string
	Commit  string
	Trigger string // "cli", "git push", "github"
}

// RolloutStatus is the outcome of a rollout.
type RolloutStatus string

// Rollout outcomes.
const (
	RolloutQueued     RolloutStatus = "queued"
	RolloutRunning    RolloutStatus = "running"
	RolloutSucceeded  RolloutStatus = "succeeded"
	RolloutFailed     RolloutStatus = "failed"
	RolloutSuperseded RolloutStatus = "superseded"
)

// Rollout is the record of one deploy or rollback: what triggered it,
// when, how it ended and its log. The API calls it a deploy
// (GET /api/v1/apps/<app>/deploys); it has a name of its own so that
// "Deploy" means the verb only.
type Rollout struct {
	ID         string        `json:"id"`
	App        string        `json:"app"`
	Release    string        `json:"release,omitempty"` // set once built
	Commit     string        `json:"commit,omitempty"`
	Trigger    string        `json:"trigger"`
	Status     RolloutStatus `json:"status"`
	Error      string        `json:"error,omitempty"`
	QueuedAt   time.Time     `json:"queuedAt"`
	StartedAt  *time.Time    `json:"startedAt,omitempty"`
	FinishedAt *time.Time    `json:"finishedAt,omitempty"`
	Log        string        `json:"log,omitempty"`
}

// Activity is what the scaler learned about an app's traffic.
type Activity struct {
	LastRequestAt time.Time
	RequestRate   float64 // requests per second over the last scaler tick
}
