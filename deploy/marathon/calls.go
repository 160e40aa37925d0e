package marathon

// The calls Flock sends with its own HTTP client rather than go-marathon
// v0.7.1's: what that client cannot express (partialUpdate=false, a zero
// grace period, the launch queue, the event stream's query and redirect),
// and the mapping of Marathon's answers to Flock's errors.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	gomarathon "github.com/gambol99/go-marathon"
)

// statusErr maps a Marathon answer to Flock's errors: 404 → errNotFound,
// 409 → conflictError, 401/403 → errAuth, 5xx → downError (try the next
// Marathon).
func statusErr(method, path string, status int, body []byte) error {
	var msg struct {
		Message string `json:"message"`
	}
	json.Unmarshal(body, &msg)
	switch {
	case status < 300:
		return nil
	case status == http.StatusNotFound:
		return errNotFound
	case status == http.StatusConflict:
		return &conflictError{msg: msg.Message}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%s %s: status %d: %w", method, path, status, errAuth)
	case status >= 500:
		return &downError{fmt.Errorf("%s %s: status %d", method, path, status)}
	}
	return fmt.Errorf("%s %s: status %d: %s", method, path, status, oneLine(body))
}

// call sends a JSON request to base+path with Flock's own client (for
// what go-marathon v0.7.1 cannot send: partialUpdate, the queue) and
// decodes the answer into out when it is not nil.
func (c *cluster) call(ctx context.Context, base, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &downError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &downError{err}
	}
	if err := statusErr(method, path, resp.StatusCode, b); err != nil {
		return err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Create implements api.
func (c *cluster) Create(ctx context.Context, def *gomarathon.Application) (string, error) {
	body, err := encodeDef(def)
	if err != nil {
		return "", err
	}
	var app struct {
		Deployments []struct {
			ID string `json:"id"`
		} `json:"deployments"`
	}
	err = c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		return c.call(ctx, base, http.MethodPost, "/v2/apps", body, &app)
	})
	id := ""
	for _, d := range app.Deployments {
		id = d.ID
	}
	return id, err
}

// encodeDef is def's JSON with every health check's gracePeriodSeconds,
// also 0: go-marathon omits a zero, and Marathon then applies its default
// of 300 s (app.raml) where the descriptor said none.
func encodeDef(def *gomarathon.Application) (json.RawMessage, error) {
	b, err := json.Marshal(def)
	if err != nil || def.HealthChecks == nil {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	hcs, _ := m["healthChecks"].([]any)
	for i, hc := range *def.HealthChecks {
		if i >= len(hcs) {
			break
		}
		if h, ok := hcs[i].(map[string]any); ok {
			h["gracePeriodSeconds"] = hc.GracePeriodSeconds
		}
	}
	return json.Marshal(m)
}

// Replace implements api with PUT ?partialUpdate=false (Marathon ≥1.4,
// apps.raml): without it a PUT merges, and a switch from a Docker image to
// a slug would keep the old container (and the reverse the old fetch).
func (c *cluster) Replace(ctx context.Context, def *gomarathon.Application) (string, error) {
	body, err := encodeDef(def)
	if err != nil {
		return "", err
	}
	var d gomarathon.DeploymentID
	err = c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		return c.call(ctx, base, http.MethodPut, "/v2/apps"+def.ID+"?partialUpdate=false", body, &d)
	})
	return d.DeploymentID, err
}

// ResetDelay implements api. Marathon answers 404 when the app has no
// delay (queue.raml); that is the state asked for.
func (c *cluster) ResetDelay(ctx context.Context, id string) error {
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		return c.call(ctx, base, http.MethodDelete, "/v2/queue"+id+"/delay", nil, nil)
	})
	if errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

// DeleteGroup implements api: DELETE /v2/groups/<id>?force=true
// (groups.raml: "Destroy a group. All data about that group and all
// associated applications will be deleted"; force as every deployable
// call, so a deployment in progress does not keep the apps alive).
func (c *cluster) DeleteGroup(ctx context.Context, id string) (string, error) {
	var d struct {
		DeploymentID string `json:"deploymentId"`
	}
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		return c.call(ctx, base, http.MethodDelete, "/v2/groups"+id+"?force=true", nil, &d)
	})
	return d.DeploymentID, err
}

// Version implements api.
func (c *cluster) Version(ctx context.Context) (string, error) {
	var info struct {
		Version string `json:"version"`
	}
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		return c.call(ctx, base, http.MethodGet, "/v2/info", nil, &info)
	})
	return info.Version, err
}

// eventTypes are the events Flock reads (parseEvent); the stream asks
// for these only (event_type, Marathon ≥1.3.7, event-bus.md).
var eventTypes = []string{
	"event_stream_attached", "status_update_event", "instance_changed_event",
	"health_status_changed_event", "instance_health_changed_event",
	"failed_health_check_event", "unhealthy_instance_kill_event",
	"app_terminated_event", "api_post_event", "group_change_success",
	"deployment_info", "deployment_step_success", "deployment_success", "deployment_failed",
}

// eventsPath is the event stream Flock reads: the light plan format (the
// 1.6 changelog: the heavy one carries the whole root group twice in
// every deployment event; 1.8 sends only light) and only Flock's events.
func eventsPath() string {
	q := url.Values{"plan-format": {"light"}, "event_type": eventTypes}
	return "/v2/events?" + q.Encode()
}

// Events implements api: it opens the event stream on the first Marathon
// that answers, starting with the current one, following a standby's
// redirect to the leader (Marathon ≥1.7 redirects /v2/events rather than
// proxy it). The name is where the stream came from.
func (c *cluster) Events(ctx context.Context) (io.ReadCloser, string, error) {
	var body io.ReadCloser
	var from string
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+eventsPath(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.stream.Do(req)
		if err != nil {
			if errors.Is(err, errDowngrade) {
				return err
			}
			return &downError{err}
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if err := statusErr(http.MethodGet, "/v2/events", resp.StatusCode, b); err != nil && !errors.Is(err, errNotFound) {
				return err
			}
			return &downError{fmt.Errorf("events: status %d", resp.StatusCode)}
		}
		from = base
		if u := resp.Request.URL; u.Host != "" {
			from = u.Scheme + "://" + u.Host
		}
		body = resp.Body
		return nil
	})
	return body, from, err
}
