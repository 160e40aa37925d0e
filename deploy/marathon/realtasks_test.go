package marathon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
	"github.com/flock-paas/flock/deploy/testkit"
)

// appEnv makes the test binary act as a Flock app (see TestMain).
const appEnv = "FLOCK_MARATHON_TEST_APP"

// TestMain lets the test binary be the app the fake Marathon runs: an
// HTTP server on $PORT0 answering with the slug's index.txt.
func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		serveApp()
		return
	}
	os.Exit(m.Run())
}

func serveApp() {
	body, err := os.ReadFile("index.txt") // from the unpacked slug
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT0"), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s release=%s port=%s", body, os.Getenv("FLOCK_RELEASE"), os.Getenv("PORT"))
	})}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		srv.Close()
	}()
	srv.ListenAndServe()
}

// slugServer serves a .tar.gz slug holding index.txt, as Flock's artifact
// store would.
func slugServer(t *testing.T, text string) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "index.txt", Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
	io.WriteString(tw, text)
	tw.Close()
	gz.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(buf.Bytes()) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRealTasks runs a release as real processes through the fake's
// RunTasks: fetch and unpack the slug, PORT0, HTTP health checks; then a
// new release, sleep, wake and destroy, each checked over HTTP.
func TestRealTasks(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, marathontest.Options{RunTasks: true, CheckEvery: 20 * time.Millisecond})
	s := newSched(t, Config{URLs: []string{f.URL}, DeployTimeout: 20 * time.Second})
	run(t, s)
	ctx := context.Background()
	spec := func(release, text string) deploy.Spec {
		sp := testSpec("hello", release, 2)
		sp.SlugURL = slugServer(t, text) + "/artifacts/hello/" + release + ".tar.gz"
		sp.Command = "exec " + strconv.Quote(bin)
		sp.Env = map[string]string{appEnv: "1"}
		sp.Descriptor.Checks[0].IntervalSeconds = 1
		return sp
	}
	get := func(in deploy.Instance) string {
		resp, err := http.Get(fmt.Sprintf("http://%s:%d/", in.Host, in.Port))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var log bytes.Buffer
	if err := s.Deploy(ctx, spec("v1", "hello from v1"), &log); err != nil {
		t.Fatalf("Deploy v1: %v\n%s", err, log.String())
	}
	ins, _ := s.Instances(ctx, "hello")
	if len(ins) != 2 {
		t.Fatalf("instances %+v", ins)
	}
	for _, in := range ins {
		if got, want := get(in), fmt.Sprintf("hello from v1 release=v1 port=%d", in.Port); got != want || !in.Healthy {
			t.Errorf("instance %s answers %q (healthy %v), want %q", in.ID, got, in.Healthy, want)
		}
	}

	if err := s.Deploy(ctx, spec("v2", "hello from v2"), &log); err != nil {
		t.Fatalf("Deploy v2: %v\n%s", err, log.String())
	}
	testkit.WaitFor(t, 10*time.Second, "only v2 answering", func() bool {
		ins, _ = s.Instances(ctx, "hello")
		return len(ins) == 2 && hasPrefixAll([]string{get(ins[0]), get(ins[1])}, "hello from v2")
	})

	if err := s.Scale(ctx, "hello", 0); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "asleep", func() bool {
		got, _ := s.Instances(ctx, "hello")
		return len(got) == 0
	})
	testkit.WaitFor(t, 10*time.Second, "every process stopped", func() bool {
		for _, in := range ins {
			if resp, err := http.Get(fmt.Sprintf("http://%s:%d/", in.Host, in.Port)); err == nil {
				resp.Body.Close()
				return false
			}
		}
		return true
	})
	if err := s.Scale(ctx, "hello", 1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "awake and healthy", func() bool {
		got, _ := s.Instances(ctx, "hello")
		return len(got) == 1 && got[0].Healthy && hasPrefixAll([]string{get(got[0])}, "hello from v2")
	})
	if err := s.Remove(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if f.App("/flock/hello") != nil {
		t.Error("app survived Remove")
	}
}
