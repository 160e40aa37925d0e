package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// paced is a request body of size bytes of 'x' sent 64 KiB at a time,
// one piece every every, until ctx ends.
type paced struct {
	ctx   context.Context
	left  int64
	every time.Duration
	sent  *atomic.Int64 // bytes sent by every paced body of a flood
}

func (p *paced) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	select {
	case <-p.ctx.Done():
		return 0, p.ctx.Err()
	case <-time.After(p.every):
	}
	n := min(int64(len(b)), p.left, 64<<10)
	for i := range b[:n] {
		b[i] = 'x'
	}
	p.left -= n
	p.sent.Add(n)
	return int(n), nil
}

// BenchmarkWebhookFlood: 40 concurrent 25 MB deliveries with a bad
// signature, each sent at about 3 MB/s, against the real flock binary.
// Reports how much Flock's resident memory rises at most (target ≤ 50 MB)
// and how long a signed delivery sent during the flood takes to be
// answered; it must be answered 200.
func BenchmarkWebhookFlood(b *testing.B) {
	const secret = "flood-secret"
	file := filepath.Join(b.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		b.Fatal(err)
	}
	f := newFlock(b, "--github-secret-file", file)
	f.start()
	pid := f.cmd.Process.Pid
	url := "http://" + f.api + "/hooks/github"
	deliver := func(ctx context.Context, body io.Reader, size int64, sig, event string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", "flood")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	ping := `{"zen": "Design for failure.", "hook_id": 1}`
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ping))
	goodSig := "sha256=" + hex.EncodeToString(m.Sum(nil))
	badSig := "sha256=" + strings.Repeat("0", 64)

	testkit.WaitFor(b, 10*time.Second, "flock settled", func() bool { return rssKiB(b, pid) > 0 })
	base := rssKiB(b, pid)
	var peak float64
	var worst time.Duration
	codes := map[int]int{}
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var sent atomic.Int64
		for range 40 {
			wg.Go(func() {
				code, _ := deliver(ctx, &paced{ctx: ctx, left: 25 << 20, every: 20 * time.Millisecond, sent: &sent}, 25<<20, badSig, "push")
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if r, err := readRSS(pid); err == nil && r > peak {
						peak = r
					}
				}
			}
		}()
		testkit.WaitFor(b, 30*time.Second, "the flood under way", func() bool { return sent.Load() >= 40<<20 })
		start := time.Now()
		code, err := deliver(ctx, strings.NewReader(ping), int64(len(ping)), goodSig, "ping")
		took := time.Since(start)
		if err != nil || code != http.StatusOK {
			b.Errorf("signed ping during the flood: %d %v", code, err)
		}
		worst = max(worst, took)
		<-done
		<-sampled
		cancel()
	}
	b.StopTimer()
	b.Logf("flood answers: %v", codes)
	b.ReportMetric((peak-base)/1024, "rss-rise-MB")
	b.ReportMetric(ms(worst), "signed-ping-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
