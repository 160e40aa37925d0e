package marathon

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// mApp is the part of a Marathon app Flock reads. It is Flock's own type
// because go-marathon v0.7.1 fails on real documents: an env secret
// ({"secret": "/db/password"}) breaks its map[string]string, and Marathon
// 1.5's container.portMappings and networks are dropped. Flock reads
// neither env nor containers back, so they are simply not decoded.
type mApp struct {
	ID          string            `json:"id"`
	Instances   int               `json:"instances"`
	Labels      map[string]string `json:"labels"`
	Version     string            `json:"version"`
	VersionInfo struct {
		LastConfigChangeAt string `json:"lastConfigChangeAt"`
	} `json:"versionInfo"`
	HealthChecks []json.RawMessage `json:"healthChecks"`
	Deployments  []struct {
		ID string `json:"id"`
	} `json:"deployments"`
	Tasks []mTask `json:"tasks"`
	Fetch []struct {
		URI        string `json:"uri"`
		Executable bool   `json:"executable"`
		Extract    bool   `json:"extract"`
		Cache      bool   `json:"cache"`
	} `json:"fetch"`
}

// mTask is one Marathon task. Marathon ≤1.4 sends no state: a task with a
// startedAt is then taken as running.
type mTask struct {
	ID                 string `json:"id"`
	AppID              string `json:"appId"`
	Host               string `json:"host"`
	Ports              []int  `json:"ports"`
	State              string `json:"state"`
	StartedAt          string `json:"startedAt"`
	StagedAt           string `json:"stagedAt"`
	Version            string `json:"version"`
	HealthCheckResults []struct {
		Alive bool `json:"alive"`
	} `json:"healthCheckResults"`
}

// decodeApps decodes GET /v2/apps. Each app is decoded on its own: an app
// Flock cannot read is skipped, it never hides the others.
func decodeApps(body []byte) ([]mApp, error) {
	var doc struct {
		Apps []json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode apps: %w", err)
	}
	apps := make([]mApp, 0, len(doc.Apps))
	for _, raw := range doc.Apps {
		var a mApp
		if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
			continue
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// decodeApp decodes GET /v2/apps/{id}: {"app": {...}}.
func decodeApp(body []byte) (mApp, error) {
	var doc struct {
		App mApp `json:"app"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return mApp{}, fmt.Errorf("decode app: %w", err)
	}
	return doc.App, nil
}

// running reports whether the task is up: TASK_RUNNING, or (Marathon 1.4,
// no state) started.
func (t mTask) running() bool {
	if t.State != "" {
		return t.State == "TASK_RUNNING"
	}
	return t.StartedAt != ""
}

// live reports whether the task is or will be running: not being killed
// (TASK_KILLING, reported by Marathon ≥1.1 with Mesos ≥0.28) and not
// ended. Marathon 1.4 sends no state: live.
func (t mTask) live() bool {
	switch t.State {
	case "", "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING":
		return true
	}
	return false
}

// healthy: running and every health check result alive; an app without
// checks counts a running task as healthy; a task of an app with checks
// and no result yet is not healthy.
func (t mTask) healthy(checks int) bool {
	if !t.running() {
		return false
	}
	if checks == 0 {
		return true
	}
	if len(t.HealthCheckResults) == 0 {
		return false
	}
	for _, r := range t.HealthCheckResults {
		if !r.Alive {
			return false
		}
	}
	return true
}

// current reports whether the task runs the app's current configuration
// (it was launched at or after the last config change).
func (a mApp) current(t mTask) bool {
	at := a.VersionInfo.LastConfigChangeAt
	if at == "" {
		at = a.Version
	}
	return at == "" || t.Version >= at
}

// instances turns the app's running tasks into Flock instances, oldest
// first. Tasks of the current configuration carry the app's release label;
// older ones (during a rolling upgrade) the release before it if known.
func (a mApp) instances(older map[string]string) []deploy.Instance {
	out := make([]deploy.Instance, 0, len(a.Tasks))
	for _, t := range a.Tasks {
		if !t.running() {
			continue
		}
		in := deploy.Instance{
			ID:      t.ID,
			Release: a.Labels[releaseLabel],
			Host:    t.Host,
			Ports:   append([]int(nil), t.Ports...),
			Healthy: t.healthy(len(a.HealthChecks)),
		}
		if !a.current(t) {
			in.Release = older[t.Version]
		}
		if len(t.Ports) > 0 {
			in.Port = t.Ports[0]
		}
		if ts, err := time.Parse(time.RFC3339Nano, t.StartedAt); err == nil {
			in.StartedAt = ts
		}
		out = append(out, in)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

// newHealthy counts the running, healthy tasks of the current config.
func (a mApp) newHealthy() (healthy, total int) {
	for _, t := range a.Tasks {
		if !a.current(t) || !t.live() {
			continue
		}
		total++
		if t.healthy(len(a.HealthChecks)) {
			healthy++
		}
	}
	return healthy, total
}
