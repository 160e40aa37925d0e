package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// Sizes of the SVG sparkline (apps page) and chart (app page).
const (
	sparkW, sparkH, sparkPoints = 120.0, 24.0, 60
	chartW, chartH, chartPoints = 600.0, 160.0, 120
	maxLogInPage                = 64 << 10
)

// layout is what every page's frame needs.
type layout struct {
	Title    string
	CSRF     string // empty: no session, so no action forms
	LoggedIn bool
}

func (s *Server) layoutFor(c *gin.Context, title string) layout {
	l := layout{Title: title}
	if se := s.identify(c).session; se != nil {
		l.CSRF, l.LoggedIn = se.csrf, true
	}
	return l
}

// appRow is one row of the apps page, everything already formatted.
type appRow struct {
	Name, URL, State     string
	Healthy, Desired     int
	Release, Commit      string
	LastRequest          string
	Rate, RateMax, Saved string
	Spark                string
	SavedSeconds         int64
	Error                string
	CSRF                 string
	CanSleep, CanWake    bool
}

func (s *Server) row(a deploy.App, now time.Time, csrf string) appRow {
	sp := plot(s.history.series(a.Name), now, sparkW, sparkH, sparkPoints, rateOf)
	return appRow{
		Name:         a.Name,
		URL:          a.URL,
		State:        string(a.State),
		Healthy:      a.HealthyCount(),
		Desired:      a.Desired,
		Release:      a.Release,
		Commit:       shortCommit(a.Commit),
		LastRequest:  ago(a.LastRequestAt, now),
		Rate:         rate(a.RequestRate),
		RateMax:      rate(sp.Max),
		Saved:        hours(a.SavedInstanceSeconds),
		SavedSeconds: int64(a.SavedInstanceSeconds),
		Spark:        sp.Points,
		Error:        a.Error,
		CSRF:         csrf,
		CanSleep:     a.State == deploy.StateRunning || a.State == deploy.StateWaking || a.State == deploy.StateDeploying,
		CanWake:      a.State == deploy.StateSleeping || a.State == deploy.StateStopped || a.State == deploy.StateFailed,
	}
}

type appsData struct {
	layout
	Rows   []appRow
	Counts []stateCount
	Saved  string
}

type stateCount struct {
	State string
	N     int
}

func (s *Server) appsPage(c *gin.Context) {
	apps, err := s.reader.Apps(c.Request.Context())
	if err != nil {
		s.fail(c, fmt.Errorf("list apps: %w", err))
		return
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	d := appsData{layout: s.layoutFor(c, "Apps"), Rows: make([]appRow, 0, len(apps))}
	now := time.Now()
	counts := map[string]int{}
	saved := 0.0
	for _, a := range apps {
		d.Rows = append(d.Rows, s.row(a, now, d.CSRF))
		counts[string(a.State)]++
		saved += a.SavedInstanceSeconds
	}
	for _, st := range []deploy.State{deploy.StateRunning, deploy.StateSleeping, deploy.StateWaking, deploy.StateDeploying, deploy.StateFailed, deploy.StateStopped} {
		if n := counts[string(st)]; n > 0 {
			d.Counts = append(d.Counts, stateCount{string(st), n})
		}
	}
	d.Saved = hours(saved)
	s.render(c, http.StatusOK, "apps", "page", d)
}

func (s *Server) rowFragment(c *gin.Context) {
	a, ok := s.lookup(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "parts", "row", s.row(a, time.Now(), s.layoutFor(c, "").CSRF))
}

// lookup finds the :app or answers the error.
func (s *Server) lookup(c *gin.Context) (deploy.App, bool) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return deploy.App{}, false
	}
	a, err := s.reader.App(c.Request.Context(), name)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return deploy.App{}, false
	}
	return a, true
}

// formAction runs a dashboard form's action. The page's script posts with
// Accept: application/json and gets JSON; a browser without script gets
// sent back to the page the form was on.
func (s *Server) formAction(what string, f func(ctx context.Context, name string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		name, err := appName(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := f(c.Request.Context(), name); err != nil {
			s.fail(c, err) // the platform names the operation and the app
			return
		}
		s.done(c, "/apps/"+name, what+" "+name)
	}
}

func (s *Server) done(c *gin.Context, back, msg string) {
	if wantsJSON(c) {
		c.JSON(http.StatusOK, gin.H{"ok": true, "message": msg})
		return
	}
	if b := c.PostForm("back"); b != "" {
		back = safeNext(b)
	}
	c.Redirect(http.StatusSeeOther, back)
}

func (s *Server) formScale(c *gin.Context) {
	n, process, err := instancesParam(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if process != "" && process != "web" {
		s.formAction("scale "+process+" to "+strconv.Itoa(n), func(ctx context.Context, name string) error {
			return s.actor.ScaleProcess(ctx, name, process, n)
		})(c)
		return
	}
	s.formAction("scale to "+strconv.Itoa(n), func(ctx context.Context, name string) error {
		return s.actor.Scale(ctx, name, n)
	})(c)
}

// formDestroy destroys an app once the user typed its name to confirm.
func (s *Server) formDestroy(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if c.PostForm("confirm") != name {
		s.fail(c, fmt.Errorf("type the app's name (%s) to confirm: %w", name, deploy.ErrInvalid))
		return
	}
	if err := s.actor.Destroy(c.Request.Context(), name); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	if wantsJSON(c) {
		c.JSON(http.StatusOK, gin.H{"ok": true, "message": "destroyed " + name})
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

// ago says how long ago t was, the way a person would.
func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < 10*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// span writes a duration short: "45s", "3m 20s", "2h 5m", "3d 4h".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours()/24), int(d.Hours())%24)
}

func rate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

func hours(sec float64) string {
	h := sec / 3600
	if h < 10 {
		return strconv.FormatFloat(h, 'f', 1, 64) + " h"
	}
	return strconv.FormatFloat(h, 'f', 0, 64) + " h"
}
