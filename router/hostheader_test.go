package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// rawGet sends a hand-written request head to HAProxy, so that it can
// carry what Go's client never sends: two Host headers, a Host list.
func (h *harness) rawGet(t *testing.T, head string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.cfg.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAmbiguousHostGets400: a request names one host. A Host header with
// a list of hosts, or two Host headers, would let HAProxy route by one
// name and the app read another; HAProxy answers 400 instead.
func TestAmbiguousHostGets400(t *testing.T) {
	h := newHarness(t, nil)
	a, b := newInstance(t, "a.v1.1"), newInstance(t, "b.v1.1")
	greedy := app("a", a)
	greedy.Domains = []string{"b.localhost"} // refused: b's host stays b's
	h.r.Update([]deploy.App{greedy, app("b", b)})
	testkit.WaitFor(t, 5*time.Second, "a and b routed", func() bool {
		return h.routesTo("a.localhost", "a.v1.1") && h.routesTo("b.localhost", "b.v1.1")
	})
	for _, tc := range []struct {
		name, head string
		code       int
	}{
		{"one host", "GET / HTTP/1.1\r\nHost: b.localhost\r\n", 200},
		{"a list of hosts", "GET / HTTP/1.1\r\nHost: a.localhost,b.localhost\r\n", 400},
		{"a list with spaces", "GET / HTTP/1.1\r\nHost: a.localhost , b.localhost\r\n", 400},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n", 400},
		// HAProxy folds identical Host headers into one: no ambiguity.
		{"the same Host twice", "GET / HTTP/1.1\r\nHost: b.localhost\r\nHost: b.localhost\r\n", 200},
		{"HTTP/1.0 with two Host headers", "GET / HTTP/1.0\r\nHost: a.localhost\r\nHost: b.localhost\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := h.rawGet(t, tc.head)
			if code != tc.code {
				t.Errorf("%q: %d %.80q, want %d", tc.head, code, body, tc.code)
			}
		})
	}
}
