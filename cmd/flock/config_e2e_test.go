package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// copyEnvApp copies testdata/envapp (GET /NAME answers the environment
// variable NAME) into a temp dir.
func copyEnvApp(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "envapp")
	if out, err := exec.Command("cp", "-r", filepath.Join("testdata", "envapp"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy envapp: %v: %s", err, out)
	}
	return dst
}

// servesEnv checks that n requests in a row through HAProxy (spread over
// every instance) see name=want.
func (f *flock) servesEnv(t testing.TB, host, name, want string, n int) {
	t.Helper()
	for i := range n {
		if code, body := f.getPath(host, "/"+name); code != 200 || body != want {
			t.Fatalf("request %d: %s=%q (%d), want %q", i, name, body, code, want)
		}
	}
}

// TestConfigVarsE2E drives config vars as a user does: flock create, config
// set before the first push, config set under load (no request fails),
// rollback, a restart of Flock, and no value anywhere but GET config.
func TestConfigVarsE2E(t *testing.T) {
	f := newFlock(t)
	f.start()
	const host, secret = "envapp.localhost", "e2e-s3cret-value"

	f.mustCLI("create", "envapp")
	if a := f.apps()["envapp"]; a.State != "stopped" || a.Release != "" {
		t.Fatalf("created app: state %s release %q, want stopped and no release", a.State, a.Release)
	}
	testkit.WaitFor(t, 10*time.Second, "the created app's host to answer 503", func() bool { c, _, _ := f.get(host); return c == 503 })
	if out, err := f.cli("create", "envapp"); err == nil || !strings.Contains(out, "exists already") {
		t.Errorf("second create: %v %s", err, out)
	}
	out := f.mustCLI("config", "set", "envapp", "GREETING=hello", "SECRET="+secret)
	if !strings.Contains(out, "no release yet") || strings.Contains(out, secret) {
		t.Errorf("config set before the first deploy said:\n%s", out)
	}
	f.mustCLI("deploy", "--app", "envapp", copyEnvApp(t))
	f.servesEnv(t, host, "GREETING", "hello", 3)
	f.servesEnv(t, host, "COLOR", "blue", 1) // the descriptor's env, not overridden
	f.mustCLI("scale", "envapp", "2")
	testkit.WaitFor(t, 20*time.Second, "2 healthy instances", func() bool { return f.apps()["envapp"].HealthyCount() == 2 })

	// A change rolls out with zero downtime; the event stream names keys.
	events := f.followEvents(t)
	load := startE2ELoad(f.http, host, 4)
	load.await(t, 50)
	out = f.mustCLI("config", "set", "envapp", "GREETING=bonjour")
	if !strings.Contains(out, "v2 is live") || !strings.Contains(out, "no build") {
		t.Errorf("config set said:\n%s", out)
	}
	// The rollout's log prints as lines, as a deploy's does.
	if !strings.Contains(out, "(no build)\n") || strings.Count(out, "\n") < 3 {
		t.Errorf("config set printed its log on fewer lines than it has:\n%s", out)
	}
	f.servesEnv(t, host, "GREETING", "bonjour", 6)
	load.await(t, 50)
	if sent, failed := load.finish(); failed > 0 {
		t.Errorf("%d of %d requests failed during the config change; last: %v", failed, sent, load.lastErr.Load())
	}

	// Bad keys fail and change nothing.
	for _, arg := range []string{"PORT=1", "PORT0=1", "FLOCK_APP=x", "A-B=1", "1X=1"} {
		if out, err := f.cli("config", "set", "envapp", arg); err == nil || !strings.Contains(out, "config key") {
			t.Errorf("config set %s: %v %s", arg, err, out)
		}
	}
	if a := f.apps()["envapp"]; a.Release != "v2" {
		t.Errorf("refused changes made release %s", a.Release)
	}

	// A rollback restores the config of the release it returns to.
	f.mustCLI("config", "unset", "envapp", "SECRET")
	f.servesEnv(t, host, "SECRET", "(unset)", 3)
	f.mustCLI("rollback", "envapp", "v2")
	f.servesEnv(t, host, "SECRET", secret, 3)
	f.servesEnv(t, host, "GREETING", "bonjour", 3)

	// Values show in flock config only.
	if out := f.mustCLI("config", "envapp"); !strings.Contains(out, "GREETING=bonjour\n") || !strings.Contains(out, "SECRET="+secret+"\n") {
		t.Errorf("flock config:\n%s", out)
	}
	var cfg map[string]string
	if err := json.Unmarshal([]byte(f.mustCLI("config", "envapp", "--json")), &cfg); err != nil || cfg["SECRET"] != secret {
		t.Errorf("flock config --json: %v %v", cfg, err)
	}
	shown := map[string]string{
		"flock apps --json": f.mustCLI("apps", "--json"),
		"flock releases":    f.mustCLI("releases", "envapp"),
		"flock logs":        f.mustCLI("logs", "envapp"),
		"releases API":      f.apiGet(t, "/api/v1/apps/envapp/releases?log=1"),
		"metrics":           f.apiGet(t, "/metrics"),
		"flock up's log":    f.out.String(),
		"/api/v1/events":    events(),
	}
	for what, text := range shown {
		if strings.Contains(text, secret) || strings.Contains(text, "bonjour") {
			t.Errorf("%s shows a config value", what)
		}
	}
	if !strings.Contains(shown["flock apps --json"], `"GREETING"`) || !strings.Contains(shown["releases API"], `"configKeys"`) {
		t.Errorf("apps or releases do not list the config keys")
	}
	if !strings.Contains(shown["/api/v1/events"], "config: set GREETING") {
		t.Errorf("the event stream did not tell the config change:\n%s", shown["/api/v1/events"])
	}

	// A restart keeps the config.
	f.stop()
	f.start()
	testkit.WaitFor(t, 30*time.Second, "envapp back after the restart", func() bool { c, _ := f.getPath(host, "/GREETING"); return c == 200 })
	f.servesEnv(t, host, "GREETING", "bonjour", 4)
	f.servesEnv(t, host, "SECRET", secret, 2)
}

// followEvents reads /api/v1/events in the background; the function it
// returns ends the stream and returns what it carried.
func (f *flock) followEvents(t testing.TB) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.api+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+f.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var buf testkit.Buffer
	done := make(chan struct{})
	go func() { defer close(done); io.Copy(&buf, resp.Body) }()
	return func() string {
		cancel()
		<-done
		resp.Body.Close()
		return buf.String()
	}
}

// apiGet reads an API path with the token.
func (f *flock) apiGet(t testing.TB, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+f.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestDomainsE2E: flock domains add routes the host through HAProxy at
// once (curl), another app cannot take it, it survives a restart, and
// remove stops it.
func TestDomainsE2E(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	f.mustCLI("deploy", "--app", "other", copyEnvApp(t))
	const domain = "www.example.test"
	if code, _, _ := f.get(domain); code != 404 {
		t.Fatalf("%s before it is added: %d, want 404", domain, code)
	}
	curl := func() string {
		out, _ := exec.Command("curl", "-s", "-H", "Host: "+domain, "http://"+f.http+"/").CombinedOutput()
		return string(out)
	}

	start := time.Now()
	f.mustCLI("domains", "add", "hello", "WWW.Example.test")
	testkit.WaitFor(t, 20*time.Second, domain+" routed", func() bool { return strings.Contains(curl(), "Hello from Flock") })
	t.Logf("%s answered %s after flock domains add began", domain, time.Since(start).Round(time.Millisecond))
	if a := f.apps()["hello"]; a.Release != "v1" {
		t.Errorf("adding a domain made release %s: it must route without a deploy", a.Release)
	}
	if out := f.mustCLI("domains", "hello"); !strings.Contains(out, domain) || !strings.Contains(out, "added") {
		t.Errorf("flock domains:\n%s", out)
	}
	for _, h := range []string{domain, "hello.localhost"} {
		if out, err := f.cli("domains", "add", "other", h); err == nil || !strings.Contains(out, "app hello's") {
			t.Errorf("other taking %s: %v %s", h, err, out)
		}
	}
	for _, h := range []string{"localhost", "127.0.0.1", "x.test:80"} {
		if _, err := f.cli("domains", "add", "other", h); err == nil {
			t.Errorf("other took %s", h)
		}
	}

	f.stop()
	f.start()
	testkit.WaitFor(t, 30*time.Second, domain+" after a restart", func() bool { return strings.Contains(curl(), "Hello from Flock") })

	f.mustCLI("domains", "remove", "hello", domain)
	testkit.WaitFor(t, 20*time.Second, domain+" gone", func() bool { c, _, _ := f.get(domain); return c == 404 })
	f.mustCLI("domains", "add", "other", domain) // free again
	testkit.WaitFor(t, 20*time.Second, domain+" routed to other", func() bool { c, b := f.getPath(domain, "/COLOR"); return c == 200 && b == "blue" })
}
