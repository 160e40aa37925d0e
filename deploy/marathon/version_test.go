package marathon

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/marathon/marathontest"
)

// TestHealthCheckKindByVersion: Mesos checks (MESOS_HTTP, MESOS_TCP) from
// Marathon 1.4 (changelog 1.3.10 → 1.4.0), only on the first check (one
// Mesos check per app, AppValidation), Marathon's own kind before; every
// value comes from the descriptor's effective checks.
func TestHealthCheckKindByVersion(t *testing.T) {
	d, err := deploy.ParseDescriptor("package.json", []byte(`{"name":"hello","flock":{"ports":2,"checks":[
		{"path":"/health","gracePeriodSeconds":0,"intervalSeconds":3},
		{"portIndex":1,"intervalSeconds":7,"maxConsecutiveFailures":5}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	eff := d.EffectiveChecks()
	for _, tt := range []struct {
		version string
		want    []string
	}{
		{"1.3.10", []string{"HTTP", "TCP"}},
		{"1.4.0", []string{"MESOS_HTTP", "TCP"}},
		{"1.5.0", []string{"MESOS_HTTP", "TCP"}},
		{"1.10.17", []string{"MESOS_HTTP", "TCP"}},
		{"", []string{"HTTP", "TCP"}}, // unknown: the kind every version runs
	} {
		t.Run(tt.version, func(t *testing.T) {
			f := newFake(t, marathontest.Options{Version: tt.version})
			if tt.version == "" {
				f.Fail("GET", "/v2/info", 404, 1)
			}
			s := newSched(t, Config{URLs: []string{f.URL}})
			spec := testSpec("hello", "v1", 1)
			spec.Descriptor = d
			var log bytes.Buffer
			if err := s.Deploy(context.Background(), spec, &log); err != nil {
				t.Fatalf("Deploy: %v\n%s", err, &log)
			}
			hcs, _ := lastBody(t, f, "POST", "/v2/apps")["healthChecks"].([]any)
			var got []string
			for i, h := range hcs {
				m := h.(map[string]any)
				got = append(got, m["protocol"].(string))
				c := eff[i]
				want := map[string]any{"gracePeriodSeconds": float64(c.GracePeriodSeconds), "intervalSeconds": float64(c.IntervalSeconds),
					"timeoutSeconds": float64(c.TimeoutSeconds), "maxConsecutiveFailures": float64(c.MaxConsecutiveFailures),
					"portIndex": float64(c.PortIndex)}
				for k, v := range want {
					if m[k] != v {
						t.Errorf("check %d %s = %v, want %v (EffectiveChecks)", i, k, m[k], v)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("protocols (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for v, want := range map[string][2]int{"1.10.17": {1, 10}, "1.5.0 (marathontest)": {1, 5}, "1.4.0-RC1": {1, 4}, "v1.6.322": {1, 6}} {
		if got, ok := parseVersion(v); !ok || got != want {
			t.Errorf("parseVersion(%q) = %v, %v", v, got, ok)
		}
	}
	if _, ok := parseVersion("dev"); ok {
		t.Error("parseVersion(dev) ok")
	}
}
