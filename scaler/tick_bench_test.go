package scaler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// fixtures are the real HAProxy stats captures, kept with their parser
// (router/hap/testdata/haproxy/SOURCES.md).
const fixtures = "../router/hap/testdata/haproxy"

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	return b
}

// statsFor10kApps is a `show stat` dump of HAProxy 2.6 with n apps, each
// with one instance and the waker as backup, as the router configures them.
func statsForApps(tb testing.TB, n int) []byte {
	src := string(readFixture(tb, "show-stat-haproxy26-local-capture-scale-to-zero-backup.csv"))
	lines := strings.Split(src, "\n")
	var app []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "be_app1,") {
			app = append(app, l)
		}
	}
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for i := range n {
		name := fmt.Sprintf("app_app%05d,", i)
		for _, l := range app {
			b.WriteString(name + strings.TrimPrefix(l, "be_app1,") + "\n")
		}
	}
	return []byte(b.String())
}

// BenchmarkTick10kApps is one scaler tick over 10,000 apps: parse the
// stats, update every app's activity, decide (nothing to do).
func BenchmarkTick10kApps(b *testing.B) { benchmarkTick(b, 1) }

// BenchmarkTick10kAppsReloading is the same tick while a reload's old
// worker still serves: two workers' dumps, counted per worker.
func BenchmarkTick10kAppsReloading(b *testing.B) { benchmarkTick(b, 2) }

func benchmarkTick(b *testing.B, workers int) {
	data := statsForApps(b, 10000)
	var ws []hap.WorkerStats
	for i := range workers {
		ws = append(ws, hap.WorkerStats{Pid: 100 + i, Current: i == 0, CSV: data})
	}
	var apps []deploy.App
	for i := range 10000 {
		apps = append(apps, deploy.App{Name: fmt.Sprintf("app%05d", i), State: deploy.StateRunning,
			Desired: 1, IdleTimeout: time.Hour, Descriptor: deploy.Descriptor{MaxInstances: ptr(4)}})
	}
	p := newFakePlatform(apps...)
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p,
		StatsFunc(func(context.Context) ([]hap.WorkerStats, error) { return ws, nil }))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if err := s.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/tick")
	if len(p.takeCalls()) != 0 {
		b.Fatal("unexpected calls")
	}
}
