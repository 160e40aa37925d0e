package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/local"
)

// platform is a Service over the real builder and the real embedded
// scheduler, in a temp data dir. wrap, when given, wraps the builder (a
// builder that keeps logging, or panics).
type platform struct {
	svc    *engine.Service
	store  *engine.Store
	cancel context.CancelFunc
	done   chan struct{}
}

func startPlatform(t *testing.T, dataDir string, wrap ...func(deploy.Builder) deploy.Builder) *platform {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	store, err := engine.OpenStore(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	real, err := builder.New(builder.Config{Dir: filepath.Join(dataDir, "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	var b deploy.Builder = real
	for _, w := range wrap {
		b = w(b)
	}
	sched, err := local.New(local.Config{Dir: filepath.Join(dataDir, "instances"), StopGrace: 2 * time.Second,
		Unpack: func(slug, dir string) error {
			f, err := os.Open(slug)
			if err != nil {
				return err
			}
			defer f.Close()
			return builder.Unpack(f, dir, 0)
		}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := engine.New(engine.Config{Domain: "localhost", APIHosts: []string{"flock.example.com"}, Artifacts: filepath.Join(dataDir, "artifacts")}, store, sched, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &platform{svc: svc, store: store, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sched.Run(ctx) }()
	go func() { defer wg.Done(); svc.Run(ctx) }()
	go func() { wg.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *platform) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	p.store.Close()
	p.cancel = nil
}

func example(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", "-r", filepath.Join("..", "..", "docs", "examples", name), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", name, err, out)
	}
	return dst
}

func get(t *testing.T, in deploy.Instance) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + in.Host + ":" + strconv.Itoa(in.Port) + "/")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServiceLifecycle(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir())
	dir := example(t, "hello")

	var log bytes.Buffer
	rel, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: dir, Commit: "abc123", Trigger: "test"}, &log)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log.String())
	}
	if rel.Name != "v1" || rel.App != "hello" {
		t.Fatalf("release %s of %s, want v1 of hello", rel.Name, rel.App)
	}
	if !strings.Contains(log.String(), "live at http://hello.localhost") {
		t.Errorf("deploy log does not end with the URL:\n%s", log.String())
	}
	a, err := p.svc.App(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != deploy.StateRunning || a.HealthyCount() != a.Desired || a.Commit != "abc123" {
		t.Fatalf("app after deploy: %+v", a)
	}
	if code, body := get(t, a.Instances[0]); code != 200 || !strings.Contains(body, "v1") {
		t.Errorf("instance answers %d %q", code, body)
	}

	events, unsub := p.svc.Subscribe()
	defer unsub()

	if err := p.svc.Scale(ctx, "hello", -1); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("scale -1: %v, want ErrInvalid", err)
	}
	if err := p.svc.Scale(ctx, "nope", 1); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("scale of an unknown app: %v, want ErrNotFound", err)
	}
	if err := p.svc.Sleep(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	a, _ = p.svc.App(ctx, "hello")
	if a.State != deploy.StateSleeping || len(a.Instances) != 0 {
		t.Errorf("asleep: %s with %d instances", a.State, len(a.Instances))
	}
	select {
	case e := <-events:
		if e.App != "hello" {
			t.Errorf("event for %s", e.App)
		}
	case <-time.After(5 * time.Second):
		t.Error("no event after sleep")
	}
	// Many concurrent wakes: one scale-up.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); p.svc.Wake(ctx, "hello") }()
	}
	wg.Wait()
	testkit.WaitFor(t, 15*time.Second, "awake and healthy", func() bool {
		a, _ = p.svc.App(ctx, "hello")
		return a.State == deploy.StateRunning && a.HealthyCount() == a.Desired
	})
	if len(a.Instances) != a.Desired {
		t.Errorf("50 wakes started %d instances, want %d", len(a.Instances), a.Desired)
	}
	if a.SavedInstanceSeconds <= 0 {
		t.Errorf("sleeping saved nothing: %v", a.SavedInstanceSeconds)
	}

	// A release that never starts fails and v1 keeps serving.
	bad := example(t, "hello")
	os.WriteFile(filepath.Join(bad, "server.js"), []byte("process.exit(2)\n"), 0o644)
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: bad}, io.Discard); err == nil {
		t.Fatal("deploy of an app that exits at once succeeded")
	}
	a, _ = p.svc.App(ctx, "hello")
	if a.Release != "v1" || a.State != deploy.StateRunning {
		t.Errorf("after a failed deploy: %s %s", a.Release, a.State)
	}

	rel, err = p.svc.Rollback(ctx, "hello", "v1", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Name != "v3" || rel.Trigger != "rollback to v1" {
		t.Errorf("rollback made %s (%s), want v3 (rollback to v1): v2 failed and keeps its number", rel.Name, rel.Trigger)
	}
	ds, err := p.svc.Deploys(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, d := range ds {
		statuses = append(statuses, string(d.Status))
	}
	if got := strings.Join(statuses, ","); got != "succeeded,failed,succeeded" {
		t.Errorf("deploy records newest first: %s", got)
	}

	if err := p.svc.Destroy(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.svc.App(ctx, "hello"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("destroyed app: %v", err)
	}
}

// TestServiceReconcilesAfterRestart: desired state survives a restart; the
// scheduler is brought back to it.
func TestServiceReconcilesAfterRestart(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	p := startPlatform(t, dataDir)
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: example(t, "hello")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.Scale(ctx, "hello", 2); err != nil {
		t.Fatal(err)
	}
	p.stop()

	p = startPlatform(t, dataDir)
	testkit.WaitFor(t, 20*time.Second, "2 healthy instances after restart", func() bool {
		a, err := p.svc.App(ctx, "hello")
		return err == nil && a.HealthyCount() == 2
	})
}

// TestDeployQueueSupersedes: while a deploy runs, a newer one replaces the
// one waiting behind it.
func TestDeployQueueSupersedes(t *testing.T) {
	ctx := context.Background()
	var gates atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gates.Store(&open)
	p := startPlatform(t, t.TempDir(), func(b deploy.Builder) deploy.Builder { return gatedBuilder{b, &gates} })
	dir := example(t, "hello")
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// A slow release keeps the queue busy while two more arrive: its
	// build is held until the third has superseded the second (an app
	// slow to listen gave them a time a busy machine could outlast).
	slow := example(t, "hello")
	held := make(chan struct{})
	gates.Store(&held)
	errs := make(chan error, 3)
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: slow, Commit: "slow"}, io.Discard)
		errs <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the slow deploy running", func() bool {
		a, _ := p.svc.App(ctx, "hello")
		return a.State == deploy.StateDeploying
	})
	second := make(chan error, 1)
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: dir, Commit: "second"}, io.Discard)
		second <- err
	}()
	var queuedID string
	testkit.WaitFor(t, 10*time.Second, "the second deploy queued", func() bool {
		ds, _ := p.svc.Deploys(ctx, "hello")
		if len(ds) == 3 {
			queuedID = ds[0].ID
		}
		return len(ds) == 3
	})
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: dir, Commit: "third"}, io.Discard)
		errs <- err
	}()
	if err := <-second; !errors.Is(err, deploy.ErrSuperseded) {
		t.Errorf("the queued deploy: %v, want ErrSuperseded", err)
	}
	close(held)
	// Its record says so at once, not when the deploy that replaced it
	// ends.
	if d, err := p.svc.DeployByID(ctx, queuedID); err != nil || d.Status != deploy.RolloutSuperseded {
		t.Errorf("the queued deploy's record: %v %+v, want status superseded", err, d.Status)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Errorf("deploy: %v", err)
		}
	}
	a, _ := p.svc.App(ctx, "hello")
	if a.Commit != "third" {
		t.Errorf("live commit %q, want third", a.Commit)
	}
}
