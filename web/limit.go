package web

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// loginLimit is how many wrong tokens one client may try per window.
const (
	loginLimit  = 10
	loginWindow = time.Minute
)

// failures counts wrong logins per client address, so that guessing the
// token through the login form is slow even though each guess is cheap.
type failures struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	n     int
	start time.Time
}

func newFailures() *failures { return &failures{m: make(map[string]*window)} }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowed reports whether the client may try another token now.
func (f *failures) allowed(ip string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.m[ip]
	return w == nil || now.Sub(w.start) > loginWindow || w.n < loginLimit
}

// add counts a wrong token.
func (f *failures) add(ip string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) > 10000 {
		for k, w := range f.m {
			if now.Sub(w.start) > loginWindow {
				delete(f.m, k)
			}
		}
	}
	w := f.m[ip]
	if w == nil || now.Sub(w.start) > loginWindow {
		w = &window{start: now}
		f.m[ip] = w
	}
	w.n++
}
