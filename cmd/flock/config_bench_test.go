package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

var (
	liveRE    = regexp.MustCompile(`(v[0-9]+) is live`)
	releaseRE = regexp.MustCompile(`\(release (v[0-9]+)\)`)
)

// BenchmarkConfigSet: from the start of `flock config set` until every
// instance serves the new config (HAProxy answers only from the new
// release, several requests in a row), median of N. The clock does not
// wait for the command: the new release takes the traffic as soon as its
// instances pass their checks, while the command says "live" only after
// the release's stability window (2 s by default). Both figures are
// reported. "hello" is docs/examples/hello; "stable0" is testdata/envapp,
// which sets stableSeconds 0 and is checked for the new value itself.
func BenchmarkConfigSet(b *testing.B) {
	b.Run("hello", func(b *testing.B) {
		benchConfigSet(b, "hello", copyExample(b, "hello"), func(f *flock, _ string) string {
			_, body, _ := f.get("hello.localhost")
			if m := releaseRE.FindStringSubmatch(body); m != nil {
				return m[1]
			}
			return ""
		})
	})
	b.Run("stable0", func(b *testing.B) {
		benchConfigSet(b, "envapp", copyEnvApp(b), func(f *flock, value string) string {
			if _, body := f.getPath("envapp.localhost", "/GREETING"); body != value {
				return "" // the old value, or none
			}
			return "new"
		})
	})
}

// benchConfigSet times config set on app, scaled to 2. served returns
// what one request through HAProxy was answered by: the release (hello),
// "new" once the new value is served (envapp), "" when it cannot tell.
func benchConfigSet(b *testing.B, app, dir string, served func(f *flock, value string) string) {
	f := newFlock(b)
	f.start()
	f.mustCLI("deploy", "--app", app, dir)
	f.mustCLI("scale", app, "2")
	testkit.WaitFor(b, 30*time.Second, "2 healthy instances", func() bool { return f.apps()[app].HealthyCount() == 2 })
	var toServed, toLive []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		value := fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		before := served(f, value)
		type cliResult struct {
			out string
			err error
			at  time.Time
		}
		done := make(chan cliResult, 1)
		start := time.Now()
		go func() {
			out, err := f.cli("config", "set", app, "GREETING="+value)
			done <- cliResult{out, err, time.Now()}
		}()
		var seen string
		for ok := 0; ok < 4; { // 4 in a row: both instances, round robin
			if now := served(f, value); now != "" && now != before && (ok == 0 || now == seen) {
				seen = now
				ok++
			} else {
				ok = 0
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("the new config not served by every instance a minute after config set")
			}
		}
		toServed = append(toServed, time.Since(start))
		r := <-done
		if r.err != nil {
			b.Fatalf("flock config set: %v\n%s", r.err, r.out)
		}
		m := liveRE.FindStringSubmatch(r.out)
		if m == nil {
			b.Fatalf("config set did not say which release is live:\n%s", r.out)
		}
		if app == "hello" && m[1] != seen {
			b.Fatalf("served %s before config set returned, but it says %s is live", seen, m[1])
		}
		toLive = append(toLive, r.at.Sub(start))
	}
	b.ReportMetric(medianMS(toServed), "ms/config-set")
	b.ReportMetric(medianMS(toLive), "ms/to-live")
}
