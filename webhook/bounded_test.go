package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// slowBody is a request body of size bytes that arrives chunk by chunk, one
// every delay, until ctx ends.
type slowBody struct {
	ctx   context.Context
	left  int64
	delay time.Duration
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	select {
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	case <-time.After(s.delay):
	}
	n := min(int64(len(p)), s.left, 16<<10)
	for i := range p[:n] {
		p[i] = 'x'
	}
	s.left -= n
	return int(n), nil
}

// post sends a delivery with the given body and signature to url.
func post(ctx context.Context, url, event string, body io.Reader, size int64, sig string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", "flood")
	req.Header.Set("X-Hub-Signature-256", sig)
	return http.DefaultTransport.RoundTrip(req)
}

const badSig = "sha256=0000000000000000000000000000000000000000000000000000000000000000"

// flood starts n deliveries of size bytes with a bad signature, each
// arriving slowly, and returns the statuses of those answered so far.
func flood(t *testing.T, url string, n int, size int64, delay time.Duration) func() map[int]int {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range n {
		wg.Go(func() {
			resp, err := post(ctx, url, "push", &slowBody{ctx: ctx, left: size, delay: delay}, size, badSig)
			if err != nil {
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func() map[int]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[int]int{}
		for k, v := range codes {
			out[k] = v
		}
		return out
	}
}

// TestGitHubAnswersDuringFlood: 40 slow 25 MB deliveries with a bad
// signature are being read, and a signed ping sent meanwhile is answered
// at once; the flood's bodies are not held in memory.
func TestGitHubAnswersDuringFlood(t *testing.T) {
	g := newTestGitHub(t, GitHubConfig{Secret: testSecret, SpoolDir: t.TempDir()}, noDeploy(t))
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	flood(t, srv.URL, 40, 25<<20, 20*time.Millisecond)
	testkit.WaitFor(t, 10*time.Second, "40 deliveries being read", func() bool { return len(g.gate.slots) == 40 })
	// Once 40 MB of the flood have arrived, they are on disk, not in memory.
	testkit.WaitFor(t, 30*time.Second, "40 MB of the flood read", func() bool { return g.gate.spooled.Load() >= 40<<20 })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if rise := int64(after.HeapAlloc) - int64(before.HeapAlloc); rise > 16<<20 {
		t.Errorf("the heap grew by %d MiB while the flood was read", rise>>20)
	}

	ping := fixture(t, "ping.json")
	start := time.Now()
	// Behind the flood the ping would wait for it, some 30 s (25 MB at
	// 16 KiB per 20 ms); 10 s leaves a busy machine room and still tells.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := post(ctx, srv.URL, "ping", bytes.NewReader(ping), int64(len(ping)), sign(testSecret, ping))
	if err != nil {
		t.Fatalf("signed ping during the flood: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "pong") {
		t.Fatalf("signed ping during the flood: %d %s, want 200 pong", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("signed delivery answered after %v during the flood", d)
	}
	if n := len(g.gate.slots); n < 30 {
		t.Errorf("only %d flood deliveries still being read: the ping did not go through during the flood", n)
	}
}

// TestGitHubBoundsUnverified: each bound on an unsigned delivery's body
// answers at once with the status that names it.
func TestGitHubBoundsUnverified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    GitHubConfig
		flood  int   // slow deliveries already being read
		size   int64 // of the delivery tested
		delay  time.Duration
		status int
		says   string
	}{
		{"too many at once", GitHubConfig{MaxUnverified: 2}, 2, 1 << 20, 50 * time.Millisecond,
			http.StatusServiceUnavailable, "too many webhook deliveries being received at once"},
		{"spool budget spent", GitHubConfig{SpoolBudget: 1 << 20}, 0, 2 << 20, 0,
			http.StatusServiceUnavailable, "too many large webhook deliveries"},
		{"too slow", GitHubConfig{BodyTimeout: 300 * time.Millisecond}, 0, 1 << 20, 50 * time.Millisecond,
			http.StatusRequestTimeout, "payload not received within 300ms"},
		{"too large", GitHubConfig{MaxBody: 1 << 20}, 0, 2 << 20, 0,
			http.StatusRequestEntityTooLarge, "payload larger than 1048576 bytes"},
		{"too large, chunked", GitHubConfig{MaxBody: 1 << 20}, 0, -(2 << 20), 0,
			http.StatusRequestEntityTooLarge, "payload larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = testSecret
			tc.cfg.SpoolDir = t.TempDir()
			g := newTestGitHub(t, tc.cfg, noDeploy(t))
			srv := httptest.NewServer(g)
			t.Cleanup(srv.Close)
			if tc.flood > 0 {
				flood(t, srv.URL, tc.flood, 25<<20, 50*time.Millisecond)
				testkit.WaitFor(t, 10*time.Second, "the flood being read", func() bool { return len(g.gate.slots) == tc.flood })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			size, length := tc.size, tc.size
			if size < 0 {
				size, length = -size, -1
			}
			resp, err := post(ctx, srv.URL, "push", &slowBody{ctx: ctx, left: size, delay: tc.delay}, length, badSig)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) {
				t.Errorf("got %d %s, want %d %q", resp.StatusCode, body, tc.status, tc.says)
			}
			if tc.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			testkit.WaitFor(t, 5*time.Second, "spool files removed", func() bool {
				ents, _ := os.ReadDir(tc.cfg.SpoolDir)
				return len(ents) == 0 && g.gate.spooled.Load() == 0
			})
		})
	}
}

// TestGitHubFailedFetchLeavesNoFolder: a fetch that fails, or a push
// refused as older, removes the folder it made.
func TestGitHubFailedFetchLeavesNoFolder(t *testing.T) {
	testkit.RequireTools(t, "git")
	work, first := newApp(t, "hello-world")
	second := commit(t, work, "server.js", "// second\n")
	cloneURL := serveRepo(t, work, "")
	gone := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(gone.Close)
	for _, tc := range []struct {
		name string
		p    Push
		want error
	}{
		{"repository gone", Push{Repo: "o/r", Name: "r", CloneURL: gone.URL + "/r.git", Commit: first}, nil},
		{"unknown commit", Push{Repo: "o/r", Name: "r", CloneURL: cloneURL, Commit: strings.Repeat("ab", 20)}, nil},
		{"older than deployed", Push{Repo: "o/r", Name: "r", CloneURL: cloneURL, Commit: first}, errOlder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			g := newTestGitHub(t, GitHubConfig{Secret: testSecret,
				Deployed: func(string) (string, map[string]string) { return second, nil }}, noDeploy(t))
			dir, err := g.checkout(context.Background(), tc.p, io.Discard)
			if err == nil {
				t.Fatalf("checkout succeeded into %s", dir)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left behind in TMPDIR: %v", ents)
			}
		})
	}
}
