package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// memScheduler is a scheduler whose instances are healthy the moment they
// start: enough to drive the real engine.Service from the API.
type memScheduler struct {
	mu      sync.Mutex
	running map[string][]deploy.Instance
	changes chan string
}

func newMemScheduler() *memScheduler {
	return &memScheduler{running: map[string][]deploy.Instance{}, changes: make(chan string, 64)}
}

func (m *memScheduler) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (m *memScheduler) set(app, release string, n int) {
	m.mu.Lock()
	out := make([]deploy.Instance, n)
	for i := range out {
		out[i] = deploy.Instance{ID: fmt.Sprintf("%s-%s-%d", app, release, i), Release: release, Host: "127.0.0.1",
			Port: 30000 + i, Ports: []int{30000 + i}, Healthy: true, StartedAt: time.Now()}
	}
	m.running[app] = out
	m.mu.Unlock()
	select {
	case m.changes <- app:
	default:
	}
}

func (m *memScheduler) Deploy(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	fmt.Fprintf(log, "started %d\n", spec.Instances)
	m.set(spec.App, spec.Release, spec.Instances)
	return nil
}

func (m *memScheduler) Scale(ctx context.Context, app string, n int) error {
	m.mu.Lock()
	rel := "v1"
	if in := m.running[app]; len(in) > 0 {
		rel = in[0].Release
	}
	m.mu.Unlock()
	m.set(app, rel, n)
	return nil
}

func (m *memScheduler) Remove(ctx context.Context, app string) error { m.set(app, "", 0); return nil }

func (m *memScheduler) Instances(ctx context.Context, app string) ([]deploy.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]deploy.Instance(nil), m.running[app]...), nil
}

func (m *memScheduler) Logs(ctx context.Context, app string, follow bool, w io.Writer) error {
	return fmt.Errorf("logs: %w", deploy.ErrUnsupported)
}

func (m *memScheduler) Changes() <-chan string { return m.changes }

type slugBuilder struct{ dir string }

func (b slugBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	fmt.Fprintln(log, "       detected node")
	p := filepath.Join(b.dir, app, release+".tar.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", "", err
	}
	return p, "node server.js", os.WriteFile(p, []byte("slug"), 0o644)
}

// TestWithService drives the real engine.Service through the API: upload,
// list, scale, sleep, wake, releases, rollback, the apps page, metrics.
func TestWithService(t *testing.T) {
	store, err := engine.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	reg := prometheus.NewRegistry()
	builds, err := TimeBuilds(slugBuilder{t.TempDir()}, reg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := engine.New(engine.Config{Domain: "localhost", URLPort: ":8000"}, store, newMemScheduler(), builds)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Token: testToken, Unpack: untar, TempDir: t.TempDir(), Hosts: []string{"flock.example.com"},
		Registerer: reg, Gatherer: reg, Builds: builds}, svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { defer func() { done <- struct{}{} }(); svc.Run(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	h := s.Handler()
	src := tarGz(t, map[string]string{"package.json": `{"name":"demo","scripts":{"start":"node server.js"},"flock":{"instances":1}}`})
	for i := range 2 {
		w := do(t, h, req{method: "POST", path: "/api/v1/deploys?commit=abc" + fmt.Sprint(i), body: string(src), token: testToken})
		if got, want := lastLine(w.Body.String()), "deploy succeeded: http://demo.localhost:8000"; got != want {
			t.Fatalf("deploy %d: last line %q, want %q; log:\n%s", i+1, got, want, w.Body.String())
		}
	}
	bad := tarGz(t, map[string]string{"package.json": `{"name":"demo","flock":{"instances":"many"}}`})
	w := do(t, h, req{method: "POST", path: "/api/v1/deploys?app=demo", body: string(bad), token: testToken})
	if got := lastLine(w.Body.String()); !strings.HasPrefix(got, "deploy failed: package.json") {
		t.Errorf("bad descriptor: last line %q, want deploy failed: package.json…", got)
	}

	app := func() deploy.App {
		t.Helper()
		var a deploy.App
		w := do(t, h, req{path: "/api/v1/apps/demo", token: testToken})
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("GET app: %s", w.Body.String())
		}
		return a
	}
	if a := app(); a.State != deploy.StateRunning || a.Release != "v2" || a.Commit != "abc1" {
		t.Errorf("after two deploys: %s %s %s, want running v2 abc1", a.State, a.Release, a.Commit)
	}
	steps := []struct {
		name string
		r    req
		ok   func(deploy.App) bool
	}{
		{"scale", req{method: "POST", path: "/api/v1/apps/demo/scale", body: `{"instances":3}`}, func(a deploy.App) bool { return a.Desired == 3 }},
		{"sleep", req{method: "POST", path: "/api/v1/apps/demo/sleep"}, func(a deploy.App) bool { return a.State == deploy.StateSleeping }},
		{"wake", req{method: "POST", path: "/api/v1/apps/demo/wake"}, func(a deploy.App) bool { return a.State != deploy.StateSleeping }},
	}
	for _, st := range steps {
		st.r.token = testToken
		if w := do(t, h, st.r); w.Code != 200 {
			t.Fatalf("%s = %d %s", st.name, w.Code, w.Body.String())
		}
		testkit.WaitFor(t, 5*time.Second, st.name, func() bool { return st.ok(app()) })
	}

	w = do(t, h, req{method: "POST", path: "/api/v1/apps/demo/rollback", body: `{"release":"v1"}`, token: testToken})
	if got := lastLine(w.Body.String()); got != "rollback succeeded: v3 http://demo.localhost:8000" {
		t.Errorf("rollback: last line %q; log:\n%s", got, w.Body.String())
	}
	w = do(t, h, req{path: "/api/v1/apps/demo/releases?log=1", token: testToken})
	doc := loadOpenAPI(t)
	conform(t, doc, "Releases", w.Body.Bytes())
	conform(t, doc, "App", do(t, h, req{path: "/api/v1/apps/demo", token: testToken}).Body.Bytes())
	var rv releasesView
	if err := json.Unmarshal(w.Body.Bytes(), &rv); err != nil {
		t.Fatal(err)
	}
	if len(rv.Releases) != 3 || len(rv.Deploys) < 3 || rv.Deploys[0].Log == "" || rv.Deploys[0].Trigger != "rollback to v1" {
		t.Errorf("releases: %d releases, %d deploys, first %+v", len(rv.Releases), len(rv.Deploys), rv.Deploys[0])
	}
	conform(t, doc, "Deploy", do(t, h, req{path: "/api/v1/deploys/" + rv.Deploys[0].ID, token: testToken}).Body.Bytes())
	if w := do(t, h, req{path: "/api/v1/apps/demo/logs", token: testToken}); w.Code != 501 {
		t.Errorf("logs on a scheduler without them = %d, want 501", w.Code)
	}

	sc, _ := login(t, h)
	page := do(t, h, req{path: "/apps/demo", cookies: []*http.Cookie{sc}}).Body.String()
	for _, want := range []string{"rollback to v1", "Roll back to v2", "Building demo v2", `<span class="tag">live</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
	// Two deploys and a rollback succeeded, the bad descriptor failed;
	// two builds ran (the rollback builds nothing, the bad descriptor
	// fails before the build).
	var mfs map[string]*dto.MetricFamily
	testkit.WaitFor(t, 5*time.Second, "3 succeeded deploys in /metrics", func() bool {
		mfs = scrape(t, s)
		return value(mfs, "flock_deploys_total", "app", "demo", "status", "succeeded") == 3
	})
	if got := value(mfs, "flock_deploys_total", "app", "demo", "status", "failed"); got != 1 {
		t.Errorf("failed deploys = %v, want 1", got)
	}
	if n := metricOf(mfs, "flock_build_duration_seconds", "app", "demo", "result", "succeeded").GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("build samples = %d, want 2", n)
	}
	if w := do(t, h, req{method: "DELETE", path: "/api/v1/apps/demo", token: testToken}); w.Code != 200 {
		t.Errorf("destroy = %d %s", w.Code, w.Body.String())
	}
}
