package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// states are the values of flock_app_state's state label. Every app has
// one series per state (1 for the app's state, 0 for the others), so no
// series appears or vanishes when an app changes state: the Prometheus
// enum pattern, as kube-state-metrics' kube_pod_status_phase.
var states = []deploy.State{
	deploy.StateDeploying, deploy.StateRunning, deploy.StateSleeping, deploy.StateWaking,
	deploy.StateFailed, deploy.StateCrashed, deploy.StateStopped,
}

// collector reads the platform at scrape time, so the gauges are never
// older than the scrape and nothing has to be kept in step by hand. It
// holds no counter of events: those are observed when they happen
// (deployCounter, TimedBuilder, the scaler's request counter).
type collector struct {
	p   Reader
	log interface {
		Warn(msg string, args ...any)
	}

	instances, healthy, desired, up, state, saved, scrapeErr *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		p:         s.reader,
		log:       s.log,
		instances: d("flock_app_instances", "Instances of the app, whatever their health.", "app"),
		healthy:   d("flock_app_healthy_instances", "Instances of the app that pass their checks.", "app"),
		desired:   d("flock_app_desired_instances", "Instances wanted while the app is awake.", "app"),
		up:        d("flock_app_up", "1 while the app is in state running, else 0.", "app"),
		state:     d("flock_app_state", "1 for the app's current state, 0 for every other state.", "app", "state"),
		saved:     d("flock_app_saved_instance_seconds_total", "Instance-seconds saved by sleeping.", "app"),
		scrapeErr: d("flock_scrape_error", "1 when the platform could not be read for this scrape.", "what"),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.instances, c.healthy, c.desired, c.up, c.state, c.saved, c.scrapeErr} {
		ch <- d
	}
}

// Collect reads every app once; it reads no deploy records.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := prometheus.GaugeValue
	apps, err := c.p.Apps(ctx)
	if err != nil {
		c.log.Warn("metrics: list apps", "err", err)
		ch <- prometheus.MustNewConstMetric(c.scrapeErr, g, 1, "apps")
		return
	}
	for _, a := range apps {
		ch <- prometheus.MustNewConstMetric(c.instances, g, float64(len(a.Instances)), a.Name)
		ch <- prometheus.MustNewConstMetric(c.healthy, g, float64(a.HealthyCount()), a.Name)
		ch <- prometheus.MustNewConstMetric(c.desired, g, float64(a.Desired), a.Name)
		ch <- prometheus.MustNewConstMetric(c.up, g, oneIf(a.State == deploy.StateRunning), a.Name)
		for _, st := range states {
			ch <- prometheus.MustNewConstMetric(c.state, g, oneIf(a.State == st), a.Name, string(st))
		}
		ch <- prometheus.MustNewConstMetric(c.saved, prometheus.CounterValue, a.SavedInstanceSeconds, a.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErr, g, 0, "apps")
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// deployCounter counts deploys and rollbacks as they end, from the
// platform's "deploy" events, so the count only grows while Flock runs
// (the deploy records it could be read from are pruned to the last 100 of
// each app, which would make a counter go down).
type deployCounter struct {
	total *prometheus.CounterVec
}

func newDeployCounter() *deployCounter {
	return &deployCounter{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flock_deploys_total",
		Help: "Deploys and rollbacks that ended since Flock started, by app and status (succeeded, failed).",
	}, []string{"app", "status"})}
}

// observe counts the end of a deploy and forgets a destroyed app's series.
// A deploy's end is the "deploy" event without a state whose message
// starts "deploy succeeded" or "deploy failed" (engine.Service's wording);
// its start carries state deploying.
func (d *deployCounter) observe(ev deploy.Event) {
	switch {
	case ev.Type == "destroyed":
		d.total.DeletePartialMatch(prometheus.Labels{"app": ev.App})
	case ev.Type != "deploy":
	case ev.Rollout == deploy.RolloutSucceeded:
		d.total.WithLabelValues(ev.App, resultSucceeded).Inc()
	case ev.Rollout == deploy.RolloutFailed:
		d.total.WithLabelValues(ev.App, resultFailed).Inc()
	}
}

// newMetrics registers the collectors and returns the /metrics handler,
// serving them beside cfg.Gatherer's metrics.
func (s *Server) newMetrics() (http.Handler, error) {
	reg := s.cfg.Registerer
	var gs prometheus.Gatherers
	if reg == nil {
		own := prometheus.NewRegistry()
		reg = own
		gs = append(gs, own)
	}
	for _, c := range []prometheus.Collector{newCollector(s), s.deploys.total} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("web: register metrics: %w", err)
			}
			if c == s.deploys.total {
				// A second server on the same registry counts into the first's.
				s.deploys.total = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	if g, ok := reg.(prometheus.Gatherer); ok && s.cfg.Registerer != nil && g != s.cfg.Gatherer {
		gs = append(gs, g)
	}
	if s.cfg.Gatherer != nil {
		gs = append(gs, s.cfg.Gatherer)
	}
	return promhttp.HandlerFor(gs, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

var _ prometheus.Collector = (*collector)(nil)
