package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
	"github.com/google/go-cmp/cmp"
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestDeployUpload(t *testing.T) {
	src := tarGz(t, map[string]string{"package.json": "demo", "server.js": "//"})
	tests := []struct {
		name string
		path string
		want string
	}{
		{"named by the descriptor", "/api/v1/deploys?commit=abc123", "deploy succeeded: http://demo.localhost:8000"},
		{"named by the query", "/api/v1/deploys?app=other", "deploy succeeded: http://other.localhost:8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			w := do(t, s.Handler(), req{method: "POST", path: tt.path, body: string(src), token: testToken})
			if w.Code != 200 {
				t.Fatalf("= %d %s", w.Code, w.Body.String())
			}
			body := w.Body.String()
			if !strings.Contains(body, "-----> received ") || !strings.Contains(body, "-----> building ") {
				t.Errorf("log = %q, want the received and building lines", body)
			}
			if got := lastLine(body); got != tt.want {
				t.Errorf("last line = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("failed deploy", func(t *testing.T) {
		s, f := newTestServer(t, nil)
		f.deployFn = func(req deploy.DeployRequest, log io.Writer) (deploy.Release, error) {
			fmt.Fprintln(log, "-----> npm install")
			return deploy.Release{}, fmt.Errorf("deploy: %w", &deploy.DescriptorError{File: "package.json", Key: "flock.instances", Rule: "must be\na number"})
		}
		w := do(t, s.Handler(), req{method: "POST", path: "/api/v1/deploys", body: string(src), token: testToken})
		if got, want := lastLine(w.Body.String()), "deploy failed: package.json: flock.instances must be a number"; got != want {
			t.Errorf("last line = %q, want %q", got, want)
		}
	})
	t.Run("the source folder is removed", func(t *testing.T) {
		var dir string
		s, f := newTestServer(t, nil)
		f.deployFn = func(req deploy.DeployRequest, log io.Writer) (deploy.Release, error) {
			dir = req.Dir
			if req.Trigger != "cli" {
				t.Errorf("trigger = %q, want cli", req.Trigger)
			}
			return deploy.Release{App: "hello", Name: "v2"}, nil
		}
		do(t, s.Handler(), req{method: "POST", path: "/api/v1/deploys", body: string(src), token: testToken})
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("upload folder %s still there: %v", dir, err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		s, _ := newTestServer(t, func(c *Config) { c.MaxUpload = 10 })
		w := do(t, s.Handler(), req{method: "POST", path: "/api/v1/deploys", body: string(src), token: testToken})
		if w.Code != 413 {
			t.Errorf("= %d, want 413: %s", w.Code, w.Body.String())
		}
	})
	t.Run("no unpacker", func(t *testing.T) {
		s, _ := newTestServer(t, func(c *Config) { c.Unpack = nil })
		w := do(t, s.Handler(), req{method: "POST", path: "/api/v1/deploys", body: string(src), token: testToken})
		if w.Code != 501 {
			t.Errorf("= %d, want 501", w.Code)
		}
	})
}

func TestGetDeploy(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := do(t, s.Handler(), req{path: "/api/v1/deploys/hello-1", token: testToken})
	var d deployView
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || d.App != "hello" || d.Log == "" {
		t.Fatalf("GET deploy = %s (%v)", w.Body.String(), err)
	}
	w = do(t, s.Handler(), req{path: "/api/v1/deploys/hello-1?follow=1", token: testToken})
	if !strings.Contains(w.Body.String(), "v1 live") {
		t.Errorf("followed log = %q, want the build log", w.Body.String())
	}
	if got, want := lastLine(w.Body.String()), "deploy succeeded: http://hello.localhost:8000"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
}

func TestLogs(t *testing.T) {
	t.Run("unsupported", func(t *testing.T) {
		s, f := newTestServer(t, nil)
		f.logsErr = fmt.Errorf("logs: %w", deploy.ErrUnsupported)
		w := do(t, s.Handler(), req{path: "/api/v1/apps/hello/logs", token: testToken})
		if w.Code != 501 {
			t.Errorf("= %d, want 501", w.Code)
		}
		errorOf(t, w)
	})
	t.Run("follow flushes each line", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/apps/hello/logs?follow=1", nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		// The handler is still following: the lines arrived because they
		// were flushed, not because the response ended.
		sc := bufio.NewScanner(res.Body)
		var got []string
		for len(got) < 2 && sc.Scan() {
			got = append(got, sc.Text())
		}
		if diff := cmp.Diff([]string{"hello from the app", "second line"}, got); diff != "" {
			t.Errorf("lines (-want +got):\n%s", diff)
		}
	})
}

func TestEvents(t *testing.T) {
	s, f := newTestServer(t, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?app=hello", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	testkit.WaitFor(t, 5*time.Second, "the stream to subscribe", func() bool { return f.subscribers() == 1 })
	f.Emit(deploy.Event{App: "world", Type: "state", State: deploy.StateSleeping}) // filtered out
	f.Emit(deploy.Event{App: "hello", Type: "state", State: deploy.StateSleeping, Message: "asleep"})
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var ev deploy.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			t.Fatal(err)
		}
		want := deploy.Event{App: "hello", Type: "state", State: deploy.StateSleeping, Message: "asleep"}
		if diff := cmp.Diff(want, ev, cmpIgnoreTime); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
		return
	}
	t.Fatalf("stream ended without an event: %v", sc.Err())
}

var cmpIgnoreTime = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Time" }, cmp.Ignore())

func TestRunEndsStreams(t *testing.T) {
	s, f := newTestServer(t, func(c *Config) { c.SampleEvery = 20 * time.Millisecond })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	testkit.WaitFor(t, 5*time.Second, "a sample", func() bool { return len(s.history.series("hello")) > 0 })

	streams := []string{"/api/v1/events", "/api/v1/apps/hello/logs?follow=1"}
	bodies := make(chan error, len(streams))
	for _, p := range streams {
		r, _ := http.NewRequest("GET", srv.URL+p, nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer res.Body.Close()
			_, err := io.Copy(io.Discard, res.Body)
			bodies <- err
		}()
	}
	// Run subscribes too, for flock_deploys_total.
	testkit.WaitFor(t, 5*time.Second, "the event stream to subscribe", func() bool { return f.subscribers() == 2 })
	stop()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
	for range streams {
		select {
		case err := <-bodies:
			if err != nil {
				t.Errorf("stream ended with %v, want a clean end", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream is still open after Run returned")
		}
	}
}
