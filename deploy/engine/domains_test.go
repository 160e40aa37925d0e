package engine_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestAddedDomains adds and removes domains through the Service with real
// apps: the rules of the descriptor's domains hold (a host belongs to one
// app, named in the refusal), the app's domains list them at once, a
// deploy of another app cannot take them, and they survive a restart.
func TestAddedDomains(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	p := startPlatform(t, dataDir)
	deployAs := func(app string, domains ...string) error {
		_, err := p.svc.Deploy(ctx, deploy.DeployRequest{App: app, Dir: withDomains(t, domains...)}, io.Discard)
		return err
	}
	if err := deployAs("a", "www.a.example"); err != nil {
		t.Fatal(err)
	}
	if err := deployAs("b"); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name, host string
		is         error
		want       string
	}{
		{"another app's descriptor domain", "www.a.example", deploy.ErrConflict, `"www.a.example" is app a's domain`},
		{"another app's host", "a.localhost", deploy.ErrConflict, `"a.localhost" is app a's host`},
		{"the API's host", "flock.example.com", deploy.ErrConflict, `"flock.example.com" is the API's host`},
		{"localhost", "localhost", deploy.ErrInvalid, "must not be localhost"},
		{"an IP literal", "127.0.0.1", deploy.ErrInvalid, "not an IP address"},
		{"a wildcard", "*.b.example", deploy.ErrInvalid, "wildcard"},
		{"a port", "b.example:80", deploy.ErrInvalid, "port"},
		{"not a host name", "b_c.example", deploy.ErrInvalid, "must be a host name"},
		{"its own host", "b.localhost", deploy.ErrInvalid, "own host"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := p.svc.AddDomain(ctx, "b", tc.host)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("add %q to b: %v\nwant %v naming %q", tc.host, err, tc.is, tc.want)
			}
		})
	}
	if err := p.svc.AddDomain(ctx, "nope", "x.example"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("add to an unknown app: %v, want ErrNotFound", err)
	}

	if err := p.svc.AddDomain(ctx, "b", " WWW.B.example. "); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.AddDomain(ctx, "b", "www.b.example"); err != nil {
		t.Errorf("adding a domain twice: %v, want no change", err)
	}
	b, _ := p.svc.App(ctx, "b")
	if !slices.Equal(b.Domains, []string{"www.b.example"}) {
		t.Errorf("b's domains %v", b.Domains)
	}
	ds, _ := p.svc.Domains(ctx, "a")
	if len(ds) != 1 || ds[0] != (deploy.Domain{Host: "www.a.example", Source: deploy.DomainFromDescriptor}) {
		t.Errorf("a's domains %+v", ds)
	}
	// Another app's deploy, or add, cannot take it.
	if err := deployAs("a", "www.a.example", "www.b.example"); err == nil || !strings.Contains(err.Error(), `"www.b.example" is app b's domain`) {
		t.Errorf("deploy of a claiming b's added domain: %v", err)
	}
	if err := p.svc.AddDomain(ctx, "a", "www.b.example"); !errors.Is(err, deploy.ErrConflict) {
		t.Errorf("add b's domain to a: %v, want ErrConflict", err)
	}
	// A new app whose own host is an added domain is refused.
	if err := p.svc.AddDomain(ctx, "b", "c.localhost"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.svc.Create(ctx, "c"); !errors.Is(err, deploy.ErrConflict) || !strings.Contains(err.Error(), "app b's domain") {
		t.Errorf("create c whose host b holds: %v", err)
	}

	// Removing: a descriptor's domain is the descriptor's.
	if err := p.svc.RemoveDomain(ctx, "a", "www.a.example"); !errors.Is(err, deploy.ErrConflict) || !strings.Contains(err.Error(), "package.json") {
		t.Errorf("remove a descriptor domain: %v", err)
	}
	if err := p.svc.RemoveDomain(ctx, "b", "none.example"); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("remove a domain b lacks: %v", err)
	}
	if err := p.svc.RemoveDomain(ctx, "b", "c.localhost"); err != nil {
		t.Fatal(err)
	}

	// An empty app is destroyed like any other, with its domains.
	if _, err := p.svc.Create(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.AddDomain(ctx, "e", "e.example"); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.Destroy(ctx, "e"); err != nil {
		t.Fatalf("destroy an empty app: %v", err)
	}
	if err := p.svc.AddDomain(ctx, "b", "e.example"); err != nil {
		t.Errorf("a destroyed app's domain is not free: %v", err)
	}

	// They survive a restart.
	p.stop()
	p = startPlatform(t, dataDir)
	ds, err := p.svc.Domains(ctx, "b")
	if err != nil || len(ds) != 2 || ds[0] != (deploy.Domain{Host: "www.b.example", Source: deploy.DomainAdded}) {
		t.Errorf("b's domains after a restart: %+v %v", ds, err)
	}
}
