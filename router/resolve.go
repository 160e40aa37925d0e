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
// good file.
//
// Lookups never hold up the router: resolve answers from the cache and
// starts lookups of names it lacks or holds past their time in the
// background; when an answer changes what the cache said, changed is
// called (the router then syncs again). An instance on a name not resolved
// yet joins a moment later, through the runtime API.
type resolver struct {
	lookup  func(ctx context.Context, host string) ([]net.IP, error)
	ttl     time.Duration // how long an answer is kept
	negTTL  time.Duration // how long a failure is kept before the next try
	timeout time.Duration // bounds one lookup
	now     func() time.Time
	changed func() // an answer changed; nil: nobody to tell

	sem      chan struct{} // bounds lookups in flight
	mu       sync.Mutex
	cache    map[string]hostAddr
	inflight map[string]bool
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

func newResolver(changed func()) *resolver {
	return &resolver{
		lookup: func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		},
		ttl:      time.Minute,
		negTTL:   10 * time.Second,
		timeout:  2 * time.Second,
		now:      time.Now,
		changed:  changed,
		sem:      make(chan struct{}, 16),
		cache:    map[string]hostAddr{},
		inflight: map[string]bool{},
	}
}

// resolve returns what the cache knows of hosts (a name it lacks is
// absent) and starts lookups of the names it lacks or holds past their
// time. Names not asked for are forgotten.
func (r *resolver) resolve(hosts map[string]bool) map[string]hostAddr {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]hostAddr, len(hosts))
	for h := range hosts {
		c, ok := r.cache[h]
		if ok {
			out[h] = c
		}
		if !ok || !now.Before(c.until) {
			r.refreshLocked(h)
		}
	}
	for h := range r.cache {
		if !hosts[h] {
			delete(r.cache, h)
		}
	}
	return out
}

// refreshDue starts lookups of the cached names past their time, so that
// a lost agent is found back and a moved one followed without a change of
// the desired state.
func (r *resolver) refreshDue() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, c := range r.cache {
		if !now.Before(c.until) {
			r.refreshLocked(h)
		}
	}
}

// refreshLocked looks h up in the background unless a lookup is in
// flight. Caller holds r.mu.
func (r *resolver) refreshLocked(h string) {
	if r.inflight[h] {
		return
	}
	r.inflight[h] = true
	go func() {
		r.sem <- struct{}{}
		a := r.lookupOne(h)
		<-r.sem
		r.mu.Lock()
		delete(r.inflight, h)
		last, had := r.cache[h]
		if a.err != nil && last.ip != "" {
			a = hostAddr{ip: last.ip, until: a.until}
		}
		r.cache[h] = a
		changed := !had || last.ip != a.ip || (last.err == nil) != (a.err == nil)
		r.mu.Unlock()
		if changed && r.changed != nil {
			r.changed()
		}
	}()
}

// lookupOne resolves host, preferring an IPv4 address: agents usually
// listen on both, and IPv4 is what a Mesos agent advertises.
func (r *resolver) lookupOne(host string) hostAddr {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
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

// isName reports whether host is a name to resolve, not an IP literal.
func isName(host string) bool { return net.ParseIP(host) == nil }
