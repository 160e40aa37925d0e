package web

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/deploy"
)

// BenchmarkMetricsScrape serves /metrics over the real engine.Service and
// its bbolt store, with 300 apps of 3 deploys each: what one Prometheus
// scrape costs Flock.
func BenchmarkMetricsScrape(b *testing.B) {
	const apps, deploys = 300, 3
	store, err := engine.OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc, err := engine.New(engine.Config{Domain: "localhost", Builds: 4}, store, newMemScheduler(), slugBuilder{b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	src := b.TempDir()
	for i := range apps {
		name := fmt.Sprintf("app-%03d", i)
		if err := os.WriteFile(filepath.Join(src, "package.json"), fmt.Appendf(nil, `{"name":%q,"scripts":{"start":"node server.js"}}`, name), 0o644); err != nil {
			b.Fatal(err)
		}
		for range deploys {
			if _, err := svc.Deploy(ctx, deploy.DeployRequest{Dir: src}, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := New(Config{Token: testToken, Hosts: []string{"flock.example.com"}}, svc)
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.ResetTimer()
	for b.Loop() {
		if w := do(b, h, req{path: "/metrics", token: testToken}); w.Code != 200 {
			b.Fatalf("/metrics = %d", w.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ms/scrape")
}
