package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics reads /metrics as Prometheus does, with the token, and
// lints the whole page (Flock's, the waker's, Go's and the process's).
func scrapeMetrics(t *testing.T, f *flock) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+f.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %s %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	return mfs
}

// sumOf adds the values (or histogram sample counts) of every series of
// a family whose app label is app.
func sumOf(mfs map[string]*dto.MetricFamily, name, app string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "app" && l.GetValue() == app {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, true
}

// TestMetricsOfADeploy scrapes a real Flock after one deploy and a few
// requests: one build sample, one deploy counted, the requests counted,
// the types right.
func TestMetricsOfADeploy(t *testing.T) {
	f := newFlock(t, "--scale-every", "300ms")
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	// Requests served by a worker that a reload retires between two
	// ticks are not seen (the count errs low, never high), so requests go
	// on until five are counted.
	var mfs map[string]*dto.MetricFamily
	testkit.WaitFor(t, 20*time.Second, "5 requests counted", func() bool {
		if code, _, _ := f.get("hello.localhost"); code != 200 {
			t.Fatalf("GET hello: %d", code)
		}
		mfs = scrapeMetrics(t, f)
		n, _ := sumOf(mfs, "flock_app_requests_total", "hello")
		return n >= 5
	})
	types := map[string]dto.MetricType{
		"flock_build_duration_seconds": dto.MetricType_HISTOGRAM,
		"flock_deploys_total":          dto.MetricType_COUNTER,
		"flock_app_requests_total":     dto.MetricType_COUNTER,
		"flock_app_state":              dto.MetricType_GAUGE,
		"flock_app_up":                 dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		if mf := mfs[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("%s: %v, want a %s", name, mf.GetType(), typ)
		}
	}
	if _, ok := mfs["flock_app_request_rate"]; ok {
		t.Error("flock_app_request_rate is still served")
	}
	for name, want := range map[string]float64{
		"flock_build_duration_seconds": 1, // one build, one sample, however often scraped
		"flock_deploys_total":          1,
		"flock_app_up":                 1,
		"flock_app_state":              1, // one state at 1, the others at 0
	} {
		if got, _ := sumOf(mfs, name, "hello"); got != want {
			t.Errorf("%s{app=hello} = %v, want %v", name, got, want)
		}
	}
	if got, _ := sumOf(scrapeMetrics(t, f), "flock_build_duration_seconds", "hello"); got != 1 {
		t.Errorf("after another scrape: %v build samples, want 1", got)
	}
}
