package router

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Servers go into HAProxy by IP address. A scheduler such as Marathon
// names an instance's agent by host name (task.host), and HAProxy 2.6
// refuses a whole configuration when one server's name does not resolve
// at start or reload; resolving here turns one lost agent into one
// refused server, shown by Err, instead of a router stuck on its last
// good file. Names are cached: a lookup runs when an entry is unknown or
// has expired, never on every change.
type resolver struct {
	lookup  func(ctx context.Context, host string) ([]net.IP, error)
	ttl     time.Duration // how long an answer is kept
	negTTL  time.Duration // how long a failure is kept before the next try
	timeout time.Duration // bounds one lookup
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]hostAddr
}

// hostAddr is what a host name resolved to: ip, or err when it never
// resolved. A name that resolved once keeps its last address when a later
// lookup fails (HAProxy's "init-addr last"): a DNS hiccup must not take
// servers out.
type hostAddr struct {
	ip    string
	err   error
	until time.Time
}

func newResolver() *resolver {
	return &resolver{
		lookup: func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		},
		ttl:     time.Minute,
		negTTL:  10 * time.Second,
		timeout: 2 * time.Second,
		now:     time.Now,
		cache:   map[string]hostAddr{},
	}
}

// resolve returns the address of every host name in hosts, looking up in
// parallel those the cache does not hold or holds past their time. Names
// not asked for are forgotten.
func (r *resolver) resolve(ctx context.Context, hosts map[string]bool) map[string]hostAddr {
	now := r.now()
	r.mu.Lock()
	out := make(map[string]hostAddr, len(hosts))
	var due []string
	for h := range hosts {
		c, ok := r.cache[h]
		if ok && now.Before(c.until) {
			out[h] = c
			continue
		}
		due = append(due, h)
	}
	r.mu.Unlock()

	results := make([]hostAddr, len(due))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, h := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = r.lookupOne(ctx, h)
		}()
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range due {
		a := results[i]
		if a.err != nil {
			if last := r.cache[h]; last.ip != "" {
				a = hostAddr{ip: last.ip, until: a.until}
			}
		}
		out[h] = a
	}
	r.cache = out
	return out
}

// lookupOne resolves host, preferring an IPv4 address: agents usually
// listen on both, and IPv4 is what a Mesos agent advertises.
func (r *resolver) lookupOne(ctx context.Context, host string) hostAddr {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ips, err := r.lookup(ctx, host)
	now := r.now()
	if err != nil {
		return hostAddr{err: err, until: now.Add(r.negTTL)}
	}
	var pick net.IP
	for _, ip := range ips {
		if ip.To4() != nil {
			pick = ip.To4()
			break
		}
		if pick == nil {
			pick = ip
		}
	}
	if pick == nil {
		return hostAddr{err: fmt.Errorf("no address for %s", host), until: now.Add(r.negTTL)}
	}
	return hostAddr{ip: pick.String(), until: now.Add(r.ttl)}
}

// due reports whether an entry has expired, so that a retry may find a
// lost agent back or an agent's address changed.
func (r *resolver) due() bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cache {
		if !now.Before(c.until) {
			return true
		}
	}
	return false
}

// isName reports whether host is a name to resolve, not an IP literal.
func isName(host string) bool { return net.ParseIP(host) == nil }
