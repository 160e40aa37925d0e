package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// liveView is the part of the app page that follows the app's events.
type liveView struct {
	appRow
	Idle      string
	Domains   []string
	Instances []instView
	Chart     chartView

	// ConfigKeys names the config vars; values never reach a page.
	ConfigKeys []string
}

type instView struct {
	ID, Host, Release, Uptime string
	Process                   string // "web", or a Procfile type such as "worker"
	LastExit                  string // why its last run ended, when it was restarted
	Port                      int
	Healthy                   bool
}

// chartView is the requests and instances chart over the last hour.
type chartView struct {
	W, H           float64
	Rate, Inst     string
	MaxRate        string
	MaxInst        int
	Empty          bool
	GridY1, GridY2 float64
}

// entry is one line of an app's history: a deploy record, or a release
// that has none (kept from before records, or made elsewhere).
type entry struct {
	Release, Commit, Trigger, When, Duration, Outcome, Error string
	DeployID, Log                                            string
	LogTrimmed, Current, CanRollback                         bool
	at                                                       time.Time
}

type releasesPart struct {
	App     string
	CSRF    string
	Entries []entry
}

type appData struct {
	layout
	Name     string
	Live     liveView
	Releases releasesPart
}

func (s *Server) live(a deploy.App, csrf string) liveView {
	now := time.Now()
	v := liveView{appRow: s.row(a, now, csrf), Idle: a.Idle, Domains: a.Domains, ConfigKeys: a.ConfigKeys}
	view := func(process string, in deploy.Instance) instView {
		return instView{
			ID: in.ID, Host: in.Host, Port: in.Port, Release: in.Release, Process: process,
			Healthy: in.Healthy, Uptime: span(now.Sub(in.StartedAt)), LastExit: in.LastExit,
		}
	}
	for _, in := range a.Instances {
		v.Instances = append(v.Instances, view("web", in))
	}
	for _, p := range a.Processes {
		for _, in := range p.Instances {
			v.Instances = append(v.Instances, view(p.Type, in))
		}
	}
	ss := s.history.series(a.Name)
	r := plot(ss, now, chartW, chartH, chartPoints, rateOf)
	maxInst := 0
	for _, x := range ss {
		if int(x.inst) > maxInst {
			maxInst = int(x.inst)
		}
	}
	// Instances share the rate's axis height but have their own scale.
	in := plot(ss, now, chartW, chartH, chartPoints, instOf)
	v.Chart = chartView{W: chartW, H: chartH, Rate: r.Points, Inst: in.Points,
		MaxRate: rate(r.Max), MaxInst: maxInst, Empty: len(ss) == 0,
		GridY1: chartH / 2, GridY2: 0.5}
	return v
}

func (s *Server) releaseHistory(ctx context.Context, a deploy.App, csrf string) (releasesPart, error) {
	rels, err := s.reader.Releases(ctx, a.Name)
	if err != nil {
		return releasesPart{}, fmt.Errorf("releases of %s: %w", a.Name, err)
	}
	deps, err := s.reader.Deploys(ctx, a.Name)
	if err != nil {
		return releasesPart{}, fmt.Errorf("deploys of %s: %w", a.Name, err)
	}
	s.fillLogs(ctx, deps, maxLogsListed)
	known := map[string]bool{}
	for _, r := range rels {
		known[r.Name] = true
	}
	p := releasesPart{App: a.Name, CSRF: csrf}
	covered := map[string]bool{}
	for _, d := range deps {
		e := entry{Release: d.Release, Commit: shortCommit(d.Commit), Trigger: d.Trigger,
			Outcome: string(d.Status), Error: d.Error, DeployID: d.ID, Log: d.Log, at: d.QueuedAt}
		if d.StartedAt != nil && d.FinishedAt != nil {
			e.Duration = span(d.FinishedAt.Sub(*d.StartedAt))
		}
		if len(e.Log) > maxLogInPage {
			e.Log, e.LogTrimmed = e.Log[len(e.Log)-maxLogInPage:], true
		}
		if d.Release != "" && d.Status == deploy.RolloutSucceeded {
			covered[d.Release] = true
		}
		p.Entries = append(p.Entries, e)
	}
	for _, r := range rels {
		if covered[r.Name] {
			continue
		}
		p.Entries = append(p.Entries, entry{Release: r.Name, Commit: shortCommit(r.Commit),
			Trigger: r.Trigger, Outcome: "released", at: r.CreatedAt})
	}
	sort.SliceStable(p.Entries, func(i, j int) bool { return p.Entries[i].at.After(p.Entries[j].at) })
	now := time.Now()
	for i := range p.Entries {
		e := &p.Entries[i]
		t := e.at
		e.When = ago(&t, now)
		e.Current = e.Release != "" && e.Release == a.Release
		e.CanRollback = csrf != "" && known[e.Release] && !e.Current
	}
	return p, nil
}

func (s *Server) appPage(c *gin.Context) {
	a, ok := s.lookup(c)
	if !ok {
		return
	}
	l := s.layoutFor(c, a.Name)
	rp, err := s.releaseHistory(c.Request.Context(), a, l.CSRF)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "app", "page", appData{layout: l, Name: a.Name, Live: s.live(a, l.CSRF), Releases: rp})
}

func (s *Server) liveFragment(c *gin.Context) {
	a, ok := s.lookup(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, "parts", "live", s.live(a, s.layoutFor(c, "").CSRF))
}

func (s *Server) releasesFragment(c *gin.Context) {
	a, ok := s.lookup(c)
	if !ok {
		return
	}
	rp, err := s.releaseHistory(c.Request.Context(), a, s.layoutFor(c, "").CSRF)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "parts", "releases", rp)
}

type deployData struct {
	layout
	D        deployView
	Running  bool
	Duration string
}

// deployPage shows one deploy; while it runs, its log streams in live.
func (s *Server) deployPage(c *gin.Context) {
	id := c.Param("id")
	d, err := s.reader.DeployByID(c.Request.Context(), id)
	if err != nil {
		s.fail(c, fmt.Errorf("deploy %s: %w", id, err))
		return
	}
	v := deployData{layout: s.layoutFor(c, "Deploy "+d.App), D: viewDeploy(d, true),
		Running: d.Status == deploy.RolloutQueued || d.Status == deploy.RolloutRunning}
	if v.D.DurationSeconds != nil {
		v.Duration = span(time.Duration(*v.D.DurationSeconds * float64(time.Second)))
	}
	s.render(c, http.StatusOK, "deploy", "page", v)
}
