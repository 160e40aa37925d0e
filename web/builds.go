package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// buildBuckets are the bounds of flock_build_duration_seconds: builds take
// seconds (a cached static site) to minutes (a cold npm install).
var buildBuckets = []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}

// Builder is what TimedBuilder wraps and is: the one method of the
// pipeline's builder (deploy.Builder), declared here so web depends on no
// more of the pipeline than it uses.
type Builder interface {
	Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (slug, command string, err error)
}

// Label values of flock_build_duration_seconds' result and
// flock_deploys_total's status.
const (
	resultSucceeded = "succeeded"
	resultFailed    = "failed"
)

// TimedBuilder is a Builder that times every build it passes on to
// the builder it wraps: flock_build_duration_seconds gets one sample per
// build, when the build ends. A rollout, a rollback or a wait in the
// deploy queue is not a build and is not timed.
type TimedBuilder struct {
	b        Builder
	duration *prometheus.HistogramVec
	now      func() time.Time
}

// TimeBuilds wraps b and registers flock_build_duration_seconds with reg.
// Wire the result into the pipeline in place of b, and give it to the
// server (Config.Builds) so a destroyed app's series go with it.
func TimeBuilds(b Builder, reg prometheus.Registerer) (*TimedBuilder, error) {
	if b == nil || reg == nil {
		return nil, errors.New("time builds: builder and registerer are required")
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flock_build_duration_seconds",
		Help:    "How long each build (source tree to slug) took, by app and result (succeeded, failed).",
		Buckets: buildBuckets,
	}, []string{"app", "result"})
	if err := reg.Register(h); err != nil {
		return nil, fmt.Errorf("time builds: %w", err)
	}
	return &TimedBuilder{b: b, duration: h, now: time.Now}, nil
}

// Build runs the wrapped builder and observes how long it took.
func (t *TimedBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	start := t.now()
	slug, command, err := t.b.Build(ctx, dir, app, release, cmd, log)
	result := resultSucceeded
	if err != nil {
		result = resultFailed
	}
	t.duration.WithLabelValues(app, result).Observe(t.now().Sub(start).Seconds())
	return slug, command, err
}

// forget drops the series of a destroyed app.
func (t *TimedBuilder) forget(app string) {
	t.duration.DeletePartialMatch(prometheus.Labels{"app": app})
}

var _ Builder = (*TimedBuilder)(nil)
