package web

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	other := prometheus.NewRegistry()
	wake := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flock_wake_phase_seconds", Help: "test"})
	other.MustRegister(wake)
	wake.Observe(0.2)
	s, f := newTestServer(t, func(c *Config) { c.Gatherer = other })
	if err := f.Sleep(t.Context(), "world"); err != nil {
		t.Fatal(err)
	}
	w := do(t, s.Handler(), req{path: "/metrics", token: testToken})
	if w.Code != 200 {
		t.Fatalf("/metrics = %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{
		`flock_app_instances{app="hello",state="running"} 2`,
		`flock_app_instances{app="world",state="sleeping"} 0`,
		`flock_app_healthy_instances{app="hello"} 2`,
		`flock_app_desired_instances{app="world"} 1`,
		`flock_app_up{app="hello",state="running"} 1`,
		`flock_app_up{app="world",state="sleeping"} 0`,
		`flock_app_request_rate{app="hello"} 1.5`,
		`flock_app_saved_instance_seconds_total{app="hello"} 7200`,
		`flock_deploys_total{app="hello",status="succeeded"} 1`,
		`flock_deploys_total{app="hello",status="failed"} 0`,
		`flock_build_duration_seconds_bucket{app="hello",le="30"} 1`,
		`flock_build_duration_seconds_bucket{app="hello",le="20"} 0`,
		`flock_build_duration_seconds_count{app="hello"} 1`,
		`flock_wake_phase_seconds_count 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
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
