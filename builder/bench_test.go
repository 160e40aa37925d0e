package builder

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// BenchmarkBuildHello measures a build of docs/examples/hello: copy,
// detect, no npm (no dependencies), slug.
func BenchmarkBuildHello(b *testing.B) {
	testkit.RequireTools(b, "node")
	bl := newBuilder(b, b.TempDir())
	src := filepath.Join(examples, "hello")
	start := time.Now()
	n := 0
	for b.Loop() {
		n++
		if _, _, err := bl.Build(context.Background(), src, "hello", "v"+strconv.Itoa(n), "", io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(n), "ms/op")
}

// BenchmarkRebuildExpressCached measures a rebuild of docs/examples/express
// with an unchanged lockfile: node_modules comes from the cache, npm does
// not run. The first, uncached build is not timed.
func BenchmarkRebuildExpressCached(b *testing.B) {
	testkit.RequireTools(b, "node", "npm")
	bl := newBuilder(b, b.TempDir())
	src := filepath.Join(examples, "express")
	if _, _, err := bl.Build(context.Background(), src, "hello-express", "v1", "", io.Discard); err != nil {
		b.Fatal(err)
	}
	n := 1
	start := time.Now()
	for b.Loop() {
		n++
		if _, _, err := bl.Build(context.Background(), src, "hello-express", "v"+strconv.Itoa(n), "", io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(n-1), "ms/op")
}
