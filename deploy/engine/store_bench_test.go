package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// BenchmarkStoreOpenAndBackup measures what the store's safety costs on a
// store of 1,000 apps with 10 releases and 10 deploy logs (4 KiB) each:
// reading it all back at open (verify) and writing the copy.
func BenchmarkStoreOpenAndBackup(b *testing.B) {
	dir := b.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	log := strings.Repeat("-----> a line of a build log\n", 140)
	for i := range 1000 {
		app := fmt.Sprintf("app%d", i)
		if _, err := s.updateApp(app, true, func(r *appRecord) error { r.Current = "v10"; return nil }); err != nil {
			b.Fatal(err)
		}
		for v := 1; v <= 10; v++ {
			if err := s.putRelease(deploy.Release{App: app, Name: deploy.ReleaseName(v), Version: v, Env: map[string]string{"A": "b"}}); err != nil {
				b.Fatal(err)
			}
			if err := s.putDeploy(deploy.Rollout{ID: fmt.Sprintf("%s-%d", app, v), App: app, Log: log}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, storeFile))
	for b.Loop() {
		s, err := OpenStore(dir) // verifies, then backs up
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.copier.stopAndWait()
		s.db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "store-MiB")
}
