package engine

import (
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestSpecCarriesConfig: the one spec every scheduler gets (the embedded
// one and Marathon's app definition alike) runs the release with its
// config vars over the descriptor's env and the run defaults.
func TestSpecCarriesConfig(t *testing.T) {
	s, err := New(Config{ArtifactURL: "http://flock:8080"}, &Store{}, nopSched{}, nopBuilder{})
	if err != nil {
		t.Fatal(err)
	}
	rel := deploy.Release{App: "shop", Name: "v2", Slug: "/a/shop/v2.tar.gz",
		Env:    map[string]string{"A": "descriptor", "B": "descriptor"},
		Config: map[string]string{"A": "config", "NODE_ENV": "staging"}}
	env := s.spec(rel, 1).Env
	want := map[string]string{"A": "config", "B": "descriptor", "NODE_ENV": "staging", "PYTHONUNBUFFERED": "1"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("spec env %s=%q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("spec env has %d vars, want %d", len(env), len(want))
	}
	// A config release runs v1's slug: the URL names the slug's file.
	if got, want := s.spec(deploy.Release{App: "shop", Name: "v2", Slug: "/a/shop/v1.tar.gz"}, 1).SlugURL, "http://flock:8080/artifacts/shop/v1.tar.gz"; got != want {
		t.Errorf("slug URL %s, want %s", got, want)
	}
	if rel.Env["A"] != "descriptor" {
		t.Errorf("spec changed the release's env")
	}
}
