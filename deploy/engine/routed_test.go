package engine_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/engine"
	"github.com/flock-paas/flock/deploy/local"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/flock-paas/flock/router"
)

// TestDeployIsLiveOnceRouted: a deploy reports its release live only once
// HAProxy routes the app's host, so a request sent the moment Deploy
// returns is answered by the app, not by HAProxy's "no app answers" page
// (a new app's backend needs a reload, debounced and validated first).
// The engine waits on the router through engine.Router; the router
// follows the engine's events (Follow), as in flock up.
func TestDeployIsLiveOnceRouted(t *testing.T) {
	for _, bin := range []string{"node", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			if bin == "haproxy" && os.Getenv("FLOCK_REQUIRE_HAPROXY") == "1" {
				t.Fatalf("haproxy is required (FLOCK_REQUIRE_HAPROXY=1): %v", err)
			}
			t.Skipf("%s is not installed", bin)
		}
	}
	dataDir := t.TempDir()
	rtDir, err := os.MkdirTemp("", "rt") // short: it holds Unix sockets
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rtDir) })
	// Ports below the ephemeral range (testkit.FreeAddr): a port of
	// 127.0.0.1:0 freed again could be taken by the source port of any
	// connection, an app's check or a request, before HAProxy binds it.
	httpAddr := testkit.FreeAddr(t)
	rt, err := router.New(router.Config{Dir: rtDir, HTTPAddr: httpAddr, StatsAddr: testkit.FreeAddr(t), DrainTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := engine.OpenStore(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b, err := builder.New(builder.Config{Dir: filepath.Join(dataDir, "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := local.New(local.Config{Dir: filepath.Join(dataDir, "instances"), StopGrace: 2 * time.Second, Drainer: rt,
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
	svc, err := engine.New(engine.Config{Domain: "localhost", Artifacts: filepath.Join(dataDir, "artifacts"), Router: rt}, store, sched, b)
	if err != nil {
		t.Fatal(err)
	}
	rt.Follow(svc)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{sched.Run, svc.Run, rt.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-rt.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("haproxy not serving after 30s")
	}

	for _, name := range []string{"hello", "hello-again"} {
		dir := example(t, "hello")
		// No stability window: the rollout ends the moment the instance
		// is healthy, before the router could have heard of it.
		pkg := filepath.Join(dir, "package.json")
		b, err := os.ReadFile(pkg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pkg, []byte(strings.Replace(string(b), `"ports": 1`, `"ports": 1, "stableSeconds": 0`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		if _, err := svc.Deploy(ctx, deploy.DeployRequest{App: name, Dir: dir, Trigger: "test"}, &log); err != nil {
			t.Fatalf("deploy %s: %v\n%s", name, err, log.String())
		}
		code, body := getHost(t, httpAddr, name+".localhost")
		if code != 200 || !strings.Contains(body, "Hello from Flock") {
			t.Errorf("GET %s.localhost the moment the deploy reported it live: %d %.80q", name, code, body)
		}
	}
}

// getHost sends one GET / to addr with the Host header host.
func getHost(t *testing.T, addr, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
