package engine_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/engine"
)

// fakeScheduler keeps instances in memory and follows the Scheduler
// contract's shape: Deploy starts spec.Instances instances of the release
// and retires the others, unless the release is in unhealthy, which fails
// the deploy with ErrUnhealthy and leaves the old release serving.
type fakeScheduler struct {
	mu        sync.Mutex
	apps      map[string][]deploy.Instance
	specs     map[string]deploy.Spec // last spec deployed, by scheduler app
	unhealthy map[string]bool        // release names that never pass
	removed   []string
	changes   chan string
	seq       int
}

func newFakeScheduler() *fakeScheduler {
	return &fakeScheduler{apps: map[string][]deploy.Instance{}, specs: map[string]deploy.Spec{},
		unhealthy: map[string]bool{}, changes: make(chan string, 64)}
}

func (f *fakeScheduler) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeScheduler) Deploy(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unhealthy[spec.Release] && spec.Instances > 0 {
		return fmt.Errorf("%s %s: %w", spec.App, spec.Release, deploy.ErrUnhealthy)
	}
	f.specs[spec.App] = spec
	f.apps[spec.App] = f.start(spec.Release, spec.Instances)
	f.notify(spec.App)
	return nil
}

// start makes n healthy instances of release; f.mu is held.
func (f *fakeScheduler) start(release string, n int) []deploy.Instance {
	ins := make([]deploy.Instance, 0, n)
	for range n {
		f.seq++
		ins = append(ins, deploy.Instance{ID: fmt.Sprintf("i%d", f.seq), Release: release, Host: "127.0.0.1",
			Port: 10000 + f.seq, Ports: []int{10000 + f.seq}, Healthy: true, StartedAt: time.Now()})
	}
	return ins
}

func (f *fakeScheduler) Scale(ctx context.Context, app string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	spec, ok := f.specs[app]
	if !ok {
		return fmt.Errorf("scale %s: %w", app, deploy.ErrNotFound)
	}
	spec.Instances = n
	f.specs[app] = spec
	f.apps[app] = f.start(spec.Release, n)
	f.notify(app)
	return nil
}

func (f *fakeScheduler) Remove(ctx context.Context, app string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.apps, app)
	delete(f.specs, app)
	f.removed = append(f.removed, app)
	f.notify(app)
	return nil
}

func (f *fakeScheduler) Instances(ctx context.Context, app string) ([]deploy.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]deploy.Instance(nil), f.apps[app]...), nil
}

func (f *fakeScheduler) Logs(ctx context.Context, app string, follow bool, w io.Writer) error {
	return deploy.ErrUnsupported
}

func (f *fakeScheduler) Changes() <-chan string { return f.changes }

func (f *fakeScheduler) notify(app string) {
	select {
	case f.changes <- app:
	default:
	}
}

// spec returns the spec last deployed for app.
func (f *fakeScheduler) spec(app string) (deploy.Spec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.specs[app]
	return s, ok
}

// fakeBuilder writes a slug file per release and counts builds; a source
// tree with a file named FAIL fails its build.
type fakeBuilder struct {
	dir    string
	mu     sync.Mutex
	builds int
}

func (b *fakeBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	b.mu.Lock()
	b.builds++
	b.mu.Unlock()
	fmt.Fprintf(log, "building %s %s\n", app, release)
	if _, err := os.Stat(filepath.Join(dir, "FAIL")); err == nil {
		return "", "", fmt.Errorf("build of %s failed: npm ERR! missing script: build", app)
	}
	slug := filepath.Join(b.dir, app, release+".tar.gz")
	if err := os.MkdirAll(filepath.Dir(slug), 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(slug, []byte("slug of "+release), 0o644); err != nil {
		return "", "", err
	}
	if cmd == "" {
		cmd = "node server.js"
	}
	return slug, cmd, nil
}

func (b *fakeBuilder) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds
}

// unit is a Service over the fakes, in a temp data dir, running until the
// test ends.
type unit struct {
	svc   *engine.Service
	store *engine.Store
	sched *fakeScheduler
	b     *fakeBuilder
	stop  func()
}

func startUnit(t *testing.T, dataDir string, sched *fakeScheduler) *unit {
	t.Helper()
	store, err := engine.OpenStore(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBuilder{dir: filepath.Join(dataDir, "artifacts")}
	svc, err := engine.New(engine.Config{Domain: "localhost", Artifacts: b.dir}, store, sched, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	u := &unit{svc: svc, store: store, sched: sched, b: b}
	u.stop = sync.OnceFunc(func() { cancel(); <-done; store.Close() })
	t.Cleanup(u.stop)
	return u
}

// source writes a source tree for app whose descriptor says instances
// and env; extra files are written beside it.
func source(t *testing.T, app string, instances int, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	desc := fmt.Sprintf(`{"name": %q, "flock": {"instances": %d, "env": {"GREETING": "hi"}}}`, app, instances)
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(desc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
