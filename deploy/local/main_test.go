package local

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/schedtest"
)

// processStart is as close to exec as the test app can measure its boot.
var processStart = time.Now()

// TestMain doubles as the app under test: with FLOCK_TEST_ROLE=app the
// test binary is a small HTTP server (see runApp), with
// FLOCK_TEST_ROLE=parent a Flock that deploys one app and waits to be
// killed (see runParent).
func TestMain(m *testing.M) {
	schedtest.ServeIfApp()
	switch os.Getenv("FLOCK_TEST_ROLE") {
	case "app":
		runApp()
		return
	case "parent":
		runParent()
		return
	case "box":
		runBoxApp()
		return
	}
	os.Exit(runTests(m))
}

// runApp is the test app. APP_BOOT delays listening; APP_MODE is "" (a
// healthy server), "crash" (exits 1 at once), "never" (its /health always
// fails), "flap" (exits 150 ms after it listens) or "ignore-term"
// (survives SIGTERM).
func runApp() {
	mode := os.Getenv("APP_MODE")
	if d, err := time.ParseDuration(os.Getenv("APP_BOOT")); err == nil {
		time.Sleep(d)
	}
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "fatal: cannot reach the database")
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	var ls []net.Listener
	for i := 0; ; i++ {
		port := os.Getenv("PORT" + strconv.Itoa(i))
		if port == "" {
			break
		}
		l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), port))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(2)
		}
		ls = append(ls, l)
	}
	boot := time.Since(processStart)
	fmt.Printf("listening on %d port(s) after %dµs\n", len(ls), boot.Microseconds())
	if mode == "flap" { // listens, then dies: a release that passes its first check only
		go func() {
			time.Sleep(150 * time.Millisecond)
			fmt.Fprintln(os.Stderr, "Error: boom: missing DATABASE_URL")
			os.Exit(1)
		}()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", os.Getenv("FLOCK_INSTANCE"))
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if mode == "never" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		cwd, _ := os.Getwd()
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		json.NewEncoder(w).Encode(appInfo{Pid: os.Getpid(), Env: env, Cwd: cwd, BootMicros: boot.Microseconds()})
	})
	mux.HandleFunc("/say", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Query().Get("msg"))
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("exiting on request")
		os.Exit(3)
	})
	for _, l := range ls {
		go http.Serve(l, mux)
	}
	for range sig {
		if mode == "ignore-term" {
			fmt.Println("got SIGTERM, ignoring it")
			continue
		}
		fmt.Println("got SIGTERM, bye")
		os.Exit(0)
	}
}

type appInfo struct {
	Pid        int               `json:"pid"`
	Env        map[string]string `json:"env"`
	Cwd        string            `json:"cwd"`
	BootMicros int64             `json:"bootMicros"`
}

// runParent plays a Flock that gets killed with SIGKILL: it deploys one
// instance whose shell keeps the app as a background child (the group
// leader is the shell, the app its child), prints the instances and waits.
func runParent() {
	s, err := New(Config{Dir: os.Getenv("FLOCK_TEST_DIR"), Logger: quietLogger()})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	spec := parentSpec()
	if err := s.Deploy(context.Background(), spec, io.Discard); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	list, _ := s.Instances(context.Background(), "leftover")
	b, _ := json.Marshal(list)
	fmt.Println(string(b))
	select {}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// appSpec is a release of the test app with an HTTP check on /health.
func appSpec(app, rel string, n int, env ...string) deploy.Spec {
	bin, err := os.Executable()
	if err != nil {
		panic(err)
	}
	if b := os.Getenv("FLOCK_TEST_APP_BIN"); b != "" { // see runTests
		bin = b
	}
	// GORACE: a race-enabled child would otherwise sleep 1s before it exits.
	e := map[string]string{"FLOCK_TEST_ROLE": "app", "GORACE": "atexit_sleep_ms=0", "FLOCK_TEST_BIN": bin, "GREETING": "hi there"}
	for i := 0; i+1 < len(env); i += 2 {
		e[env[i]] = env[i+1]
	}
	return deploy.Spec{
		App: app, Release: rel, Instances: n, Command: `exec "$FLOCK_TEST_BIN"`, Env: e,
		// No stability window, but in the tests of the window itself
		// (stable_test.go): the others would each wait for it.
		Descriptor: deploy.Descriptor{Ports: 1, Mem: 64, StableSeconds: new(int), Checks: []deploy.Check{{
			Path: "/health", IntervalSeconds: 1, TimeoutSeconds: 1, GracePeriodSeconds: 10, MaxConsecutiveFailures: 2,
		}}},
	}
}

// startScheduler builds a Scheduler on a fresh Dir and runs it until the
// test ends; cleanup waits until every instance is stopped.
func startScheduler(t testing.TB, tweak func(*Config)) *Scheduler {
	t.Helper()
	cfg := Config{Dir: t.TempDir(), StopGrace: 2 * time.Second, Logger: quietLogger(), Unpack: untar}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.backoffMin = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(port int, path string) (string, error) {
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

func info(t testing.TB, port int) appInfo {
	t.Helper()
	body, err := get(port, "/info")
	if err != nil {
		t.Fatalf("GET /info on %d: %v", port, err)
	}
	var in appInfo
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func instances(t testing.TB, s *Scheduler, app string) []deploy.Instance {
	t.Helper()
	list, err := s.Instances(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// makeSlug writes a .tar.gz holding files (name → content).
func makeSlug(t testing.TB, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	path := filepath.Join(t.TempDir(), "slug.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// untar is the tests' Unpack: regular files only, trusting its input.
func untar(slug, dir string) error {
	f, err := os.Open(slug)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(h.Name)), b, 0o644); err != nil {
			return err
		}
	}
}
