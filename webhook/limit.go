package webhook

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// failures counts wrong credentials per client address, so the git remote's
// token cannot be guessed at network speed: after max wrong tries within
// window, every request with credentials from that address is answered 429
// until the window ends, the right token included (else the guessing would
// go on, only slower to read).
type failures struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	by     map[string]*tries
	now    func() time.Time
}

type tries struct {
	n     int
	since time.Time // first wrong try of the window
}

// maxAddrs bounds the addresses remembered; past it, new addresses share
// one count, so a sender of many addresses cannot grow the map.
const maxAddrs = 1 << 14

func newFailures(max int, window time.Duration) *failures {
	return &failures{max: max, window: window, by: make(map[string]*tries), now: time.Now}
}

// blocked reports how long the address of r must wait, or 0.
func (f *failures) blocked(r *http.Request) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.by[f.key(clientAddr(r))]
	if !ok || t.n < f.max {
		return 0
	}
	return max(0, t.since.Add(f.window).Sub(f.now()))
}

// fail counts a wrong try from the address of r.
func (f *failures) fail(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if len(f.by) >= maxAddrs {
		for k, t := range f.by {
			if now.Sub(t.since) >= f.window {
				delete(f.by, k)
			}
		}
	}
	k := f.key(clientAddr(r))
	t, ok := f.by[k]
	if !ok || now.Sub(t.since) >= f.window {
		t = &tries{since: now}
		f.by[k] = t
	}
	t.n++
}

func (f *failures) key(addr string) string {
	if _, ok := f.by[addr]; ok || len(f.by) < maxAddrs {
		return addr
	}
	return "overflow"
}

// clientAddr is the IP address r came from.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfter is a Retry-After value in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
