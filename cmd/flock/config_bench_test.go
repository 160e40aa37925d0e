package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

var liveRE = regexp.MustCompile(`(v[0-9]+) is live`)

// BenchmarkConfigSet: `flock config set` until every instance serves the
// new release (HAProxy answers only from it, several requests in a row),
// median of N. "hello" is docs/examples/hello (the default 2 s stability
// window of a new release included); "stable0" is testdata/envapp, which
// sets stableSeconds 0 and also checks that the new value is served.
func BenchmarkConfigSet(b *testing.B) {
	b.Run("hello", func(b *testing.B) {
		benchConfigSet(b, "hello", copyExample(b, "hello"), func(f *flock, rel, value string) bool {
			_, body, _ := f.get("hello.localhost")
			return strings.Contains(body, "(release "+rel+")")
		})
	})
	b.Run("stable0", func(b *testing.B) {
		benchConfigSet(b, "envapp", copyEnvApp(b), func(f *flock, rel, value string) bool {
			_, body := f.getPath("envapp.localhost", "/GREETING")
			return body == value
		})
	})
}

func benchConfigSet(b *testing.B, app, dir string, served func(f *flock, rel, value string) bool) {
	f := newFlock(b)
	f.start()
	f.mustCLI("deploy", "--app", app, dir)
	f.mustCLI("scale", app, "2")
	testkit.WaitFor(b, 30*time.Second, "2 healthy instances", func() bool { return f.apps()[app].HealthyCount() == 2 })
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		value := fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		start := time.Now()
		out := f.mustCLI("config", "set", app, "GREETING="+value)
		m := liveRE.FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("config set did not say which release is live:\n%s", out)
		}
		for ok := 0; ok < 4; { // 4 in a row: both instances, round robin
			if served(f, m[1], value) {
				ok++
			} else {
				ok = 0
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("%s not served by every instance a minute after config set", m[1])
			}
		}
		ds = append(ds, time.Since(start))
	}
	b.ReportMetric(medianMS(ds), "ms/config-set")
}
