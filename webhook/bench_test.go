package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// BenchmarkWebhook100Concurrent measures how fast a signed push delivery is
// answered 202 while 100 arrive at once. Target: p99 ≤ 50 ms.
func BenchmarkWebhook100Concurrent(b *testing.B) {
	body := fixture(b, "push-branch-master.json")
	g := newTestGitHub(b, GitHubConfig{Secret: testSecret}, func(context.Context, Push, string, io.Writer) (string, error) {
		return "http://hello-world.localhost", nil
	})
	// The answer is what is measured, not the fetch: the job does nothing.
	none := filepath.Join(b.TempDir(), "none")
	g.fetch = func(context.Context, Push, io.Writer) (string, error) { return none, nil }
	runInBackground(b, g.Run)
	srv := httptest.NewServer(g)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	sig := sign(testSecret, body)
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for j := range 100 {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL, bytesReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%d", i, j))
				req.Header.Set("X-Hub-Signature-256", sig)
				start := time.Now()
				resp, err := client.Do(req)
				d := time.Since(start)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
		}
		wg.Wait()
		b.StopTimer()
		testkit.WaitFor(b, 30*time.Second, "queue drained", func() bool { return g.Pending() == 0 })
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
}

// BenchmarkGitPushHello measures a git push of the hello example to Flock's
// remote, from starting `git push` to the DeployFunc returning, with a
// DeployFunc that does nothing: the cost of the git path alone.
func BenchmarkGitPushHello(b *testing.B) {
	work, _ := newApp(b, "hello")
	if src := "../docs/examples/hello"; dirExists(src) {
		work = b.TempDir()
		copyDir(b, src, work)
		git(b, work, "init", "-q", "--initial-branch=main")
		git(b, work, "add", ".")
		git(b, work, "commit", "-q", "-m", "hello")
	}
	var mu sync.Mutex
	var returned time.Time
	_, base, _ := newTestRemote(b, func(context.Context, Push, string, io.Writer) (string, error) {
		mu.Lock()
		returned = time.Now()
		mu.Unlock()
		return "http://hello.localhost:8000", nil
	})
	url := remoteURL(base, testToken, "hello")
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		commit(b, work, "VERSION", fmt.Sprintln(i))
		b.StartTimer()
		start := time.Now()
		if out, err := push(b, work, url, "main", nil); err != nil {
			b.Fatalf("push: %v\n%s", err, out)
		}
		mu.Lock()
		lat = append(lat, returned.Sub(start))
		mu.Unlock()
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "median-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// copyDir copies the regular files of src into dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, dst, rel, string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
