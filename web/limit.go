package web

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Wrong tokens, through the login form or as a bearer token, are counted
// per client address: after loginLimit of them in loginWindow, that
// address gets 429 until the window ends, whatever token it sends. Other
// addresses are not affected, so a guesser does not lock the token's
// holder out (unless both share an address: apps and a CLI on the same
// machine all come from loopback).
const (
	loginLimit  = 10
	loginWindow = time.Minute
	// maxTracked caps the addresses counted at once, so that a flood of
	// wrong tokens from many addresses cannot grow the map without end.
	maxTracked = 10000
)

// failures counts wrong tokens per client address, so that guessing the
// token is slow even though each guess is cheap.
type failures struct {
	mu    sync.Mutex
	m     map[string]*window
	swept time.Time // last sweep of finished windows
}

type window struct {
	n     int
	start time.Time
}

func newFailures() *failures { return &failures{m: make(map[string]*window)} }

// clientIP is the address failures are counted by. IPv6 clients count by
// their /64: a single host usually holds the whole /64, and counting each
// of its 2^64 addresses apart would be no limit at all.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// wait reports how long the client must wait before it may try another
// token; 0 means now.
func (f *failures) wait(ip string, now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[ip]
	if w == nil || w.n < loginLimit {
		return 0
	}
	if left := loginWindow - now.Sub(w.start); left > 0 {
		return left
	}
	return 0
}

// add counts a wrong token.
func (f *failures) add(ip string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[ip]
	if w == nil || now.Sub(w.start) > loginWindow {
		if w == nil && len(f.m) >= maxTracked {
			f.evict(now)
		}
		w = &window{start: now}
		f.m[ip] = w
	}
	w.n++
}

// evict makes room for one more address, so the map never holds more
// than maxTracked. Finished windows go first, in a sweep made at most
// every quarter window (a sweep reads the whole map, too slow to do on
// every wrong token of a flood); if none has finished, an arbitrary
// address goes (map order is random).
func (f *failures) evict(now time.Time) {
	if now.Sub(f.swept) > loginWindow/4 {
		f.swept = now
		for k, w := range f.m {
			if now.Sub(w.start) > loginWindow {
				delete(f.m, k)
			}
		}
	}
	for k := range f.m {
		if len(f.m) < maxTracked {
			return
		}
		delete(f.m, k)
	}
}

// tracked is how many addresses are counted now.
func (f *failures) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// retryAfter is a Retry-After header value: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
