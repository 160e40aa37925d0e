package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// maxInstances bounds a scale request before it reaches the scheduler.
const maxInstances = 100

var releaseRE = regexp.MustCompile(`^v[0-9]{1,9}$`)

// appName returns the :app parameter if it is a valid app name.
func appName(c *gin.Context) (string, error) {
	name := c.Param("app")
	if !deploy.ValidName(name) {
		return "", fmt.Errorf("app name %q: must be a lower-case DNS label: %w", name, deploy.ErrInvalid)
	}
	return name, nil
}

// redact hides env values from callers that did not prove they know the
// token (readers of a read-only dashboard).
func (s *Server) redact(c *gin.Context, rels []deploy.Release) {
	if s.identify(c).authed() {
		return
	}
	for i := range rels {
		rels[i].Env = hideValues(rels[i].Env)
		rels[i].Descriptor.Env = hideValues(rels[i].Descriptor.Env)
	}
}

func hideValues(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k := range env {
		out[k] = "(hidden)"
	}
	return out
}

func (s *Server) listApps(c *gin.Context) {
	apps, err := s.reader.Apps(c.Request.Context())
	if err != nil {
		s.fail(c, fmt.Errorf("list apps: %w", err))
		return
	}
	if apps == nil {
		apps = []deploy.App{}
	}
	c.JSON(http.StatusOK, apps)
}

func (s *Server) getApp(c *gin.Context) {
	if a, ok := s.lookup(c); ok {
		c.JSON(http.StatusOK, a)
	}
}

// act runs one action on the :app and answers with the app as it is after.
func (s *Server) act(c *gin.Context, f func(ctx context.Context, name string) error) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := f(ctx, name); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	a, err := s.reader.App(ctx, name)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	c.JSON(http.StatusOK, a)
}

func (s *Server) sleepApp(c *gin.Context) { s.act(c, s.actor.Sleep) }
func (s *Server) wakeApp(c *gin.Context)  { s.act(c, s.actor.Wake) }

func (s *Server) scaleApp(c *gin.Context) {
	n, process, err := instancesParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if process != "" && process != "web" {
		s.act(c, func(ctx context.Context, name string) error { return s.actor.ScaleProcess(ctx, name, process, n) })
		return
	}
	s.act(c, func(ctx context.Context, name string) error { return s.actor.Scale(ctx, name, n) })
}

// processRE is the rule for a process type named in a scale request.
var processRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$`)

// instancesParam reads {"instances": N, "process": "worker"} from JSON, or
// the "instances" and "process" fields of a form. No process: web.
func instancesParam(c *gin.Context) (int, string, error) {
	bad := fmt.Errorf("instances: must be a whole number from 0 to %d: %w", maxInstances, deploy.ErrInvalid)
	var n int
	var process string
	if strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
		v, err := strconv.Atoi(strings.TrimSpace(c.PostForm("instances")))
		if err != nil {
			return 0, "", bad
		}
		n, process = v, c.PostForm("process")
	} else {
		var body struct {
			Instances *int   `json:"instances"`
			Process   string `json:"process"`
		}
		dec := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<16))
		if err := dec.Decode(&body); err != nil || body.Instances == nil {
			return 0, "", bad
		}
		n, process = *body.Instances, body.Process
	}
	if n < 0 || n > maxInstances {
		return 0, "", bad
	}
	if process != "" && !processRE.MatchString(process) {
		return 0, "", fmt.Errorf("process: %q is not a process type (lower-case letters, digits and '-'): %w", process, deploy.ErrInvalid)
	}
	return n, process, nil
}

func (s *Server) destroyApp(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.actor.Destroy(c.Request.Context(), name); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	c.JSON(http.StatusOK, gin.H{"app": name, "destroyed": true})
}

// releasesView is GET /api/v1/apps/:app/releases: the releases (oldest
// first) and the deploy records behind them (newest first), as the
// platform lists them.
type releasesView struct {
	App      string           `json:"app"`
	Releases []deploy.Release `json:"releases"`
	Deploys  []deployView     `json:"deploys"`
}

// deployView is a deploy record with its duration; the log is left out of
// lists unless asked for (?log=1).
type deployView struct {
	deploy.Rollout
	DurationSeconds *float64 `json:"durationSeconds,omitempty"`
}

func viewDeploy(d deploy.Rollout, withLog bool) deployView {
	v := deployView{Rollout: d}
	if !withLog {
		v.Log = ""
	}
	if d.StartedAt != nil && d.FinishedAt != nil {
		sec := d.FinishedAt.Sub(*d.StartedAt).Seconds()
		v.DurationSeconds = &sec
	}
	return v
}

func (s *Server) releases(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	rels, err := s.reader.Releases(ctx, name)
	if err != nil {
		s.fail(c, fmt.Errorf("releases of %s: %w", name, err))
		return
	}
	deps, err := s.reader.Deploys(ctx, name)
	if err != nil {
		s.fail(c, fmt.Errorf("deploys of %s: %w", name, err))
		return
	}
	s.redact(c, rels)
	v := releasesView{App: name, Releases: rels, Deploys: make([]deployView, 0, len(deps))}
	if v.Releases == nil {
		v.Releases = []deploy.Release{}
	}
	withLog := c.Query("log") == "1"
	if withLog {
		s.fillLogs(ctx, deps, maxLogsListed)
	}
	for _, d := range deps {
		v.Deploys = append(v.Deploys, viewDeploy(d, withLog))
	}
	c.JSON(http.StatusOK, v)
}

// maxLogsListed caps how many deploy logs one listing reads.
const maxLogsListed = 20

// fillLogs reads the logs of the first max deploys: the platform lists
// deploys without them, to keep listings cheap.
func (s *Server) fillLogs(ctx context.Context, deps []deploy.Rollout, max int) {
	for i := range deps {
		if i >= max {
			return
		}
		if deps[i].Log != "" {
			continue
		}
		if d, err := s.reader.DeployByID(ctx, deps[i].ID); err == nil {
			deps[i].Log = d.Log
		}
	}
}

// rollback re-runs an old release ({"release":"v3"}; empty: the one before
// the current). It streams the log like a deploy, or answers JSON when the
// client accepts only JSON.
func (s *Server) rollback(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		Release string `json:"release"`
	}
	if strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
		body.Release = c.PostForm("release")
	} else if err := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		s.fail(c, fmt.Errorf("rollback body: %v: %w", err, deploy.ErrInvalid))
		return
	}
	if body.Release != "" && !releaseRE.MatchString(body.Release) {
		s.fail(c, fmt.Errorf("release %q: must look like v3: %w", body.Release, deploy.ErrInvalid))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.reader.App(ctx, name); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	if wantsJSON(c) {
		var log strings.Builder
		rel, err := s.actor.Rollback(ctx, name, body.Release, &log)
		if err != nil {
			s.fail(c, err) // the platform names the operation and the app
			return
		}
		c.JSON(http.StatusOK, gin.H{"release": rel, "url": s.appURL(ctx, name), "log": log.String()})
		return
	}
	lw := newLineWriter(c)
	defer lw.close()
	lw.begin()
	rel, err := s.actor.Rollback(ctx, name, body.Release, lw)
	if err != nil {
		fmt.Fprintf(lw, "rollback failed: %s\n", oneLine(err.Error()))
		return
	}
	fmt.Fprintf(lw, "rollback succeeded: %s %s\n", rel.Name, s.appURL(ctx, name))
}

// wantsJSON reports whether the client asked for JSON and not text.
func wantsJSON(c *gin.Context) bool {
	a := c.GetHeader("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/plain")
}

func (s *Server) appURL(ctx context.Context, name string) string {
	a, err := s.reader.App(ctx, name)
	if err != nil || a.URL == "" {
		return name
	}
	return a.URL
}

func (s *Server) logs(c *gin.Context) {
	if _, ok := s.lookup(c); !ok {
		return
	}
	name, ctx := c.Param("app"), c.Request.Context()
	follow := c.Query("follow") == "1" || c.Query("follow") == "true"
	lw := newLineWriter(c)
	defer lw.close()
	if follow {
		lw.begin()
		var cancel context.CancelFunc
		ctx, cancel = s.streamContext(c)
		defer cancel()
	}
	err := s.reader.Logs(ctx, name, follow, lw)
	if err == nil && !lw.hasStarted() {
		lw.begin() // no output yet: an empty 200, not a 404 from gin
	}
	s.finish(c, lw, wrapIf(err, "logs of "+name))
}

func wrapIf(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// getDeploy answers a deploy record as JSON, or with ?follow=1 streams its
// log until it ends, then its outcome as the last line.
func (s *Server) getDeploy(c *gin.Context) {
	id := c.Param("id")
	ctx := c.Request.Context()
	d, err := s.reader.DeployByID(ctx, id)
	if err != nil {
		s.fail(c, fmt.Errorf("deploy %s: %w", id, err))
		return
	}
	if c.Query("follow") != "1" && c.Query("follow") != "true" {
		c.JSON(http.StatusOK, viewDeploy(d, true))
		return
	}
	lw := newLineWriter(c)
	defer lw.close()
	lw.begin()
	ctx, cancel := s.streamContext(c)
	defer cancel()
	if err := s.reader.FollowDeploy(ctx, id, lw); err != nil {
		s.finish(c, lw, fmt.Errorf("follow deploy %s: %w", id, err))
		return
	}
	if d, err = s.reader.DeployByID(ctx, id); err != nil {
		s.finish(c, lw, fmt.Errorf("deploy %s: %w", id, err))
		return
	}
	s.outcome(ctx, lw, d)
}

// outcome writes a finished deploy's last line, the one the CLI reads.
func (s *Server) outcome(ctx context.Context, w io.Writer, d deploy.Rollout) {
	switch d.Status {
	case deploy.RolloutSucceeded:
		fmt.Fprintf(w, "deploy succeeded: %s\n", s.appURL(ctx, d.App))
	case deploy.RolloutFailed, deploy.RolloutSuperseded:
		reason := d.Error
		if reason == "" {
			reason = string(d.Status)
		}
		fmt.Fprintf(w, "deploy failed: %s\n", oneLine(reason))
	}
}
