package marathon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// fixtures holds real Marathon documents (testdata/marathon/SOURCES.md says where each comes from).
const fixtures = "testdata/marathon"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func newFake(t testing.TB, opts marathontest.Options) *marathontest.Server {
	t.Helper()
	f := marathontest.New(opts)
	t.Cleanup(f.Close)
	return f
}

// newSched returns a Scheduler with test timings against urls.
func newSched(t testing.TB, cfg Config) *Scheduler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.DeployTimeout == 0 {
		cfg.DeployTimeout = 10 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.pollEvery = 10 * time.Millisecond
	s.debounce = 10 * time.Millisecond
	s.retryBase = 5 * time.Millisecond
	s.backoffMax = 50 * time.Millisecond
	return s
}

// run runs s until the test ends.
func run(t testing.TB, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	go func() { // a reader for Changes, as the router would be
		for {
			select {
			case <-s.Changes():
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func testSpec(app, release string, n int) deploy.Spec {
	return deploy.Spec{
		App: app, Release: release, Commit: "abc123", Command: "node server.js",
		SlugURL: "http://flock.example:8080/artifacts/" + app + "/" + release + ".tar.gz", Instances: n,
		Env: map[string]string{"GREETING": "hi"},
		Descriptor: deploy.Descriptor{Name: app, Instances: n, CPUs: 0.1, Mem: 32, Ports: 1,
			Checks: []deploy.Check{{Path: "/", IntervalSeconds: 15, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}}},
	}
}

// requests returns the recorded requests matching method and path.
func requests(f *marathontest.Server, method, path string) []marathontest.Request {
	var out []marathontest.Request
	for _, r := range f.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func lastBody(t testing.TB, f *marathontest.Server, method, path string) map[string]any {
	t.Helper()
	rs := requests(f, method, path)
	if len(rs) == 0 {
		t.Fatalf("no %s %s recorded", method, path)
	}
	var m map[string]any
	if err := json.Unmarshal(rs[len(rs)-1].Body, &m); err != nil {
		t.Fatalf("%s %s body: %v", method, path, err)
	}
	return m
}

func query(r marathontest.Request) url.Values {
	v, _ := url.ParseQuery(r.Query)
	return v
}

// drains records the instances a Drainer was asked to drain.
type drains struct {
	mu  sync.Mutex
	ids []string
}

func (d *drains) Drain(_ context.Context, app string, in deploy.Instance) error {
	d.mu.Lock()
	d.ids = append(d.ids, app+"/"+in.ID)
	d.mu.Unlock()
	return nil
}

func (d *drains) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ids...)
}

// managed adds Flock's labels to every app of a GET /v2/apps document, as
// if Flock had made them.
func managed(t testing.TB, doc []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for _, a := range m["apps"].([]any) {
		app := a.(map[string]any)
		labels, _ := app["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
		}
		labels[managedLabel] = "true"
		labels[releaseLabel] = "v1"
		app["labels"] = labels
	}
	b, _ := json.Marshal(m)
	return b
}

func instanceIDs(ins []deploy.Instance) []string {
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids
}

// drainChanges empties Changes of what is pending now.
func drainChanges(s *Scheduler) {
	for {
		select {
		case <-s.Changes():
		case <-time.After(100 * time.Millisecond):
			return
		}
	}
}

// newKill builds Marathon's kill-and-scale request for one task, as an
// operator's curl would send it.
func newKill(base, task string) (*http.Request, error) {
	req, err := http.NewRequest("POST", base+"/v2/tasks/delete?scale=true", strings.NewReader(`{"ids":["`+task+`"]}`))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

func f2client() *http.Client { return &http.Client{Timeout: 5 * time.Second} }
