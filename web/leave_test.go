package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// chattyBuilder builds like slugBuilder and logs a line per step while it
// does, as a real build does, so that clients can leave in the middle.
type chattyBuilder struct {
	slugBuilder
	lines int
}

func (b chattyBuilder) Build(ctx context.Context, dir, app, release, cmd string, log io.Writer) (string, string, error) {
	for i := range b.lines {
		fmt.Fprintf(log, "       build step %d of %d\n", i+1, b.lines)
		time.Sleep(100 * time.Microsecond) // the pace of a build's output, not a wait
	}
	return b.slugBuilder.Build(ctx, dir, app, release, cmd, log)
}

// chattyScheduler starts instances like memScheduler and logs a line per
// step while it does, so that a rollback's client can leave in the middle.
type chattyScheduler struct {
	*memScheduler
	lines int
}

func (c chattyScheduler) Deploy(ctx context.Context, spec deploy.Spec, log io.Writer) error {
	for i := range c.lines {
		fmt.Fprintf(log, "       rollout step %d of %d\n", i+1, c.lines)
		time.Sleep(100 * time.Microsecond)
	}
	return c.memScheduler.Deploy(ctx, spec, log)
}

// leaveEnv is the API and dashboard over the real engine.Service, served
// on a real loopback socket.
type leaveEnv struct {
	svc    *engine.Service
	url    string
	client *http.Client
	src    []byte
}

func newLeaveEnv(t *testing.T) *leaveEnv {
	t.Helper()
	store, err := engine.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sched := chattyScheduler{newMemScheduler(), 100}
	svc, err := engine.New(engine.Config{Domain: "localhost", URLPort: ":8000"}, store, sched, chattyBuilder{slugBuilder{t.TempDir()}, 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s, err := New(Config{Token: testToken, Unpack: untar, TempDir: t.TempDir()}, svc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &leaveEnv{
		svc: svc, url: srv.URL,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		src:    tarGz(t, map[string]string{"package.json": `{"name":"demo","scripts":{"start":"node server.js"}}`}),
	}
}

// login signs in on the dashboard over the socket, as a browser does, and
// returns the session cookie and its CSRF token.
func (e *leaveEnv) login(t *testing.T) (*http.Cookie, string) {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	find := func(resp *http.Response, name string) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("%s: no %s cookie", resp.Request.URL.Path, name)
		return nil
	}
	resp, err := noRedirect.Get(e.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lc := find(resp, loginCookie)
	r, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader("csrf="+lc.Value+"&token="+testToken+"&next=/"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(lc)
	if resp, err = noRedirect.Do(r); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := find(resp, sessionCookie)
	r, _ = http.NewRequest("GET", e.url+"/", nil)
	r.AddCookie(sc)
	page := e.stream(t, r)
	m := csrfMetaRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("apps page has no csrf meta: %s", page)
	}
	return sc, m[1]
}

// hangUp sends r and leaves at a random moment: before the answer, or
// after reading a random number of its lines (up to more than it has).
func (e *leaveEnv) hangUp(rng *rand.Rand, r *http.Request) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := rng.IntN(300) - 50
	if lines < 0 {
		time.AfterFunc(time.Duration(rng.IntN(20))*time.Millisecond, cancel) // a random moment
	}
	resp, err := e.client.Do(r.WithContext(ctx))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for i := 0; i < lines && sc.Scan(); i++ {
	}
	cancel() // the client leaves: Ctrl-C, a closed laptop, a closed tab
}

// stream sends r and reads the answer to its end, as a client that stays.
func (e *leaveEnv) stream(t *testing.T, r *http.Request) string {
	t.Helper()
	resp, err := e.client.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	return string(b)
}

func (e *leaveEnv) upload() *http.Request {
	r, _ := http.NewRequest("POST", e.url+"/api/v1/deploys", strings.NewReader(string(e.src)))
	r.Header.Set("Authorization", "Bearer "+testToken)
	return r
}

func (e *leaveEnv) rollback(release string) *http.Request {
	r, _ := http.NewRequest("POST", e.url+"/api/v1/apps/demo/rollback", strings.NewReader(`{"release":"`+release+`"}`))
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// settled waits until no deploy of demo is queued or running, and checks
// how each one ended: succeeded with its whole log, or superseded.
func (e *leaveEnv) settled(t *testing.T, what string) {
	t.Helper()
	ctx := context.Background()
	var ds []deploy.Rollout
	testkit.WaitFor(t, 60*time.Second, what+": every deploy finished", func() bool {
		var err error
		ds, err = e.svc.Deploys(ctx, "demo")
		if err != nil {
			return false
		}
		for _, d := range ds {
			if d.FinishedAt == nil {
				return false
			}
		}
		return true
	})
	for _, d := range ds {
		switch d.Status {
		case deploy.RolloutSuperseded:
		case deploy.RolloutSucceeded:
			full, err := e.svc.DeployByID(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(full.Log, "rollout step 100 of 100\n") || !strings.Contains(full.Log, "is live at") {
				t.Errorf("%s: deploy %s (%s) is recorded without its whole log:\n%s", what, d.ID, d.Trigger, full.Log)
			}
		default:
			t.Errorf("%s: deploy %s (%s) ended %s: %s", what, d.ID, d.Trigger, d.Status, d.Error)
		}
	}
	resp, err := e.client.Get(e.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: Flock no longer answers /healthz: %v", what, err)
	}
	resp.Body.Close()
}

// TestClientsLeavingMidStream: clients hang up at random moments of a
// deploy upload, an API rollback, a dashboard rollback and a deploy they
// follow. Flock stays up and keeps answering, every deploy ends cleanly
// and is recorded with its whole log, and a client that stays is served
// as usual.
func TestClientsLeavingMidStream(t *testing.T) {
	e := newLeaveEnv(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var mu sync.Mutex // guards rng
	crowd := func(n int, r func() *http.Request) {
		var wg sync.WaitGroup
		for range n {
			mu.Lock()
			sub := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); e.hangUp(sub, r()) }()
		}
		wg.Wait()
	}

	for i := range 2 { // v1 and v2, by a client that stays
		if got := lastLine(e.stream(t, e.upload())); got != "deploy succeeded: http://demo.localhost:8000" {
			t.Fatalf("deploy %d: last line %q", i+1, got)
		}
	}

	for round := range 3 {
		crowd(8, e.upload)
		e.settled(t, fmt.Sprintf("uploads, round %d", round+1))
	}

	for round := range 3 {
		crowd(8, func() *http.Request { return e.rollback("v1") })
		e.settled(t, fmt.Sprintf("API rollbacks, round %d", round+1))
	}

	sc, csrf := e.login(t)
	for round := range 3 {
		crowd(8, func() *http.Request {
			r, _ := http.NewRequest("POST", e.url+"/apps/demo/rollback", strings.NewReader("release=v2&csrf="+csrf))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(sc)
			return r
		})
		e.settled(t, fmt.Sprintf("dashboard rollbacks, round %d", round+1))
	}

	// The dashboard's other actions, by clients that leave.
	for _, action := range []string{"scale", "sleep", "wake"} {
		crowd(4, func() *http.Request {
			r, _ := http.NewRequest("POST", e.url+"/apps/demo/"+action, strings.NewReader("instances=2&csrf="+csrf))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(sc)
			return r
		})
	}
	e.settled(t, "dashboard actions")

	// Followers of a deploy in progress come and go; its own client stays.
	before, err := e.svc.Deploys(context.Background(), "demo") // newest first
	if err != nil || len(before) == 0 {
		t.Fatalf("deploys before: %v %v", before, err)
	}
	uploaded := make(chan string, 1)
	go func() {
		resp, err := e.client.Do(e.upload())
		if err != nil {
			uploaded <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		uploaded <- string(b)
	}()
	// The new deploy, whether it still runs or (on a busy machine, between
	// two polls) has already ended: a follower of an ended deploy is
	// answered its whole log, and must leave as cleanly.
	var id string
	testkit.WaitFor(t, 10*time.Second, "the deploy to start", func() bool {
		ds, _ := e.svc.Deploys(context.Background(), "demo")
		if len(ds) > 0 && ds[0].ID != before[0].ID {
			id = ds[0].ID
		}
		return id != ""
	})
	crowd(8, func() *http.Request {
		r, _ := http.NewRequest("GET", e.url+"/api/v1/deploys/"+id+"?follow=1", nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		return r
	})
	if got := lastLine(<-uploaded); got != "deploy succeeded: http://demo.localhost:8000" {
		t.Errorf("the client that stayed: last line %q", got)
	}
	e.settled(t, "followers")

	if got := lastLine(e.stream(t, e.rollback("v1"))); !strings.HasPrefix(got, "rollback succeeded: ") {
		t.Errorf("a rollback after all that: last line %q", got)
	}
}

// TestLateWritesAreRefused: a platform that keeps writing a deploy's log
// after Deploy returned (as Flock's own pipeline once did) gets an error
// back, and nothing reaches the finished response or crashes Flock.
func TestLateWritesAreRefused(t *testing.T) {
	s, f := newTestServer(t, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	late := make(chan error, 1)
	f.deployFn = func(req deploy.DeployRequest, log io.Writer) (deploy.Release, error) {
		fmt.Fprintln(log, "-----> building")
		go func() {
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(log, "late line %d\n", i); err != nil {
					late <- err
					return
				}
				if i > 1e6 {
					late <- nil
					return
				}
			}
		}()
		return deploy.Release{App: "hello", Name: "v3"}, nil
	}
	src := tarGz(t, map[string]string{"package.json": `{"name":"hello"}`})
	r, _ := http.NewRequest("POST", srv.URL+"/api/v1/deploys", strings.NewReader(string(src)))
	r.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-late; err == nil {
		t.Errorf("a million writes after the handler returned were all accepted")
	}
	if !strings.Contains(string(body), "\ndeploy succeeded: ") {
		t.Errorf("no outcome line in %q", body)
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Flock no longer answers: %v", err)
	}
}
