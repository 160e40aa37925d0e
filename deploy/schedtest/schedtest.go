// Package schedtest is the conformance suite of the deploy.Scheduler
// contract (deploy/scheduler.go), modelled on Nomad's driver test harness
// (plugins/drivers/testutils): a scheduler's tests give Run a Harness
// that starts the scheduler over some state (a folder, a Marathon), and
// the suite checks, with real processes answering over HTTP, what Flock
// relies on: deploy, a new release replacing the old, an unhealthy
// release leaving the old one serving, scale, sleep to zero and wake,
// health, change events, a crashed instance replaced, destroy, and a new
// scheduler over the same state finding the apps. A third scheduler gets
// these tests by writing a Harness.
//
// The instances run the test binary itself: the package's TestMain calls
// ServeIfApp first, which turns the binary into the suite's app when the
// scheduler starts it.
package schedtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Harness is what a scheduler's tests give the suite.
type Harness struct {
	// Start builds a scheduler over the harness's state (the same folder,
	// the same Marathon every time), with d as its Drainer, and runs it
	// (Run) until leave is called or the test ends. leave ends Run so that
	// the instances keep running, as a Flock that is killed or upgraded
	// leaves them, and returns once Run has returned. Required.
	Start func(t *testing.T, d deploy.Drainer) (s deploy.Scheduler, leave func())
	// Ship makes the slug (a .tar.gz on this machine) reachable by the
	// scheduler: spec.SlugPath for one that runs here, a served
	// spec.SlugURL for one that fetches it. Required.
	Ship func(t *testing.T, spec *deploy.Spec, slug string)
	// Bin is the program instances run: the test binary (the default)
	// or a copy of it that the apps' uids can read.
	Bin string
	// Gaps names the cases this scheduler is known to break, with why:
	// they are skipped, saying so, instead of failing. Every gap is a
	// disagreement with the contract to mend, not a feature.
	Gaps map[string]string
}

// NewHarness returns a Harness with fresh state for one case.
type NewHarness func(t *testing.T) *Harness

// appEnv marks the test binary as the suite's app; modeEnv picks how it
// behaves: "" healthy, "unhealthy" (its /health answers 503), "slow"
// (listens only after slowBoot).
const (
	appEnv  = "FLOCK_SCHEDTEST_APP"
	modeEnv = "FLOCK_SCHEDTEST_MODE"
	binEnv  = "FLOCK_SCHEDTEST_BIN"
	// banner is what the app writes to its output once it listens.
	banner = "schedtest app listening"
	// slowBoot is how long a "slow" app takes to listen.
	slowBoot = 1500 * time.Millisecond
)

// ServeIfApp makes the test binary the suite's app when a scheduler
// started it as one (it then serves until killed and never returns);
// otherwise it returns at once. Call it first thing in TestMain.
func ServeIfApp() {
	if os.Getenv(appEnv) != "1" {
		return
	}
	serveApp()
	os.Exit(0)
}

// answer is what the app says on GET /.
type answer struct {
	App     string `json:"app"`
	Release string `json:"release"`
	Port    int    `json:"port"`
	Port1   int    `json:"port1"` // PORT1, when the release has two ports
	Greet   string `json:"greet"` // GREETING, from the spec's Env
	Text    string `json:"text"`  // the slug's release.txt
	Pid     int    `json:"pid"`
}

func serveApp() {
	text, err := os.ReadFile("release.txt") // in the unpacked slug, the working directory
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedtest app:", err)
		os.Exit(2)
	}
	host, port := os.Getenv("HOST"), os.Getenv("PORT0")
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	p, _ := strconv.Atoi(port)
	p1, _ := strconv.Atoi(os.Getenv("PORT1"))
	me := answer{App: os.Getenv("FLOCK_APP"), Release: os.Getenv("FLOCK_RELEASE"), Port: p, Port1: p1,
		Greet: os.Getenv("GREETING"), Text: string(text), Pid: os.Getpid()}
	if os.Getenv(modeEnv) == "slow" {
		time.Sleep(slowBoot)
	}
	var sick atomic.Bool // set by /sick, cleared by /well
	sick.Store(os.Getenv(modeEnv) == "unhealthy")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(me) })
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if sick.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/sick", func(http.ResponseWriter, *http.Request) { sick.Store(true) })
	mux.HandleFunc("/well", func(http.ResponseWriter, *http.Request) { sick.Store(false) })
	mux.HandleFunc("/exit", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
	srv := &http.Server{Addr: host + ":" + port, Handler: mux}
	go func() {
		// Listen first, then say so: the banner means the port answers.
		for range 50 {
			if c, err := http.Get("http://" + srv.Addr + "/health"); err == nil {
				c.Body.Close()
				fmt.Println(banner)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(2)
}

// suite is one case's view of the scheduler under test.
type suite struct {
	t      *testing.T
	h      *Harness
	drains *drains
	s      deploy.Scheduler
	leave  func()
	seen   *changes
}

func newSuite(t *testing.T, newHarness NewHarness) *suite {
	h := newHarness(t)
	if h.Bin == "" {
		bin, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		h.Bin = bin
	}
	su := &suite{t: t, h: h, drains: &drains{}, seen: &changes{}}
	su.start()
	return su
}

// start runs a new scheduler over the harness's state and follows its
// Changes until the test ends.
func (su *suite) start() {
	su.s, su.leave = su.h.Start(su.t, su.drains)
	ch, stop := su.s.Changes(), make(chan struct{})
	su.t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case app := <-ch:
				su.seen.add(app)
			case <-stop:
				return
			}
		}
	}()
}

// spec is release rel of app with n instances: the test binary, an HTTP
// check on /health, and a slug holding release.txt.
func (su *suite) spec(app, rel string, n int, mode string) deploy.Spec {
	t := su.t
	dir := t.TempDir()
	slug := filepath.Join(dir, rel+".tar.gz")
	if err := os.WriteFile(slug, slugOf("schedtest "+app+" "+rel), 0o644); err != nil {
		t.Fatal(err)
	}
	stable := 0
	spec := deploy.Spec{
		App: app, Release: rel, Commit: "c0ffee", Instances: n,
		Command: `exec "$` + binEnv + `"`,
		// GORACE: a race-enabled app would otherwise wait 1s to exit.
		Env: map[string]string{appEnv: "1", modeEnv: mode, binEnv: su.h.Bin, "GORACE": "atexit_sleep_ms=0", "GREETING": "hi there"},
		Descriptor: deploy.Descriptor{Name: app, Instances: n, Ports: 1, Mem: 64, CPUs: 0.1, StableSeconds: &stable,
			Checks: []deploy.Check{{Path: "/health", IntervalSeconds: 1, TimeoutSeconds: 1, GracePeriodSeconds: 3, MaxConsecutiveFailures: 2}}},
	}
	su.h.Ship(t, &spec, slug)
	return spec
}

// deploy deploys spec, fails the test when Deploy fails, and returns
// the progress Deploy wrote.
func (su *suite) deploy(spec deploy.Spec) string {
	su.t.Helper()
	var log syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := su.s.Deploy(ctx, spec, &log); err != nil {
		su.t.Fatalf("Deploy %s %s: %v\n%s", spec.App, spec.Release, err, log.String())
	}
	return log.String()
}

func (su *suite) instances(app string) []deploy.Instance {
	su.t.Helper()
	list, err := su.s.Instances(context.Background(), app)
	if err != nil {
		su.t.Fatalf("Instances(%s): %v", app, err)
	}
	return list
}

// slugOf packs release.txt holding text as a .tar.gz.
func slugOf(text string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "release.txt", Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
	io.WriteString(tw, text)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// call sends GET path to an instance and forgets the answer.
func call(in deploy.Instance, path string) {
	resp, err := client.Get(fmt.Sprintf("http://%s:%d%s", in.Host, in.Port, path))
	if err == nil {
		resp.Body.Close()
	}
}

// ask asks an instance who it is; ok is false when it does not answer.
func ask(in deploy.Instance) (a answer, ok bool) {
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/", in.Host, in.Port))
	if err != nil {
		return answer{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&a) != nil {
		return answer{}, false
	}
	return a, true
}

// drains is the Drainer the suite gives the scheduler: it records each
// instance it is asked to drain, and whether that instance still answered
// then (drained before it was stopped).
type drains struct {
	mu   sync.Mutex
	list []drained
}

type drained struct {
	app      string
	id       string
	answered bool
}

func (d *drains) Drain(_ context.Context, app string, in deploy.Instance) error {
	_, ok := ask(in)
	d.mu.Lock()
	d.list = append(d.list, drained{app: app, id: in.ID, answered: ok})
	d.mu.Unlock()
	return nil
}

// of returns the drains of app's instances, by id.
func (d *drains) of(app string) map[string]drained {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]drained{}
	for _, x := range d.list {
		if x.app == app {
			out[x.id] = x
		}
	}
	return out
}

// changes counts the names Changes delivered.
type changes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *changes) add(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[app]++
}

func (c *changes) count(app string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[app]
}

// syncBuffer is a deploy log a test may read while Deploy writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
