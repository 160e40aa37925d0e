package backup

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// startWaker runs a waker for p until the test ends and returns its URL.
func startWaker(tb testing.TB, p Platform, cfg Config) (*Waker, string) {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	w.Follow(p)
	if err := w.Listen(); err != nil {
		tb.Fatal(err)
	}
	if tp, ok := p.(*testPlatform); ok {
		tp.mu.Lock()
		tp.drainer = w
		tp.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v", err)
		}
	})
	return w, "http://" + w.Addr()
}

// client is shared by a test's requests, with room for many connections.
func newClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 2000, MaxIdleConnsPerHost: 2000,
	}}
}

type reply struct {
	status int
	body   string
	header http.Header
}

func send(c *http.Client, method, url, app string, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return reply{}, err
	}
	if app != "" {
		req.Header.Set(HeaderApp, app)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header}, err
}

func mustSend(tb testing.TB, c *http.Client, method, url, app string, body io.Reader) reply {
	tb.Helper()
	r, err := send(c, method, url, app, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func coldStartMS(tb testing.TB, r reply) int {
	tb.Helper()
	v := r.header.Get(HeaderColdStart)
	ms, err := strconv.Atoi(v)
	if err != nil {
		tb.Fatalf("%s = %q, want milliseconds", HeaderColdStart, v)
	}
	return ms
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// counterValue reads a counter's current value.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
