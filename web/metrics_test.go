package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics as Prometheus does: through the text parser. It
// also lints the page with promlint (the rules of `promtool check
// metrics`), so a name or a help text against the conventions fails.
func scrape(t testing.TB, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	w := do(t, s.Handler(), req{path: "/metrics", token: testToken})
	if w.Code != 200 {
		t.Fatalf("/metrics = %d %s", w.Code, w.Body.String())
	}
	body := w.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("lint /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	return mfs
}

// metricOf finds the metric of family name whose labels are the given
// name=value pairs, and returns it; nil when there is none.
func metricOf(mfs map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a gauge's or a counter's value, NaN-free: -1 when missing.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := metricOf(mfs, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return -1
}

func TestMetrics(t *testing.T) {
	other := prometheus.NewRegistry()
	wake := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flock_wake_phase_seconds", Help: "test"})
	other.MustRegister(wake)
	wake.Observe(0.2)
	s, f := newTestServer(t, func(c *Config) { c.Gatherer = other })
	if err := f.Sleep(t.Context(), "world"); err != nil {
		t.Fatal(err)
	}
	mfs := scrape(t, s)

	types := map[string]dto.MetricType{
		"flock_app_instances":                    dto.MetricType_GAUGE,
		"flock_app_healthy_instances":            dto.MetricType_GAUGE,
		"flock_app_desired_instances":            dto.MetricType_GAUGE,
		"flock_app_up":                           dto.MetricType_GAUGE,
		"flock_app_state":                        dto.MetricType_GAUGE,
		"flock_app_saved_instance_seconds_total": dto.MetricType_COUNTER,
		"flock_scrape_error":                     dto.MetricType_GAUGE,
		"flock_wake_phase_seconds":               dto.MetricType_HISTOGRAM,
	}
	for name, typ := range types {
		if mf := mfs[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("%s: %v, want a %s", name, mf.GetType(), typ)
		}
	}
	for name, mf := range mfs {
		if isCounter := mf.GetType() == dto.MetricType_COUNTER; isCounter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s: counters, and only counters, end in _total", name, mf.GetType())
		}
		if strings.Contains(name, "rate") {
			t.Errorf("%s: rates are PromQL's job, serve the counter", name)
		}
	}

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"flock_app_instances", []string{"app", "hello"}, 2},
		{"flock_app_instances", []string{"app", "world"}, 0},
		{"flock_app_healthy_instances", []string{"app", "hello"}, 2},
		{"flock_app_desired_instances", []string{"app", "world"}, 1},
		{"flock_app_up", []string{"app", "hello"}, 1},
		{"flock_app_up", []string{"app", "world"}, 0},
		{"flock_app_state", []string{"app", "hello", "state", "running"}, 1},
		{"flock_app_state", []string{"app", "hello", "state", "sleeping"}, 0},
		{"flock_app_state", []string{"app", "world", "state", "sleeping"}, 1},
		{"flock_app_state", []string{"app", "world", "state", "running"}, 0},
		{"flock_app_saved_instance_seconds_total", []string{"app", "hello"}, 7200},
		{"flock_scrape_error", []string{"what", "apps"}, 0},
	}
	for _, c := range checks {
		if got := value(mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The enum: every state of every app, whatever the app's state, so
	// no series comes and goes when an app changes state.
	if n, want := len(mfs["flock_app_state"].GetMetric()), 2*len(states); n != want {
		t.Errorf("flock_app_state has %d series, want %d", n, want)
	}
	if h := metricOf(mfs, "flock_wake_phase_seconds"); h.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("other gatherer's histogram: %v", h)
	}
}

// TestMetricsNoStateLabels changes an app's state and checks that the
// set of series stays the same: no label takes the app's state as value.
func TestMetricsNoStateLabels(t *testing.T) {
	s, f := newTestServer(t, nil)
	series := func() []string {
		var out []string
		for name, mf := range scrape(t, s) {
			for _, m := range mf.GetMetric() {
				out = append(out, fmt.Sprint(name, m.GetLabel()))
			}
		}
		sort.Strings(out)
		return out
	}
	before := series()
	if err := f.Sleep(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	after := series()
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("series changed with the app's state:\nbefore %v\nafter  %v", before, after)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := newTestServer(t, func(c *Config) { c.Registerer, c.Gatherer = reg, reg })
	body := do(t, s.Handler(), req{path: "/metrics", token: testToken}).Body.String()
	if strings.Count(body, "# TYPE flock_app_up gauge") != 1 {
		t.Errorf("flock_app_up served %d times, want once", strings.Count(body, "# TYPE flock_app_up gauge"))
	}
}

// TestDeploysCounted feeds the server the events the Service sends and
// checks flock_deploys_total counts ends only, and forgets a destroyed app.
func TestDeploysCounted(t *testing.T) {
	s, f := newTestServer(t, func(c *Config) { c.SampleEvery = time.Hour })
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	testkit.WaitFor(t, 5*time.Second, "Run to subscribe", func() bool { return f.subscribers() == 1 })
	for _, ev := range []deploy.Event{
		{App: "hello", Type: "deploy", State: deploy.StateDeploying, Rollout: deploy.RolloutRunning, Message: "deploy started"},
		{App: "hello", Type: "deploy", Rollout: deploy.RolloutSucceeded, Message: "deploy succeeded: v2"},
		{App: "hello", Type: "deploy", Rollout: deploy.RolloutFailed, Message: "deploy failed: build: npm ci: exit status 1"},
		{App: "world", Type: "deploy", Rollout: deploy.RolloutSucceeded, Message: "deploy succeeded: v2"},
		{App: "hello", Type: "release", Message: "v2 live"},
		{App: "world", Type: "deploy", Rollout: deploy.RolloutSucceeded, Message: "deploy succeeded: v3"},
		{App: "world", Type: "destroyed"},
		{App: "hello", Type: "deploy", Rollout: deploy.RolloutSucceeded, Message: "deploy succeeded: v3"},
	} {
		f.Emit(ev)
	}
	var mfs map[string]*dto.MetricFamily
	testkit.WaitFor(t, 5*time.Second, "the last deploy counted", func() bool {
		mfs = scrape(t, s)
		return value(mfs, "flock_deploys_total", "app", "hello", "status", "succeeded") == 2
	})
	if got := value(mfs, "flock_deploys_total", "app", "hello", "status", "failed"); got != 1 {
		t.Errorf("hello failed = %v, want 1", got)
	}
	if got := value(mfs, "flock_deploys_total", "app", "world", "status", "succeeded"); got != -1 {
		t.Errorf("destroyed world still has flock_deploys_total = %v", got)
	}
}

// stubBuilder builds at once, failing with err when set.
type stubBuilder struct {
	err error
}

func (b stubBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	return "slug", "cmd", b.err
}

// TestTimedBuilder: one build, one sample of its own duration, labelled
// with its result; a destroyed app's series go.
func TestTimedBuilder(t *testing.T) {
	reg := prometheus.NewRegistry()
	ok, err := TimeBuilds(stubBuilder{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	// A clock of its own: the build takes 42 s by it, whatever the
	// machine's load does to a real sleep.
	var reads int
	ok.now = func() time.Time {
		reads++
		return time.Unix(1_700_000_000, 0).Add(time.Duration(reads-1) * 42 * time.Second)
	}
	if _, err := TimeBuilds(stubBuilder{}, reg); err == nil {
		t.Error("a second TimeBuilds on the same registry succeeded")
	}
	s, f := newTestServer(t, func(c *Config) { c.Registerer, c.Gatherer, c.Builds = reg, reg, ok })
	if _, _, err := ok.Build(t.Context(), "", "hello", "v2", "", io.Discard); err != nil {
		t.Fatal(err)
	}
	bad := &TimedBuilder{b: stubBuilder{err: errors.New("npm ci: exit status 1")}, duration: ok.duration, now: time.Now}
	if _, _, err := bad.Build(t.Context(), "", "world", "v2", "", io.Discard); err == nil {
		t.Fatal("the failing build did not fail")
	}
	mfs := scrape(t, s)
	if typ := mfs["flock_build_duration_seconds"].GetType(); typ != dto.MetricType_HISTOGRAM {
		t.Fatalf("flock_build_duration_seconds is a %v", typ)
	}
	h := metricOf(mfs, "flock_build_duration_seconds", "app", "hello", "result", "succeeded").GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 42 {
		t.Errorf("hello: %d samples, sum %v; want 1 of 42 s", h.GetSampleCount(), h.GetSampleSum())
	}
	// Scraping again observes nothing: the samples are the builds'.
	mfs = scrape(t, s)
	if n := metricOf(mfs, "flock_build_duration_seconds", "app", "hello", "result", "succeeded").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("after a second scrape: %d samples, want 1", n)
	}
	if n := metricOf(mfs, "flock_build_duration_seconds", "app", "world", "result", "failed").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("failed build: %d samples, want 1", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	testkit.WaitFor(t, 5*time.Second, "Run to subscribe", func() bool { return f.subscribers() == 1 })
	if err := f.Destroy(t.Context(), "world"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "world's build series to go", func() bool {
		return metricOf(scrape(t, s), "flock_build_duration_seconds", "app", "world", "result", "failed") == nil
	})
}
