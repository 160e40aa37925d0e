package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
)

// chattyBuilder is the real builder followed by a build step that keeps
// logging: once it has written its first line it waits for resume, then
// writes the rest, as npm does while a client comes and goes.
type chattyBuilder struct {
	deploy.Builder
	lines   int
	resume  chan struct{}
	started chan struct{}
	once    sync.Once
}

func (b *chattyBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	slug, command, err := b.Builder.Build(ctx, dir, app, release, cmd, log)
	fmt.Fprintf(log, "chatty line 0\n")
	b.once.Do(func() { close(b.started) })
	<-b.resume
	for i := 1; i < b.lines; i++ {
		fmt.Fprintf(log, "chatty line %d\n", i)
	}
	return slug, command, err
}

// guardedWriter is a caller's writer that fails the test on any write after
// the call it was handed to returned: the fate of a ResponseWriter after its
// handler returned.
type guardedWriter struct {
	t        *testing.T
	mu       sync.Mutex
	buf      strings.Builder
	returned bool
	late     int
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.returned {
		w.late++
		return 0, errors.New("write after return")
	}
	return w.buf.Write(p)
}

func (w *guardedWriter) close() {
	w.mu.Lock()
	w.returned = true
	w.mu.Unlock()
}

func (w *guardedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestCallerLeavingStopsFollowingNotTheDeploy: the caller of Deploy leaves
// mid-build (a client hung up). Deploy returns at once; nothing is written
// to the caller's writer after that; the deploy goes on and is recorded
// with its whole log. A second caller leaves while its deploy waits in the
// queue and removes its source folder, as every caller does: that deploy
// still builds, from its own copy, which is removed when it ends.
func TestCallerLeavingStopsFollowingNotTheDeploy(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the deploys' own copies of their source go
	chatty := &chattyBuilder{lines: 200, resume: make(chan struct{}), started: make(chan struct{})}
	p := startPlatform(t, t.TempDir(), func(b deploy.Builder) deploy.Builder { chatty.Builder = b; return chatty })
	w := &guardedWriter{t: t}
	ctx, leave := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	src1 := example(t, "hello") // on the test's goroutine: it may call t.Fatal
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: src1, Commit: "c1"}, w)
		w.close()
		returned <- err
	}()
	select {
	case <-chatty.started:
	case <-time.After(60 * time.Second):
		t.Fatal("the build never started")
	}
	testkit.WaitFor(t, 10*time.Second, "the caller to see the first chatty line", func() bool {
		return strings.Contains(w.String(), "chatty line 0")
	})
	leave()
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Deploy after the caller left = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deploy did not return when its caller left")
	}

	// The second caller: queued behind the first, leaves, removes its folder.
	src2 := example(t, "hello")
	ctx2, leave2 := context.WithCancel(context.Background())
	returned2 := make(chan error, 1)
	go func() {
		_, err := p.svc.Deploy(ctx2, deploy.DeployRequest{Dir: src2, Commit: "c2"}, io.Discard)
		returned2 <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the second deploy queued", func() bool {
		ds, _ := p.svc.Deploys(context.Background(), "hello")
		return len(ds) == 2
	})
	leave2()
	if err := <-returned2; !errors.Is(err, context.Canceled) {
		t.Errorf("the queued Deploy after its caller left = %v, want context.Canceled", err)
	}
	if err := os.RemoveAll(src2); err != nil {
		t.Fatal(err)
	}
	close(chatty.resume)

	var ds []deploy.Rollout
	testkit.WaitFor(t, 60*time.Second, "both deploys to finish without their callers", func() bool {
		ds, _ = p.svc.Deploys(context.Background(), "hello")
		return len(ds) == 2 && ds[0].FinishedAt != nil && ds[1].FinishedAt != nil
	})
	for _, d := range ds {
		full, err := p.svc.DeployByID(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Status != deploy.RolloutSucceeded {
			t.Errorf("deploy of %s: %s (%s), want succeeded; log:\n%s", d.Commit, full.Status, full.Error, full.Log)
		}
		if !strings.Contains(full.Log, "chatty line 199\n") || !strings.Contains(full.Log, "is live at") {
			t.Errorf("the record of %s lacks the end of the log:\n%s", d.Commit, full.Log)
		}
	}
	if w.late > 0 {
		t.Errorf("%d writes reached the caller's writer after Deploy returned", w.late)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "flock-source-*")); len(left) > 0 {
		t.Errorf("the deploys' source copies are left behind: %v", left)
	}
}

// panicBuilder panics for one app, as a bug in a build step would.
type panicBuilder struct {
	deploy.Builder
	app string
}

func (b panicBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	if app == b.app {
		fmt.Fprintln(log, "about to panic")
		var m map[string]int
		m["boom"]++ // a nil-map write: a runtime panic
	}
	return b.Builder.Build(ctx, dir, app, release, cmd, log)
}

// TestPanicFailsOnlyItsDeploy: a panic in a deploy's job fails that deploy,
// with the panic in its record; the process, the app's queue and the build
// slots carry on.
func TestPanicFailsOnlyItsDeploy(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir(), func(b deploy.Builder) deploy.Builder { return panicBuilder{b, "boom"} })
	// More panics than build slots: a slot a panic leaked would block the rest.
	for i := range 3 {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "boom", Dir: example(t, "hello")}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "nil map") {
			t.Fatalf("deploy %d of an app whose build panics = %v, want an error naming the panic", i+1, err)
		}
	}
	ds, err := p.svc.Deploys(ctx, "boom")
	if err != nil || len(ds) != 3 {
		t.Fatalf("deploy records of boom: %v %d, want 3", err, len(ds))
	}
	d, err := p.svc.DeployByID(ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != deploy.RolloutFailed || !strings.Contains(d.Error, "panic") || !strings.Contains(d.Log, "about to panic") {
		t.Errorf("record of the panicked deploy: %s %q, log:\n%s", d.Status, d.Error, d.Log)
	}
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{Dir: example(t, "hello")}, io.Discard); err != nil {
		t.Errorf("a deploy of another app after the panics: %v", err)
	}
	a, err := p.svc.App(ctx, "boom")
	if err != nil || a.State != deploy.StateFailed || !strings.Contains(a.Error, "panic") {
		t.Errorf("boom after its panics: %v %s %q, want failed naming the panic", err, a.State, a.Error)
	}
}

// TestActionsWhoseCallerLeft: a scale, a sleep and a wake asked for by a
// client that has already gone (its request's context has ended) are
// carried out whole, so the store and the running instances agree.
func TestActionsWhoseCallerLeft(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	if _, err := p.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: example(t, "hello")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	gone, leave := context.WithCancel(context.Background())
	leave()
	app := func() deploy.App {
		t.Helper()
		a, err := p.svc.App(context.Background(), "hello")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for i := range 10 {
		n := 1 + i%2
		if err := p.svc.Scale(gone, "hello", n); err != nil {
			t.Fatalf("scale %d to %d for a client that left: %v", i+1, n, err)
		}
		if a := app(); a.Desired != n || len(a.Instances) != n {
			t.Fatalf("scale %d to %d: desired %d, %d instances", i+1, n, a.Desired, len(a.Instances))
		}
	}
	if err := p.svc.Sleep(gone, "hello"); err != nil {
		t.Fatalf("sleep for a client that left: %v", err)
	}
	if a := app(); a.State != deploy.StateSleeping || len(a.Instances) != 0 {
		t.Fatalf("after sleep: %s with %d instances", a.State, len(a.Instances))
	}
	if err := p.svc.Wake(gone, "hello"); err != nil {
		t.Fatalf("wake for a client that left: %v", err)
	}
	testkit.WaitFor(t, 20*time.Second, "the woken app healthy", func() bool {
		a := app()
		return a.HealthyCount() == a.Desired && a.Desired == 2
	})
}

// panicWriter is a caller's writer that panics, as a broken
// ResponseWriter does.
type panicWriter struct{}

func (panicWriter) Write(p []byte) (int, error) { panic("broken writer") }

// TestCallerWriterPanics: a caller's writer that panics ends that caller's
// following with an error; the deploy goes on and succeeds.
func TestCallerWriterPanics(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	_, err := p.svc.Deploy(context.Background(), deploy.DeployRequest{Dir: example(t, "hello")}, panicWriter{})
	if err == nil || !strings.Contains(err.Error(), "broken writer") {
		t.Errorf("Deploy with a writer that panics = %v, want an error naming the panic", err)
	}
	testkit.WaitFor(t, 30*time.Second, "the deploy to succeed without its caller", func() bool {
		a, err := p.svc.App(context.Background(), "hello")
		return err == nil && a.Release == "v1" && a.HealthyCount() == 1
	})
}
