package webhook

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/builder"
	"github.com/flock-paas/flock/deploy/testkit"
)

// newLimitedRemote serves a Remote like newTestRemote, with cfg changed by set.
func newLimitedRemote(t *testing.T, deploy DeployFunc, set func(*RemoteConfig)) (*Remote, string) {
	t.Helper()
	testkit.RequireTools(t, "git")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := RemoteConfig{
		Dir: t.TempDir(), Token: testToken, HookCommand: []string{"/usr/bin/env", "FLOCK_TEST_HOOK=1", exe},
		Unpack: builder.Unpack, Logger: discardLogger(),
	}
	set(&cfg)
	rm, err := NewRemote(cfg, deploy)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rm)
	t.Cleanup(srv.Close)
	return rm, srv.URL
}

// TestRemoteBoundsPushesHoweverFramed: a push over MaxSize is refused
// whether git sends its pack with a Content-Length (packs under 1 MiB) or
// chunked (larger), and a push within it deploys.
func TestRemoteBoundsPushesHoweverFramed(t *testing.T) {
	var mu sync.Mutex
	deployed := map[string]bool{}
	_, base := newLimitedRemote(t, func(ctx context.Context, p Push, dir string, log io.Writer) (string, error) {
		mu.Lock()
		deployed[p.Name] = true
		mu.Unlock()
		return "http://" + p.Name + ".localhost", nil
	}, func(c *RemoteConfig) { c.MaxSize = 256 << 10 })
	for _, tc := range []struct {
		name string
		blob int // bytes of random data in the commit
		ok   bool
	}{
		{"small", 0, true},
		{"length", 600 << 10, false},
		{"chunked", 3 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work, _ := newApp(t, tc.name)
			if tc.blob > 0 {
				b := make([]byte, tc.blob)
				rand.Read(b)
				commit(t, work, "data.bin", string(b))
			}
			out, err := push(t, work, remoteURL(base, testToken, tc.name), "main", nil)
			mu.Lock()
			got := deployed[tc.name]
			mu.Unlock()
			if tc.ok {
				if err != nil || !got {
					t.Fatalf("push within the bound: %v, deployed %v\n%s", err, got, out)
				}
				return
			}
			if err == nil || got {
				t.Fatalf("push over the bound: err %v, deployed %v\n%s", err, got, out)
			}
			if !strings.Contains(out, "413") {
				t.Errorf("git does not show the 413:\n%s", out)
			}
		})
	}
}

// TestRemoteLimitsWrongTokens: after AuthFailures wrong tokens an address
// gets 429 with Retry-After, even with the right token, until the window
// ends; another address is not affected.
func TestRemoteLimitsWrongTokens(t *testing.T) {
	rm, base := newLimitedRemote(t, noDeploy(t), func(c *RemoteConfig) { c.AuthFailures = 3 })
	var mu sync.Mutex
	now := time.Now()
	rm.wrong.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	try := func(c *http.Client, pass string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/git/hello.git/info/refs?service=git-receive-pack", nil)
		if pass != "" {
			req.SetBasicAuth("x", pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	local := from("127.0.0.1")
	for i := range 3 {
		if code, _ := try(local, "guess"+strconv.Itoa(i)); code != 401 {
			t.Fatalf("wrong try %d: %d, want 401", i+1, code)
		}
	}
	if code, _ := try(local, ""); code != 401 {
		t.Errorf("no credentials: %d, want 401 (a challenge is not a wrong try)", code)
	}
	for _, pass := range []string{"guess4", testToken} {
		code, h := try(local, pass)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") != "60" {
			t.Errorf("after 3 wrong tries, %q: %d Retry-After %q, want 429 and 60", pass, code, h.Get("Retry-After"))
		}
	}
	if code, _ := try(from("127.0.0.2"), testToken); code != 200 {
		t.Errorf("another address with the right token: %d, want 200", code)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if code, _ := try(local, testToken); code != 200 {
		t.Errorf("after the window, the right token: %d, want 200", code)
	}
}
