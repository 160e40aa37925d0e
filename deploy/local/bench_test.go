package local

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"
)

// BenchmarkStartToHealthyOverhead measures what the scheduler adds to an
// app's own boot: the time from the Deploy call until the instance has
// passed its check (Deploy returns then: a new app has nothing to retire),
// minus the time the app itself reports from exec to listening. Each run
// deploys a new app, so the slug's release folder is made each time too.
// Reported as the median in ms ("overhead-ms"); the target is ≤ 50.
func BenchmarkStartToHealthyOverhead(b *testing.B) {
	s := startScheduler(b, func(c *Config) { c.StopGrace = time.Second })
	slug := makeSlug(b, map[string]string{"Procfile": "web: ./server\n"})
	ctx := context.Background()
	var overhead []float64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("bench-%d", i)
		spec := appSpec(name, "v1", 1)
		spec.SlugPath = slug
		start := time.Now()
		if err := s.Deploy(ctx, spec, nil); err != nil {
			b.Fatal(err)
		}
		total := time.Since(start)
		b.StopTimer()
		in := instances(b, s, name)[0]
		boot := time.Duration(info(b, in.Port).BootMicros) * time.Microsecond
		overhead = append(overhead, float64(total-boot)/float64(time.Millisecond))
		if err := s.Remove(ctx, name); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	sort.Float64s(overhead)
	b.ReportMetric(overhead[len(overhead)/2], "overhead-ms")
}
