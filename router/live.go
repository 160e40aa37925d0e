package router

import (
	"context"
	"errors"
	"maps"
	"strings"

	"github.com/flock-paas/flock/router/hap"
)

// live is what the current HAProxy worker holds: its backends with their
// servers, and its host map. It starts as the installed file's model and
// follows every runtime command that succeeded.
type live struct {
	backends map[string]*liveBackend
	hosts    map[string]string
	failed   bool // the last sync left something undone; retry it
	conflict bool // a wanted server's name is held by a parked one
	changed  bool // routing changed since routes last ran
}

type liveBackend struct {
	app     string
	check   check
	servers map[string]*liveServer
}

type liveServer struct {
	server
	// parked: in maintenance with checks off, out of the file. HAProxy
	// 2.6.12 (Debian 12) crashes on "del server" after some churn, so a
	// removed server stays parked until the next reload drops it.
	parked bool
}

// maxParked is how many parked servers a worker may hold before the
// router reloads to drop them.
const maxParked = 64

func newLive(m *model) *live {
	v := &live{backends: map[string]*liveBackend{}, hosts: map[string]string{}, changed: true}
	if m == nil {
		return v
	}
	for _, b := range m.backends {
		lb := &liveBackend{app: b.App, check: b.Check, servers: map[string]*liveServer{}}
		for _, s := range b.Servers {
			lb.servers[s.Name] = &liveServer{server: s}
		}
		v.backends[b.Name] = lb
	}
	maps.Copy(v.hosts, m.hosts)
	return v
}

// apps returns the apps whose backend the worker has.
func (v *live) apps() map[string]bool {
	out := make(map[string]bool, len(v.backends))
	for _, b := range v.backends {
		out[b.app] = true
	}
	return out
}

// routes returns what the worker routes, and marks it published.
func (v *live) routes() routes {
	out := routes{servers: make(map[string]map[string]bool, len(v.backends)), hosts: maps.Clone(v.hosts)}
	for name, b := range v.backends {
		in := make(map[string]bool, len(b.servers))
		for s, ls := range b.servers {
			if !ls.parked {
				in[s] = true
			}
		}
		out.servers[name] = in
	}
	v.changed = false
	return out
}

// pending reports whether the last sync failed somewhere.
func (v *live) pending() bool { return v.failed }

// parked counts the parked servers.
func (v *live) parked() int {
	n := 0
	for _, b := range v.backends {
		for _, s := range b.servers {
			if s.parked {
				n++
			}
		}
	}
	return n
}

// needsReload reports whether want has backends the worker lacks, lacks
// backends the worker has, or changes a backend's health check, or whether
// too many servers are parked.
func (v *live) needsReload(want *model) bool {
	if len(want.backends) != len(v.backends) || v.conflict || v.parked() > maxParked {
		return true
	}
	for _, b := range want.backends {
		lb, ok := v.backends[b.Name]
		if !ok || lb.check != b.Check {
			return true
		}
	}
	return false
}

// sync applies, through the runtime API, every difference between the
// worker and want that needs no reload: servers added, removed or put back
// in rotation in existing backends, and host map entries. Failures are
// logged and retried by a later sync.
func (v *live) sync(ctx context.Context, r *Router, want *model) bool {
	v.failed, v.conflict = false, false
	for i := range want.backends {
		b := &want.backends[i]
		lb, ok := v.backends[b.Name]
		if !ok || lb.check != b.Check {
			continue // needs a reload
		}
		v.syncServers(ctx, r, b, lb)
	}
	// Backends that are going away: take them out of the map now, delete
	// their servers at the next reload.
	for h, be := range v.hosts {
		if want.hosts[h] == be {
			continue
		}
		if err := r.admin.Do(ctx, "del map "+r.settings.path(mapFile)+" "+h); err != nil && !errors.Is(err, hap.ErrRefused) {
			r.log.Warn("del map", "host", h, "err", err)
			v.failed = true
			continue
		}
		delete(v.hosts, h)
		v.changed = true
	}
	byName := want.byName()
	for h, be := range want.hosts {
		if v.hosts[h] == be {
			continue
		}
		if lb, ok := v.backends[be]; !ok || lb.check != byName[be].Check {
			continue // the backend arrives with the next reload
		}
		if err := r.admin.Do(ctx, "add map "+r.settings.path(mapFile)+" "+h+" "+be); err != nil {
			r.log.Warn("add map", "host", h, "err", err)
			v.failed = true
			continue
		}
		v.hosts[h] = be
		v.changed = true
	}
	return v.needsReload(want)
}

// syncServers makes lb's servers those of b.
func (v *live) syncServers(ctx context.Context, r *Router, b *backend, lb *liveBackend) {
	log := r.log.With("app", b.App)
	want := make(map[string]server, len(b.Servers))
	for _, s := range b.Servers {
		want[s.Name] = s
	}
	for name, ls := range lb.servers {
		ws, ok := want[name]
		if ok && ws == ls.server {
			if ls.parked {
				// Wanted again before a reload dropped it.
				if err := enableServer(ctx, r.admin, b.Name+"/"+name); err != nil {
					log.Warn("put server back", "instance", name, "err", err)
					v.failed = true
					continue
				}
				ls.parked = false
				v.changed = true
			}
			continue
		}
		if ls.parked {
			continue
		}
		// Out of rotation: requests in flight finish, no new one comes.
		if err := r.admin.Do(ctx, "set server "+b.Name+"/"+name+" state maint"); err != nil {
			if isNoServer(err) {
				delete(lb.servers, name)
				v.changed = true
				continue
			}
			log.Warn("server to maintenance", "instance", name, "err", err)
			v.failed = true
			continue
		}
		// Its checks would only report a stopped instance as down.
		_ = r.admin.Do(ctx, "disable health "+b.Name+"/"+name)
		ls.parked = true
		v.changed = true
	}
	for name, s := range want {
		if ls, ok := lb.servers[name]; ok {
			if ls.server != s {
				// Same name, another address: only a reload can free the
				// name (see parked).
				log.Info("instance name held by a parked server until the next reload", "instance", name)
				v.conflict = true
			}
			continue
		}
		if err := addServer(ctx, r.admin, b, s); err != nil {
			log.Warn("add server", "instance", name, "err", err)
			v.failed = true
			continue
		}
		lb.servers[name] = &liveServer{server: s}
		v.changed = true
	}
}

// addServer adds a server to a running backend: it arrives in
// maintenance, its checks are turned on, then it takes traffic at once
// (Flock only routes to instances it saw healthy).
func addServer(ctx context.Context, api hap.Runtime, b *backend, s server) error {
	id := b.Name + "/" + s.Name
	var opts []string
	for _, o := range serverParams(b.Check, s) {
		opts = append(opts, o.String())
	}
	// "Already exists": a previous attempt added it, then failed later.
	if err := api.Do(ctx, "add server "+id+" "+s.Addr+" "+strings.Join(opts, " "), "New server registered.", "Already exists"); err != nil {
		return err
	}
	return enableServer(ctx, api, id)
}

// enableServer turns a server's checks on and puts it in rotation.
func enableServer(ctx context.Context, api hap.Runtime, id string) error {
	if err := api.Do(ctx, "enable health "+id); err != nil {
		return err
	}
	return api.Do(ctx, "enable server "+id)
}

func isNoServer(err error) bool {
	return err != nil && errors.Is(err, hap.ErrRefused) && strings.Contains(err.Error(), "No such server")
}
