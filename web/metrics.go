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

// buildBuckets are the bounds of flock_build_duration_seconds: builds take
// seconds (a cached static site) to minutes (a cold npm install).
var buildBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}

// collector reads the platform at scrape time, so the numbers are never
// older than the scrape and nothing has to be kept in step by hand.
type collector struct {
	p   Reader
	log interface {
		Warn(msg string, args ...any)
	}

	instances, healthy, desired, up, rate, saved, deploys, builds, scrapeErr *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		p:         s.reader,
		log:       s.log,
		instances: d("flock_app_instances", "Instances of the app, any health, labelled with the app's state.", "app", "state"),
		healthy:   d("flock_app_healthy_instances", "Instances of the app that pass their checks.", "app"),
		desired:   d("flock_app_desired_instances", "Instances wanted while the app is awake.", "app"),
		up:        d("flock_app_up", "1 while the app is running, else 0; the state is a label.", "app", "state"),
		rate:      d("flock_app_request_rate", "Requests per second over the scaler's last tick.", "app"),
		saved:     d("flock_app_saved_instance_seconds_total", "Instance-seconds saved by sleeping.", "app"),
		deploys:   d("flock_deploys_total", "Deploys and rollbacks of the app by outcome.", "app", "status"),
		builds:    d("flock_build_duration_seconds", "How long finished deploys took, from start to outcome.", "app"),
		scrapeErr: d("flock_scrape_error", "1 when the platform could not be read for this scrape.", "what"),
	}
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.instances, c.healthy, c.desired, c.up, c.rate, c.saved, c.deploys, c.builds, c.scrapeErr} {
		ch <- d
	}
}

// Collect reads every app and its deploy records.
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
	deployErr := 0.0
	for _, a := range apps {
		st := string(a.State)
		ch <- prometheus.MustNewConstMetric(c.instances, g, float64(len(a.Instances)), a.Name, st)
		ch <- prometheus.MustNewConstMetric(c.healthy, g, float64(a.HealthyCount()), a.Name)
		ch <- prometheus.MustNewConstMetric(c.desired, g, float64(a.Desired), a.Name)
		up := 0.0
		if a.State == deploy.StateRunning {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, g, up, a.Name, st)
		ch <- prometheus.MustNewConstMetric(c.rate, g, a.RequestRate, a.Name)
		ch <- prometheus.MustNewConstMetric(c.saved, prometheus.CounterValue, a.SavedInstanceSeconds, a.Name)

		deps, err := c.p.Deploys(ctx, a.Name)
		if err != nil {
			deployErr = 1
			continue
		}
		byStatus := map[deploy.RolloutStatus]float64{deploy.RolloutSucceeded: 0, deploy.RolloutFailed: 0}
		buckets := make(map[float64]uint64, len(buildBuckets))
		for _, b := range buildBuckets {
			buckets[b] = 0
		}
		var n uint64
		var sum float64
		for _, d := range deps {
			byStatus[d.Status]++
			if d.StartedAt == nil || d.FinishedAt == nil {
				continue
			}
			sec := d.FinishedAt.Sub(*d.StartedAt).Seconds()
			n++
			sum += sec
			for _, b := range buildBuckets {
				if sec <= b {
					buckets[b]++
				}
			}
		}
		for st, v := range byStatus {
			ch <- prometheus.MustNewConstMetric(c.deploys, prometheus.CounterValue, v, a.Name, string(st))
		}
		ch <- prometheus.MustNewConstHistogram(c.builds, n, sum, buckets, a.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErr, g, 0, "apps")
	ch <- prometheus.MustNewConstMetric(c.scrapeErr, g, deployErr, "deploys")
}

// newMetrics registers the collector and returns the /metrics handler,
// serving it beside cfg.Gatherer's metrics.
func (s *Server) newMetrics() (http.Handler, error) {
	reg := s.cfg.Registerer
	var gs prometheus.Gatherers
	if reg == nil {
		own := prometheus.NewRegistry()
		reg = own
		gs = append(gs, own)
	}
	if err := reg.Register(newCollector(s)); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("web: register metrics: %w", err)
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
