package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// flockBin is the flock binary built once for the end-to-end tests: they
// drive Flock as a user does, through its CLI and its ports.
var flockBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flock-e2e-")
	if err != nil {
		panic(err)
	}
	flockBin = filepath.Join(dir, "flock")
	args := []string{"build", "-o", flockBin}
	if os.Getenv("FLOCK_E2E_RACE") == "1" {
		// The race detector in the platform itself; stop fails a test
		// whose flock reported a race.
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build flock: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// flock is one running `flock up` and the addresses it serves.
type flock struct {
	t       testing.TB
	dataDir string
	http    string // HAProxy
	api     string
	stats   string
	waker   string
	extra   []string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
	out     *testkit.Buffer
}

// newFlock prepares (does not start) a Flock with its own data dir and ports.
func newFlock(t testing.TB, extra ...string) *flock {
	testkit.RequireHAProxy(t)
	f := &flock{
		t: t, dataDir: t.TempDir(), extra: extra,
		http:  fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
		api:   fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
		stats: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
		waker: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)),
	}
	t.Cleanup(f.stop)
	return f
}

func (f *flock) start() {
	f.t.Helper()
	args := append([]string{"up", "--data-dir", f.dataDir, "--http", f.http, "--api", f.api,
		"--stats", f.stats, "--waker", f.waker, "--log-level", "debug"}, f.extra...)
	f.out = &testkit.Buffer{}
	f.cmd = exec.Command(flockBin, args...)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.cmd.Env = append(os.Environ(), "FLOCK_TOKEN=")
	if err := f.cmd.Start(); err != nil {
		f.t.Fatalf("start flock: %v", err)
	}
	exited := make(chan struct{})
	f.exited = exited
	cmd := f.cmd
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			f.t.Fatalf("flock up exited at start:\n%s", f.out.String())
		default:
		}
		resp, err := http.Get("http://" + f.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("flock did not become healthy:\n%s", f.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends flock with SIGTERM, as Ctrl-C would.
func (f *flock) stop() {
	if f.cmd == nil {
		return
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(20 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
		f.t.Errorf("flock did not stop on SIGTERM within 20s:\n%s", f.out.String())
	}
	if strings.Contains(f.out.String(), "WARNING: DATA RACE") {
		f.t.Errorf("flock reported a data race")
	}
	if f.t.Failed() {
		f.t.Logf("flock output:\n%s", f.out.String())
	}
	f.cmd = nil
}

// kill ends flock with SIGKILL, leaving whatever it leaves.
func (f *flock) kill() {
	f.cmd.Process.Kill()
	<-f.exited
	f.cmd = nil
}

// cli runs a client command against this flock and returns its output.
func (f *flock) cli(args ...string) (string, error) {
	full := append([]string{"--api-url", "http://" + f.api, "--data-dir", f.dataDir}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, flockBin, full...).CombinedOutput()
	return string(out), err
}

func (f *flock) mustCLI(args ...string) string {
	f.t.Helper()
	out, err := f.cli(args...)
	if err != nil {
		f.t.Fatalf("flock %s: %v\n%s\nflock up said:\n%s", strings.Join(args, " "), err, out, f.out.String())
	}
	return out
}

func (f *flock) apps() map[string]deploy.App {
	f.t.Helper()
	out := f.mustCLI("apps", "--json")
	var list []deploy.App
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		f.t.Fatalf("flock apps --json: %v\n%s", err, out)
	}
	m := map[string]deploy.App{}
	for _, a := range list {
		m[a.Name] = a
	}
	return m
}

// get sends a request for host through HAProxy.
func (f *flock) get(host string) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 70 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (f *flock) token() string {
	b, err := os.ReadFile(filepath.Join(f.dataDir, "token"))
	if err != nil {
		f.t.Fatalf("read token: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// repoRoot finds the repository root (for docs/examples).
func repoRoot(t testing.TB) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}
