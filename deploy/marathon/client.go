package marathon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gomarathon "github.com/gambol99/go-marathon"
)

// api is the few Marathon calls Flock needs. The production implementation
// (cluster) sends writes through go-marathon and decodes reads with Flock's
// own lenient types; tests use the recorded server in marathontest instead
// of a mock of this interface.
type api interface {
	// Apps lists Flock's apps with their tasks.
	Apps(ctx context.Context) ([]mApp, error)
	// App reads one app with its tasks; a missing app is errNotFound.
	App(ctx context.Context, id string) (mApp, error)
	// Create posts a new app and returns the id of its deployment.
	Create(ctx context.Context, def *gomarathon.Application) (string, error)
	// Replace puts a whole definition (partialUpdate=false): fields it
	// leaves out are removed, not kept. It returns the deployment id.
	Replace(ctx context.Context, def *gomarathon.Application) (string, error)
	// Update puts a partial definition (Marathon's default PUT merges it
	// into the app) and returns the deployment id. With force it
	// supersedes a deployment in progress instead of answering 409.
	Update(ctx context.Context, def *gomarathon.Application, force bool) (string, error)
	// ResetDelay ends the app's launch backoff (DELETE
	// /v2/queue/<id>/delay); an app without a delay is no error.
	ResetDelay(ctx context.Context, id string) error
	// Version is the version Marathon's /v2/info reports.
	Version(ctx context.Context) (string, error)
	// Delete removes an app (forced: a deployment in progress does not
	// block it) and returns the deployment id.
	Delete(ctx context.Context, id string) (string, error)
	// DeleteGroup removes a group with all its apps (forced) and returns
	// the deployment id; a missing group is errNotFound.
	DeleteGroup(ctx context.Context, id string) (string, error)
	// Deployments lists the deployments in progress.
	Deployments(ctx context.Context) ([]*gomarathon.Deployment, error)
	// Rollback cancels a deployment; Marathon then reverts what it changed.
	Rollback(ctx context.Context, deploymentID string) error
	// Revert puts an app back on one of its earlier versions.
	Revert(ctx context.Context, id, version string) (string, error)
	// KillTasks kills tasks and lowers the app's instances by as many,
	// superseding a deployment in progress.
	KillTasks(ctx context.Context, ids []string) error
	// Events opens the event stream of one Marathon and names it.
	Events(ctx context.Context) (io.ReadCloser, string, error)
}

var (
	errNotFound = errors.New("marathon: not found")
	// errAuth: Marathon refused Flock's credentials (401/403).
	errAuth = errors.New("marathon refused the credentials (check --marathon-user, --marathon-password, --marathon-token-file)")
	// errUnreachable is wrapped by UnreachableError.
	errUnreachable = errors.New("marathon unreachable")
)

// UnreachableError says that no Marathon of the list answered; it names
// every URL tried with its failure, so an operator sees what to fix.
type UnreachableError struct {
	Tried []string // "http://m1:8080: connection refused"
}

func (e *UnreachableError) Error() string {
	return "marathon unreachable (tried " + strings.Join(e.Tried, "; ") + ")"
}

// Unwrap lets callers test errors.Is(err, errUnreachable).
func (e *UnreachableError) Unwrap() error { return errUnreachable }

// conflictError is a 409: another deployment holds the app.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return "deployment in progress: " + e.msg }

// downError marks a failure of one Marathon that is worth trying the next.
type downError struct{ err error }

func (e *downError) Error() string { return e.err.Error() }
func (e *downError) Unwrap() error { return e.err }

// cluster implements api over a list of Marathons: it uses the last one that
// answered and moves to the next on a network error or a 5xx.
type cluster struct {
	urls   []string
	hc     *http.Client // requests, with a timeout
	stream *http.Client // the event stream, without a timeout

	mu      sync.Mutex
	cur     int
	clients []gomarathon.Marathon // per URL; nil: (re)create after a probe
}

func newCluster(urls []string, hc *http.Client) *cluster {
	stream := *hc
	stream.Timeout = 0
	return &cluster{urls: urls, hc: hc, stream: &stream, clients: make([]gomarathon.Marathon, len(urls))}
}

// do runs f against each Marathon in turn, starting at the current one,
// until one answers (with success or with a non-down error).
func (c *cluster) do(ctx context.Context, f func(base string, m gomarathon.Marathon) error) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var tried []string
	for k := range c.urls {
		if err := ctx.Err(); err != nil {
			return err
		}
		i := (start + k) % len(c.urls)
		base := c.urls[i]
		m, err := c.client(ctx, i)
		if err == nil {
			err = f(base, m)
		}
		if err == nil || !isDown(err) {
			c.mu.Lock()
			c.cur = i
			c.mu.Unlock()
			if errors.Is(err, errAuth) {
				err = fmt.Errorf("%s: %w", base, err) // which Marathon refused
			}
			return err
		}
		if errors.Is(err, gomarathon.ErrMarathonDown) {
			// go-marathon marked its only member down and pings it every
			// 5 s from now on; start afresh once our own probe passes.
			c.mu.Lock()
			c.clients[i] = nil
			c.mu.Unlock()
		}
		tried = append(tried, base+": "+err.Error())
	}
	return &UnreachableError{Tried: tried}
}

// client returns go-marathon's client for URL i. A client is only
// (re)created after GET /ping answers, so that go-marathon's background
// pinger of a dead client ends soon after and none pile up.
func (c *cluster) client(ctx context.Context, i int) (gomarathon.Marathon, error) {
	c.mu.Lock()
	m := c.clients[i]
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.get(pctx, c.urls[i], "/ping"); err != nil {
		return nil, err
	}
	m, err := gomarathon.NewClient(gomarathon.Config{URL: c.urls[i], HTTPClient: c.hc, LogOutput: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("marathon client %s: %w", c.urls[i], err)
	}
	c.mu.Lock()
	c.clients[i] = m
	c.mu.Unlock()
	return m, nil
}

func isDown(err error) bool {
	var d *downError
	return errors.As(err, &d) || errors.Is(err, gomarathon.ErrMarathonDown)
}

// get reads base+path with Flock's own HTTP client: go-marathon's types
// cannot decode every real document (an env secret breaks a whole list).
func (c *cluster) get(ctx context.Context, base, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &downError{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &downError{err}
	}
	return body, statusErr(http.MethodGet, path, resp.StatusCode, body)
}

// Apps implements api.
func (c *cluster) Apps(ctx context.Context) ([]mApp, error) {
	q := url.Values{"label": {managedLabel + "==true"}, "embed": {"apps.tasks"}}
	var apps []mApp
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		body, err := c.get(ctx, base, "/v2/apps?"+q.Encode())
		if err != nil {
			return err
		}
		apps, err = decodeApps(body)
		return err
	})
	return apps, err
}

// App implements api.
func (c *cluster) App(ctx context.Context, id string) (mApp, error) {
	var app mApp
	err := c.do(ctx, func(base string, _ gomarathon.Marathon) error {
		body, err := c.get(ctx, base, "/v2/apps"+id+"?embed=app.tasks")
		if err != nil {
			return err
		}
		app, err = decodeApp(body)
		return err
	})
	return app, err
}

// Update implements api.
func (c *cluster) Update(ctx context.Context, def *gomarathon.Application, force bool) (string, error) {
	var id string
	err := c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		d, err := m.UpdateApplication(def, force)
		if err != nil {
			return apiErr(err)
		}
		id = d.DeploymentID
		return nil
	})
	return id, err
}

// Delete implements api.
func (c *cluster) Delete(ctx context.Context, appID string) (string, error) {
	var id string
	err := c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		d, err := m.DeleteApplication(appID, true)
		if err != nil {
			return apiErr(err)
		}
		id = d.DeploymentID
		return nil
	})
	return id, err
}

// Deployments implements api.
func (c *cluster) Deployments(ctx context.Context) ([]*gomarathon.Deployment, error) {
	var ds []*gomarathon.Deployment
	err := c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		var err error
		ds, err = m.Deployments()
		return apiErr(err)
	})
	return ds, err
}

// Rollback implements api.
func (c *cluster) Rollback(ctx context.Context, deploymentID string) error {
	return c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		_, err := m.DeleteDeployment(deploymentID, false)
		return apiErr(err)
	})
}

// Revert implements api with PUT {"version": …}, Marathon's rollback.
func (c *cluster) Revert(ctx context.Context, appID, version string) (string, error) {
	var id string
	err := c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		d, err := m.SetApplicationVersion(appID, &gomarathon.ApplicationVersion{Version: version})
		if err != nil {
			return apiErr(err)
		}
		id = d.DeploymentID
		return nil
	})
	return id, err
}

// KillTasks implements api.
func (c *cluster) KillTasks(ctx context.Context, ids []string) error {
	return c.do(ctx, func(_ string, m gomarathon.Marathon) error {
		return apiErr(m.KillTasks(ids, &gomarathon.KillTaskOpts{Scale: true, Force: true}))
	})
}

// rotate makes the next URL current: the event loop calls it when a stream
// drops, so that a dead leader is not retried first.
func (c *cluster) rotate() {
	c.mu.Lock()
	c.cur = (c.cur + 1) % len(c.urls)
	c.mu.Unlock()
}

// apiErr turns go-marathon's errors into Flock's: 404 → errNotFound,
// 409 → conflictError, 401/403 → errAuth; ErrMarathonDown stays (the
// cluster moves on).
func apiErr(err error) error {
	var ae *gomarathon.APIError
	if errors.As(err, &ae) {
		switch ae.ErrCode {
		case gomarathon.ErrCodeNotFound:
			return errNotFound
		case gomarathon.ErrCodeAppLocked, gomarathon.ErrCodeDuplicateID:
			return &conflictError{msg: ae.Error()}
		case gomarathon.ErrCodeUnauthorized, gomarathon.ErrCodeForbidden:
			return errAuth
		}
	}
	return err
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var _ api = (*cluster)(nil)
