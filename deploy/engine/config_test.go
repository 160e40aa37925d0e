package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
)

// envApp copies testdata/envapp: GET /NAME answers the variable NAME.
func envApp(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "envapp")
	if out, err := exec.Command("cp", "-r", filepath.Join("testdata", "envapp"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy envapp: %v %s", err, out)
	}
	return dst
}

// envOf asks every healthy instance of app for the variable name and
// returns the answers.
func envOf(t *testing.T, p *platform, app, name string) []string {
	t.Helper()
	a, err := p.svc.App(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range a.Instances {
		if !in.Healthy {
			continue
		}
		resp, err := http.Get("http://" + in.Host + ":" + strconv.Itoa(in.Port) + "/" + name)
		if err != nil {
			t.Fatalf("GET /%s of %s: %v", name, in.ID, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, string(b))
	}
	return out
}

func wantEnv(t *testing.T, p *platform, app, name, want string) {
	t.Helper()
	got := envOf(t, p, app, name)
	if len(got) == 0 {
		t.Fatalf("%s has no healthy instance to ask for %s", app, name)
	}
	for _, v := range got {
		if v != want {
			t.Fatalf("%s=%q served by %s, want %q (all: %q)", name, v, app, want, got)
		}
	}
}

func ptr(s string) *string { return &s }

// TestConfigVars sets config vars through the Service on a real app (the
// embedded scheduler, node) and checks what the app's instances see, what
// reads show, rollback, sleep and a restart.
func TestConfigVars(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	p := startPlatform(t, dataDir)
	events, unsub := p.svc.Subscribe()
	defer unsub()
	const secret = "s3cret-value-42"

	// An empty app takes config before its first deploy.
	a, err := p.svc.Create(ctx, "envapp")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != deploy.StateStopped || a.Release != "" {
		t.Fatalf("created app: state %s release %q, want stopped without a release", a.State, a.Release)
	}
	if _, err := p.svc.Create(ctx, "envapp"); !errors.Is(err, deploy.ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	if _, err := p.svc.Create(ctx, "Bad_Name"); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("create Bad_Name: %v, want ErrInvalid", err)
	}
	rel, err := p.svc.SetConfig(ctx, "envapp", map[string]*string{"GREETING": ptr("from config"), "SECRET": ptr(secret)}, io.Discard)
	if err != nil || rel.Name != "" {
		t.Fatalf("config set before the first deploy: %v, release %q", err, rel.Name)
	}

	// The first deploy runs with it; config overrides the descriptor's env.
	var log bytes.Buffer
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "envapp", Dir: envApp(t)}, &log); err != nil {
		t.Fatalf("deploy: %v\n%s", err, log.String())
	}
	wantEnv(t, p, "envapp", "GREETING", "from config")
	wantEnv(t, p, "envapp", "COLOR", "blue")
	wantEnv(t, p, "envapp", "SECRET", secret)

	// A change is a new release from the same slug, no build.
	log.Reset()
	rel, err = p.svc.SetConfig(ctx, "envapp", map[string]*string{"GREETING": ptr("hi")}, &log)
	if err != nil {
		t.Fatalf("config set: %v\n%s", err, log.String())
	}
	if rel.Name != "v2" || rel.Trigger != "config: set GREETING" || strings.Contains(log.String(), "Building") {
		t.Errorf("config release %s trigger %q; log:\n%s", rel.Name, rel.Trigger, log.String())
	}
	wantEnv(t, p, "envapp", "GREETING", "hi")

	// Bad keys and values change nothing.
	for _, patch := range []map[string]*string{
		{"PORT": ptr("1")}, {"PORT0": ptr("1")}, {"HOST": ptr("x")}, {"FLOCK_APP": ptr("x")}, {"1ABC": ptr("x")},
		{"A-B": ptr("x")}, {"OK": ptr("x"), "BAD KEY": ptr("x")}, {"NUL": ptr("a\x00b")}, {},
	} {
		_, err := p.svc.SetConfig(ctx, "envapp", patch, io.Discard)
		if !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("config set %v: %v, want ErrInvalid", slices.Collect(mapsKeys(patch)), err)
		}
	}
	cfg, _ := p.svc.Config(ctx, "envapp")
	if len(cfg) != 2 || cfg["GREETING"] != "hi" || cfg["SECRET"] != secret {
		t.Errorf("config after refused changes: %v", keysOf(cfg))
	}
	if a, _ := p.svc.App(ctx, "envapp"); a.Release != "v2" {
		t.Errorf("a refused change made release %s", a.Release)
	}

	// Unset, then roll back: the rollback brings the old config back.
	if _, err := p.svc.SetConfig(ctx, "envapp", map[string]*string{"SECRET": nil}, io.Discard); err != nil {
		t.Fatal(err)
	}
	wantEnv(t, p, "envapp", "SECRET", "(unset)")
	if _, err := p.svc.Rollback(ctx, "envapp", "v2", io.Discard); err != nil {
		t.Fatal(err)
	}
	wantEnv(t, p, "envapp", "SECRET", secret)
	if cfg, _ := p.svc.Config(ctx, "envapp"); cfg["SECRET"] != secret {
		t.Errorf("config after rollback to v2 lacks SECRET: keys %v", keysOf(cfg))
	}

	// Reads show keys, never values.
	a, _ = p.svc.App(ctx, "envapp")
	if !slices.Equal(a.ConfigKeys, []string{"GREETING", "SECRET"}) {
		t.Errorf("app's configKeys %v", a.ConfigKeys)
	}
	rels, _ := p.svc.Releases(ctx, "envapp")
	deps, _ := p.svc.Deploys(ctx, "envapp")
	var logs strings.Builder
	for _, d := range deps {
		full, _ := p.svc.DeployByID(ctx, d.ID)
		logs.WriteString(full.Log)
	}
	shown, _ := json.Marshal([]any{a, rels, deps, logs.String()})
	if bytes.Contains(shown, []byte(secret)) || bytes.Contains(shown, []byte("from config")) {
		t.Errorf("a config value shows in an app, its releases or its deploy logs:\n%s", shown)
	}
	if !bytes.Contains(shown, []byte(`"configKeys":["GREETING","SECRET"]`)) {
		t.Errorf("releases do not list configKeys:\n%s", shown)
	}

	// A sleeping app stays asleep; its next wake runs the new release.
	if err := p.svc.Sleep(ctx, "envapp"); err != nil {
		t.Fatal(err)
	}
	rel, err = p.svc.SetConfig(ctx, "envapp", map[string]*string{"GREETING": ptr("after sleep")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, _ = p.svc.App(ctx, "envapp")
	if a.State != deploy.StateSleeping || len(a.Instances) != 0 || a.Release != rel.Name {
		t.Fatalf("after config set while asleep: state %s, %d instances, release %s (want %s)", a.State, len(a.Instances), a.Release, rel.Name)
	}
	if err := p.svc.Wake(ctx, "envapp"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "envapp awake", func() bool {
		a, _ := p.svc.App(ctx, "envapp")
		return a.HealthyCount() > 0
	})
	wantEnv(t, p, "envapp", "GREETING", "after sleep")

	for done := false; !done; {
		select {
		case e := <-events:
			if strings.Contains(e.Message, secret) || strings.Contains(e.Message, "after sleep") {
				t.Errorf("event carries a value: %+v", e)
			}
		default:
			done = true
		}
	}

	// A restart keeps the config.
	p.stop()
	p = startPlatform(t, dataDir)
	testkit.WaitFor(t, 30*time.Second, "envapp back after the restart", func() bool {
		a, err := p.svc.App(ctx, "envapp")
		return err == nil && a.HealthyCount() > 0
	})
	wantEnv(t, p, "envapp", "GREETING", "after sleep")
	if cfg, _ := p.svc.Config(ctx, "envapp"); cfg["SECRET"] != secret {
		t.Errorf("config after a restart: keys %v", keysOf(cfg))
	}
}

// TestConfigRolloutFailureKeepsOldConfig: a config change whose release
// does not come up leaves the old release serving and the old config.
func TestConfigRolloutFailureKeepsOldConfig(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir())
	if _, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "envapp", Dir: envApp(t)}, io.Discard); err != nil {
		t.Fatal(err)
	}
	// NODE_OPTIONS naming a missing module makes node exit at start.
	_, err := p.svc.SetConfig(ctx, "envapp", map[string]*string{"NODE_OPTIONS": ptr("--require /nonexistent.js")}, io.Discard)
	if err == nil {
		t.Fatal("a config change whose instances never start succeeded")
	}
	wantEnv(t, p, "envapp", "NODE_OPTIONS", "(unset)")
	if cfg, _ := p.svc.Config(ctx, "envapp"); len(cfg) != 0 {
		t.Errorf("config after a failed change: %v, want none", keysOf(cfg))
	}
	if a, _ := p.svc.App(ctx, "envapp"); a.Release != "v1" || a.State != deploy.StateRunning {
		t.Errorf("after a failed change: release %s state %s, want v1 running", a.Release, a.State)
	}
}

func keysOf(m map[string]string) []string { return deploy.ConfigKeys(m) }

func mapsKeys(m map[string]*string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// gatedBuilder holds every build until the gate it finds when the build
// starts closes; a test stores a new gate to hold the builds after.
type gatedBuilder struct {
	deploy.Builder
	gate *atomic.Pointer[chan struct{}]
}

func (b gatedBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	<-*b.gate.Load()
	return b.Builder.Build(ctx, dir, app, release, cmd, log)
}

// TestConfigChangeBesideDeploys: a config change made during the first
// deploy is in the release it makes; one made while a push waits in the
// queue does not supersede the push, which runs with it.
func TestConfigChangeBesideDeploys(t *testing.T) {
	ctx := context.Background()
	var gates atomic.Pointer[chan struct{}]
	gate := make(chan struct{})
	gates.Store(&gate)
	p := startPlatform(t, t.TempDir(), func(b deploy.Builder) deploy.Builder { return gatedBuilder{b, &gates} })
	dir := envApp(t)
	first := make(chan error, 1)
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "envapp", Dir: dir, Commit: "first"}, io.Discard)
		first <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the first deploy building", func() bool {
		a, err := p.svc.App(ctx, "envapp")
		return err == nil && a.State == deploy.StateDeploying
	})
	// The first deploy's build has started (and read the config): a
	// change now queues a config release behind it.
	changed := make(chan deploy.Release, 1)
	go func() {
		rel, err := p.svc.SetConfig(ctx, "envapp", map[string]*string{"GREETING": ptr("one")}, io.Discard)
		if err != nil {
			t.Errorf("config set during a deploy: %v", err)
		}
		changed <- rel
	}()
	testkit.WaitFor(t, 10*time.Second, "the config change queued", func() bool {
		ds, _ := p.svc.Deploys(ctx, "envapp")
		return len(ds) == 2
	})
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The build takes the config when it makes its release, so v1 has
	// it and the queued change finds nothing left to do.
	if rel := <-changed; rel.Name != "v1" || rel.Config["GREETING"] != "one" {
		t.Fatalf("the config change during the first deploy answered %q with GREETING=%q, want v1 with one", rel.Name, rel.Config["GREETING"])
	}
	wantEnv(t, p, "envapp", "GREETING", "one")

	// A push waits behind a slow one (its build held until the config
	// change is made, not an app slow to listen for a time a busy machine
	// could outlast); a config change then rides on it.
	slow := envApp(t)
	held := make(chan struct{})
	gates.Store(&held)
	running := make(chan error, 1)
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "envapp", Dir: slow, Commit: "slow"}, io.Discard)
		running <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the slow deploy running", func() bool {
		a, _ := p.svc.App(ctx, "envapp")
		return a.State == deploy.StateDeploying
	})
	waiting := make(chan error, 1)
	go func() {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: "envapp", Dir: dir, Commit: "waiting"}, io.Discard)
		waiting <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the push queued", func() bool {
		ds, _ := p.svc.Deploys(ctx, "envapp")
		return len(ds) == 4 && ds[0].Status == deploy.RolloutQueued
	})
	var log bytes.Buffer
	rel, err := p.svc.SetConfig(ctx, "envapp", map[string]*string{"GREETING": ptr("two")}, &log)
	close(held)
	if err != nil || rel.Name != "" || !strings.Contains(log.String(), "the deploy waiting") {
		t.Fatalf("config set with a push waiting: %v %q\n%s", err, rel.Name, log.String())
	}
	if err := <-running; err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the waiting push: %v, want it to run", err)
	}
	a, _ := p.svc.App(ctx, "envapp")
	if a.Commit != "waiting" {
		t.Errorf("live commit %q, want the waiting push's", a.Commit)
	}
	wantEnv(t, p, "envapp", "GREETING", "two")
}
