package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// withDomains returns a copy of the hello example whose descriptor lists
// domains.
func withDomains(t *testing.T, domains ...string) string {
	t.Helper()
	dir := example(t, "hello")
	path := filepath.Join(dir, "package.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pj map[string]any
	if err := json.Unmarshal(data, &pj); err != nil {
		t.Fatal(err)
	}
	if len(domains) > 0 {
		pj["flock"].(map[string]any)["domains"] = domains
	}
	if data, err = json.Marshal(pj); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHostBelongsToOneApp deploys real apps through the Service and the
// embedded scheduler: a descriptor that claims another app's host or
// domain, or the API's host, is refused with the owner's name, and the
// release that serves keeps serving.
func TestHostBelongsToOneApp(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir())
	deployAs := func(app string, domains ...string) error {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: app, Dir: withDomains(t, domains...)}, io.Discard)
		return err
	}
	if err := deployAs("b"); err != nil {
		t.Fatal(err)
	}
	if err := deployAs("a", "www.a.example"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		app     string
		domains []string
		want    string
	}{
		{"another app's host", "a", []string{"b.localhost"}, `package.json: flock.domains[0] "b.localhost" is app b's host`},
		{"another app's domain", "c", []string{"ok.example", "www.a.example"}, `package.json: flock.domains[1] "www.a.example" is app a's domain`},
		{"the API's host", "a", []string{"flock.example.com"}, `package.json: flock.domains[0] "flock.example.com" is the API's host`},
		{"localhost", "a", []string{"localhost"}, `package.json: flock.domains[0] "localhost" must not be localhost`},
		{"an IP literal", "a", []string{"127.0.0.1"}, `package.json: flock.domains[0] "127.0.0.1" must be a host name, not an IP address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := deployAs(tc.app, tc.domains...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("deploy of %s with domains %v: %v\nwant %q", tc.app, tc.domains, err, tc.want)
			}
			if !errors.Is(err, deploy.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}

	// A new app cannot take a name whose host is another app's domain.
	if err := deployAs("a", "www.a.example", "later.localhost"); err != nil {
		t.Fatal(err)
	}
	err := deployAs("later")
	if want := `app later: its host "later.localhost" is app a's domain`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("deploy of app later: %v\nwant %q", err, want)
	}
	if _, err := p.svc.App(ctx, "later"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("the refused app exists: %v", err)
	}

	// Every refused deploy left a's and b's releases serving.
	for app, rel := range map[string]string{"a": "v2", "b": "v1"} {
		a, err := p.svc.App(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if a.Release != rel || a.State != deploy.StateRunning || a.HealthyCount() == 0 {
			t.Fatalf("%s after refused deploys: release %s, %s, %d healthy; want %s running", app, a.Release, a.State, a.HealthyCount(), rel)
		}
		if code, _ := get(t, a.Instances[0]); code != 200 {
			t.Errorf("%s's instance answers %d", app, code)
		}
	}

	// A rollback to a release whose domain another app took meanwhile is
	// refused too.
	if err := deployAs("a"); err != nil { // a gives www.a.example up (v3)
		t.Fatal(err)
	}
	if err := deployAs("c", "www.a.example"); err != nil {
		t.Fatal(err)
	}
	_, err = p.svc.Rollback(ctx, "a", "v1", io.Discard)
	if want := `"www.a.example" is app c's domain`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("rollback of a to v1: %v\nwant %q", err, want)
	}
	if a, _ := p.svc.App(ctx, "a"); a.Release != "v3" || a.HealthyCount() == 0 {
		t.Errorf("a after the refused rollback: %s with %d healthy, want v3 serving", a.Release, a.HealthyCount())
	}
}

// TestConcurrentDeploysCannotShareADomain: two new apps that deploy at
// once with the same domain both pass the check before their builds;
// the rollout that comes second sees the first one's claim and fails.
func TestConcurrentDeploysCannotShareADomain(t *testing.T) {
	ctx := context.Background()
	p := startPlatform(t, t.TempDir())
	dirs := map[string]string{"c": withDomains(t, "race.example"), "d": withDomains(t, "race.example")}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for app, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: app, Dir: dir}, io.Discard)
			mu.Lock()
			errs[app] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if (errs["c"] == nil) == (errs["d"] == nil) {
		t.Fatalf("deploys of c and d with the same domain: c %v, d %v; want exactly one refused", errs["c"], errs["d"])
	}
	for app, err := range errs {
		if err != nil && !strings.Contains(err.Error(), `"race.example" is app `) {
			t.Errorf("%s refused with %v; want the owner named", app, err)
		}
	}
}
