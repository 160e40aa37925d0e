package main

import (
	"bufio"
	"fmt"
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

// TestThousandRequestsWakeOnce: 1,000 concurrent requests through HAProxy
// to a sleeping app are all answered, by exactly one scale-up.
func TestThousandRequestsWakeOnce(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 10*time.Second, "asleep", func() bool { return len(f.apps()["hello"].Instances) == 0 })

	tr := &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 70 * time.Second}
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/", nil)
			req.Host = "hello.localhost"
			resp, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			} else {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, resp.Status)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of 1000 requests failed (first: %v)", failed.Load(), firstErr.Load())
	}
	a := f.apps()["hello"]
	if len(a.Instances) != a.Desired {
		t.Errorf("%d instances after the wake, want %d: one scale-up", len(a.Instances), a.Desired)
	}
	rels := f.mustCLI("releases", "hello")
	if strings.Count(rels, "succeeded") != 1 {
		t.Errorf("the wake must not deploy:\n%s", rels)
	}
}

// TestWakeDuringReload: HAProxy reloads (a new app is deployed) while a
// request waits for a sleeping app to wake; the request is answered.
func TestWakeDuringReload(t *testing.T) {
	f := newFlock(t)
	f.start()
	slow := copyExample(t, "hello")
	// An app that takes a second to listen: the wake spans the reload.
	rewrite(t, filepath.Join(slow, "server.js"), "server.listen(port, () => {", "setTimeout(() => server.listen(port, () => {")
	rewrite(t, filepath.Join(slow, "server.js"), "});\n\n// Finish", "}), 1000);\n\n// Finish")
	f.mustCLI("deploy", slow)
	f.mustCLI("sleep", "hello")
	testkit.WaitFor(t, 10*time.Second, "asleep", func() bool { return len(f.apps()["hello"].Instances) == 0 })

	type result struct {
		code int
		body string
	}
	done := make(chan result, 1)
	go func() { c, b, _ := f.get("hello.localhost"); done <- result{c, b} }()
	testkit.WaitFor(t, 10*time.Second, "the wake under way", func() bool { return f.apps()["hello"].State != "sleeping" })
	f.mustCLI("deploy", copyExample(t, "python")) // a new backend: HAProxy reloads
	r := <-done
	if r.code != 200 {
		t.Errorf("request held across a reload: %d %q", r.code, r.body)
	}
}

// streamApp is an app with a long-lived response (as a websocket or SSE
// would hold): /stream sends a line a second until the client leaves.
const streamApp = `const http = require("http");
const server = http.createServer((req, res) => {
  if (req.url === "/stream") {
    res.writeHead(200, {"Content-Type": "text/plain"});
    const t = setInterval(() => res.write("tick\n"), 200);
    req.on("close", () => clearInterval(t));
    return;
  }
  res.end("ok\n");
});
server.listen(process.env.PORT);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`

// TestLongConnectionKeepsAppAwake: an open long-lived connection keeps an
// app awake past its idle time and across HAProxy reloads; once it
// closes, the app goes to sleep.
func TestLongConnectionKeepsAppAwake(t *testing.T) {
	f := newFlock(t, "--idle", "2s", "--scale-every", "500ms")
	f.start()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"streamer","flock":{"idle":"2s"},"scripts":{"start":"node server.js"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(streamApp), 0o644)
	f.mustCLI("deploy", dir)

	req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/stream", nil)
	req.Host = "streamer.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("open stream: %v %v", err, resp)
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Two reloads while the stream is open, and well past the idle time.
	for i := 0; i < 2; i++ {
		other := copyExample(t, "hello")
		rewrite(t, filepath.Join(other, "package.json"), `"name": "hello"`, fmt.Sprintf(`"name": "other%d"`, i))
		f.mustCLI("deploy", other)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s := f.apps()["streamer"].State; s != "running" {
			t.Fatalf("streamer is %s while a connection is open", s)
		}
		select {
		case _, ok := <-lines:
			if !ok {
				t.Fatal("the long-lived connection was cut")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the stream stopped sending")
		}
	}
	resp.Body.Close()
	testkit.WaitFor(t, 20*time.Second, "streamer asleep once the connection closed", func() bool {
		return f.apps()["streamer"].State == "sleeping"
	})
}
