package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCheckRules: the one table of the rules every consumer of a check
// derives through Normalized, EffectiveChecks and ValidCheckPath.
func TestCheckRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Check
		want Check
	}{
		{"built by hand: every default", Check{Path: "/h"}, Check{Path: "/h", IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 30, MaxConsecutiveFailures: 3}},
		{"explicit zero grace stays zero", Check{IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 0, MaxConsecutiveFailures: 3},
			Check{IntervalSeconds: 10, TimeoutSeconds: 5, GracePeriodSeconds: 0, MaxConsecutiveFailures: 3}},
		{"timeout shrinks to a short interval", Check{IntervalSeconds: 2, TimeoutSeconds: 9, MaxConsecutiveFailures: 1}, Check{IntervalSeconds: 2, TimeoutSeconds: 2, MaxConsecutiveFailures: 1}},
		{"missing timeout and failures", Check{IntervalSeconds: 20}, Check{IntervalSeconds: 20, TimeoutSeconds: 5, MaxConsecutiveFailures: 3}},
		{"negative grace and port", Check{IntervalSeconds: 10, TimeoutSeconds: 1, GracePeriodSeconds: -4, MaxConsecutiveFailures: 2, PortIndex: -1},
			Check{IntervalSeconds: 10, TimeoutSeconds: 1, MaxConsecutiveFailures: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.in.Normalized()); diff != "" {
				t.Errorf("Normalized (-want +got):\n%s", diff)
			}
		})
	}
	if got := (Descriptor{}).EffectiveChecks(); len(got) != 1 || got[0] != defaultCheck() {
		t.Errorf("no checks: %+v, want the default TCP check", got)
	}
	// Every check the parser returns is already normal: consumers that
	// normalize again change nothing.
	d, err := ParseDescriptor("package.json", []byte(`{"name":"a","flock":{"checks":[{"path":"/health(deep)","gracePeriodSeconds":0,"intervalSeconds":3}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Checks, d.EffectiveChecks()); diff != "" {
		t.Errorf("a parsed check changes when normalized (-parsed +effective):\n%s", diff)
	}
	if d.RoutingCheck().GracePeriodSeconds != 0 || d.RoutingCheck().Path != "/health(deep)" {
		t.Errorf("routing check %+v", d.RoutingCheck())
	}
	for p, want := range map[string]bool{
		"/": true, "/health(deep)": true, "/h?x=1&y=%20": true,
		"health": false, "//evil.example/": false, "/a b": false, "/a#b": false, `/a"b`: false, "/a$HOME": false, "/a\\b": false,
	} {
		if got := ValidCheckPath(p); got != want {
			t.Errorf("ValidCheckPath(%q) = %v, want %v", p, got, want)
		}
	}
}
