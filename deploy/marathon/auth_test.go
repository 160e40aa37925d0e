package marathon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// useEveryCall deploys, scales, sleeps, wakes and removes an app, with the
// event stream running: every kind of request Flock sends.
func useEveryCall(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx := context.Background()
	var log bytes.Buffer
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &log); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, &log)
	}
	for _, n := range []int{2, 1, 0, 1} {
		if err := s.Scale(ctx, "hello", n); err != nil {
			t.Fatalf("Scale %d: %v", n, err)
		}
	}
	if err := s.Remove(ctx, "hello"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
}

// allAuthorized fails the test for a request the fake took without the
// credentials it demands.
func allAuthorized(t *testing.T, f *marathontest.Server) {
	t.Helper()
	paths := map[string]bool{}
	for _, r := range f.Requests() {
		paths[r.Method+" "+r.Path] = true
		if !r.Authorized {
			t.Errorf("%s %s?%s without credentials", r.Method, r.Path, r.Query)
		}
	}
	for _, want := range []string{"GET /v2/events", "GET /v2/info", "POST /v2/apps", "PUT /v2/apps/flock/hello/web",
		"POST /v2/tasks/delete", "DELETE /v2/queue/flock/hello/web/delay", "DELETE /v2/apps/flock/hello/web", "DELETE /v2/groups/flock/hello"} {
		if !paths[want] {
			t.Errorf("no %s reached the fake: %v", want, paths)
		}
	}
}

// TestCredentialsOnEveryRequest: basic auth from the flags, basic auth
// from the URL, and a DC/OS token file reach every call, the event
// stream included.
func TestCredentialsOnEveryRequest(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("dcos-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts marathontest.Options
		cfg  func(url string) Config
	}{
		{"flags", marathontest.Options{User: "flock", Password: "pw-flags"},
			func(u string) Config { return Config{URLs: []string{u}, User: "flock", Password: "pw-flags"} }},
		{"url", marathontest.Options{User: "flock", Password: "pw-url"},
			func(u string) Config {
				return Config{URLs: []string{strings.Replace(u, "http://", "http://flock:pw-url@", 1)}}
			}},
		{"token file", marathontest.Options{Token: "dcos-token-1"},
			func(u string) Config { return Config{URLs: []string{u}, TokenFile: tok} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.opts)
			s := newSched(t, tt.cfg(f.URL))
			run(t, s)
			testkit.WaitFor(t, 5*time.Second, "the event stream", func() bool { return f.Streams() == 1 })
			useEveryCall(t, s)
			allAuthorized(t, f)
		})
	}
}

// TestStandbyRedirectKeepsCredentials: a standby Marathon redirects
// /v2/events to the leader under another host name; Go's client drops the
// Authorization header on such a redirect, Flock sends it again.
func TestStandbyRedirectKeepsCredentials(t *testing.T) {
	opts := marathontest.Options{User: "flock", Password: "pw"}
	leader := newFake(t, opts)
	opts.Leader = strings.Replace(leader.URL, "127.0.0.1", "localhost", 1)
	standby := newFake(t, opts)
	s := newSched(t, Config{URLs: []string{standby.URL}, User: "flock", Password: "pw"})
	run(t, s)
	testkit.WaitFor(t, 5*time.Second, "the leader's event stream", func() bool { return leader.Streams() == 1 })
	useEveryCall(t, s)
	allAuthorized(t, leader)
	if rs := requests(standby, "GET", "/v2/events"); len(rs) == 0 || !rs[0].Authorized {
		t.Errorf("standby /v2/events: %+v", rs)
	}
}

// TestCredentialsNeverLeak forces every kind of failure with credentials
// in the URL and in a token file, and greps the errors, the deploy log
// and the scheduler's log for them.
func TestCredentialsNeverLeak(t *testing.T) {
	const pw, token = "s3cret-pw", "s3cret-token"
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := newFake(t, marathontest.Options{User: "flock", Password: "another"})
	var logs testkit.Buffer
	var said []string
	check := func(err error) {
		if err != nil {
			said = append(said, err.Error())
		}
	}
	cfgs := []Config{
		{URLs: []string{"http://flock:" + pw + "@127.0.0.1:1"}},
		{URLs: []string{strings.Replace(wrong.URL, "http://", "http://flock:"+pw+"@", 1)}},
		{URLs: []string{wrong.URL}, TokenFile: tok},
	}
	for i, cfg := range cfgs {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		cfg.DeployTimeout = time.Second
		s := newSched(t, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		var log bytes.Buffer
		err := s.Deploy(context.Background(), testSpec("hello", "v1", 1), &log)
		if i > 0 && !errors.Is(err, errAuth) {
			t.Errorf("Deploy with refused credentials = %v, want errAuth", err)
		}
		check(err)
		said = append(said, log.String())
		_, err = s.Instances(context.Background(), "hello")
		check(err)
		check(s.Scale(context.Background(), "hello", 2))
		check(s.Remove(context.Background(), "hello"))
		testkit.WaitFor(t, 5*time.Second, "a logged stream failure", func() bool { return strings.Contains(logs.String(), "event stream") })
		cancel()
		<-done
	}
	_, err := New(Config{URLs: []string{"ftp://flock:" + pw + "@host"}})
	check(err)
	said = append(said, logs.String())
	all := strings.Join(said, "\n")
	for _, secret := range []string{pw, token, "ZmxvY2s6czNjcmV0LXB3"} { // the last: base64 of flock:s3cret-pw
		if strings.Contains(all, secret) {
			t.Errorf("%q leaked:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "http://127.0.0.1:1") || !strings.Contains(all, wrong.URL+": GET /ping: status 401") {
		t.Errorf("the errors no longer say what failed:\n%s", all)
	}
}

// TestBadCredentialConfig: a password without a user, URLs with different
// credentials, an empty token file.
func TestBadCredentialConfig(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "token")
	os.WriteFile(empty, nil, 0o600)
	for _, cfg := range []Config{
		{URLs: []string{"http://m1:8080"}, Password: "x"},
		{URLs: []string{"http://a:b@m1:8080", "http://a:c@m2:8080"}},
	} {
		if _, err := New(cfg); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
	f := newFake(t, marathontest.Options{Token: "t"})
	s := newSched(t, Config{URLs: []string{f.URL}, TokenFile: empty})
	_, err := s.Instances(context.Background(), "hello")
	if err == nil || !strings.Contains(err.Error(), "token file") {
		t.Errorf("Instances with an empty token file = %v", err)
	}
}

// TestTokenFileRotation: a new token written to the file is used from the
// next request on, without restarting Flock.
func TestTokenFileRotation(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("token-1"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t, marathontest.Options{Token: "token-1"})
	s := newSched(t, Config{URLs: []string{f.URL}, TokenFile: tok})
	ctx := context.Background()
	if err := s.Deploy(ctx, testSpec("hello", "v1", 1), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	f.SetToken("token-2")
	if err := s.Scale(ctx, "hello", 2); !errors.Is(err, errAuth) {
		t.Fatalf("Scale with the old token = %v, want errAuth", err)
	}
	if err := os.WriteFile(tok, []byte("token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second) // a new mtime, however coarse the file system's clock
	os.Chtimes(tok, later, later)
	if err := s.Scale(ctx, "hello", 2); err != nil {
		t.Fatalf("Scale with the new token: %v", err)
	}
}
