package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flock-paas/flock/deploy"

	"github.com/flock-paas/flock/router/hap"
)

// Drain takes the instance out of rotation (maintenance: no new request,
// those in flight go on) and waits until no HAProxy worker, old ones
// included, holds a session to it, up to ctx or DrainTimeout. While it is
// the app's only routed instance and the app is not going to zero, it
// stays in rotation until another is routed, up to a second (see
// awaitSuccessor). The server stays parked in maintenance until the next
// reload drops it. An instance the router never routed to drains at once;
// so does any when no HAProxy answers for 2 s. Draining an instance already out of rotation
// (as a rollout retires the old release after a handover) only waits for
// its sessions.
func (r *Router) Drain(ctx context.Context, app string, in deploy.Instance) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("drain %q: %w", app, deploy.ErrInvalid)
	}
	name, be := serverName(in), hap.BackendName(app)
	log := r.log.With("app", app, "instance", in.ID)
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DrainTimeout)
	defer cancel()
	if !r.isDrained(app, name) { // drained again: as it retires after a handover
		// Leaving, still in rotation: concurrent drains of the app do not
		// count it as a successor.
		r.markDrained(app, name, false)
		r.awaitSuccessor(dctx, app, be, name)
		r.markDrained(app, name, true)
		r.poke()
	}
	err := r.admin.Do(dctx, "set server "+be+"/"+name+" state maint")
	switch {
	case isNoServer(err) || isNoBackend(err):
		return nil
	case err != nil:
		// HAProxy is restarting or reloading: the loop keeps the server
		// out of every new worker; wait on the sessions anyway.
		log.Warn("drain: set maintenance", "err", err)
	}
	var failingSince time.Time
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		n, err := r.sessions(dctx, be, name)
		switch {
		case err == nil && n == 0:
			return nil
		case err == nil:
			failingSince = time.Time{}
		case failingSince.IsZero():
			failingSince = time.Now()
		case time.Since(failingSince) > 2*time.Second:
			// No HAProxy answers: nothing can route to the instance.
			log.Warn("drain: haproxy does not answer, not waiting", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s/%s: %w", app, in.ID, ctx.Err())
		case <-dctx.Done():
			log.Warn("drain: sessions still open after the grace period", "sessions", n, "grace", r.cfg.DrainTimeout)
			return nil
		case <-time.After(delay):
		}
	}
}

// Undrain puts an instance that Drain took out of rotation back in and
// waits (up to ctx, at most a second) until HAProxy routes to it again: a
// local rollout hands the app's traffic to a new release as soon as it
// passes its checks and gives it back this way when the new release fails
// within its stability window. The loop re-enables the parked server, or
// adds it again when a reload has dropped it.
func (r *Router) Undrain(ctx context.Context, app string, in deploy.Instance) error {
	if !deploy.ValidName(app) {
		return fmt.Errorf("undrain %q: %w", app, deploy.ErrInvalid)
	}
	name, be := serverName(in), hap.BackendName(app)
	r.mu.Lock()
	_, known := r.drained[app][name]
	if known {
		delete(r.drained[app], name)
		r.gen++
		r.signalLocked()
	}
	r.mu.Unlock()
	if !known {
		return nil // never drained, or gone since
	}
	r.poke()
	ctx, cancel := context.WithTimeout(ctx, successorWait)
	defer cancel()
	if err := r.await(ctx, func() bool { return !r.wantedLocked(app, name) || r.routes.servers[be][name] }); err != nil {
		return fmt.Errorf("undrain %s/%s: not routed yet: %w", app, in.ID, err)
	}
	return nil
}

// isDrained reports whether Drain has taken the app's server name out of
// rotation.
func (r *Router) isDrained(app, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drained[app][name]
}

// markDrained records that the app's server name is leaving; out says
// whether it is out of rotation yet (see Router.drained).
func (r *Router) markDrained(app, name string, out bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drained[app] == nil {
		r.drained[app] = map[string]bool{}
	}
	r.drained[app][name] = out
	if out {
		r.gen++
	}
	r.signalLocked()
}

// successorWait bounds how long a drain waits for the app's other
// instances to be routed before it takes this one out.
const successorWait = time.Second

// awaitSuccessor holds a drain back while the instance is the only one
// HAProxy routes the app to, until another one is routed, or the app is
// going to zero (asleep, stopped, destroyed), or successorWait passes. A
// rollout retires the old release the moment the new one is healthy; the
// router hears of the new instances through the platform's events a moment
// later and routes them: the drain waits for that, so the requests of that
// moment do not go to the waker. It waits on the router's own record of
// what HAProxy routes (routes), signalled when the loop applies a change.
func (r *Router) awaitSuccessor(ctx context.Context, app, be, name string) {
	ctx, cancel := context.WithTimeout(ctx, successorWait)
	defer cancel()
	_ = r.await(ctx, func() bool { return r.goingToZeroLocked(app) || !r.soleServerLocked(app, be, name) })
}

// goingToZeroLocked reports whether the desired state has the app without
// instances to route to (or without the app at all). r.mu is held.
func (r *Router) goingToZeroLocked(app string) bool {
	for _, a := range r.apps {
		if a.Name == app {
			return a.Desired == 0 || a.State == deploy.StateSleeping || a.State == deploy.StateStopped
		}
	}
	return true
}

// soleServerLocked reports whether name may be taking the backend's
// traffic, the current worker routing it or the desired state wanting it
// (a reload that adds it may be under way), while the current worker
// routes to no other server but the ones leaving. r.mu is held.
func (r *Router) soleServerLocked(app, be, name string) bool {
	servers := r.routes.servers[be]
	if !servers[name] && !r.wantedLocked(app, name) {
		return false // never routed: nothing to wait for
	}
	for srv := range servers {
		if _, leaving := r.drained[app][srv]; srv != name && !leaving {
			return false
		}
	}
	return true
}

// wantedLocked reports whether the desired state routes the app to the
// server name. r.mu is held.
func (r *Router) wantedLocked(app, name string) bool {
	return slices.Contains(r.wantedServersLocked(app), name)
}

// wantedServersLocked returns the servers the desired state routes the
// app to: its healthy instances not yet out of rotation by a drain. r.mu
// is held.
func (r *Router) wantedServersLocked(app string) []string {
	var out []string
	for _, a := range r.apps {
		if a.Name != app {
			continue
		}
		for _, in := range a.Instances {
			if name := serverName(in); in.Healthy && !r.drained[app][name] {
				out = append(out, name)
			}
		}
	}
	return out
}

func isNoBackend(err error) bool {
	return err != nil && errors.Is(err, hap.ErrRefused) && strings.Contains(err.Error(), "No such backend")
}

// sessions returns the current sessions of one server summed over every
// worker, so that requests held by old workers after a reload count too.
func (r *Router) sessions(ctx context.Context, be, srv string) (int, error) {
	all, err := r.statsAll(ctx, "show stat "+be+" 4 -1") // the backend's servers
	if err != nil {
		return 0, err
	}
	total := 0
	for _, w := range all {
		rows, err := hap.ParseBytes(w.CSV)
		if err != nil {
			return 0, err
		}
		for _, row := range rows {
			if row.Proxy == be && row.Server == srv {
				total += int(row.Scur)
			}
		}
	}
	return total, nil
}

// Workers returns each HAProxy worker's "show stat" CSV through the master
// socket, the current worker first, so that long-lived connections held
// by old workers after a reload stay visible: the scaler reads its stats
// here, and counts requests per worker (a worker's counters leave with
// it).
func (r *Router) Workers(ctx context.Context) ([]hap.WorkerStats, error) {
	return r.statsAll(ctx, "show stat")
}

// statsAll sends command, a "show stat", to every worker.
func (r *Router) statsAll(ctx context.Context, command string) ([]hap.WorkerStats, error) {
	pids, err := r.master.Workers(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var out []hap.WorkerStats
	for i, pid := range pids {
		w := hap.Runtime{Path: r.master.Path, Master: true, Prefix: "@!" + strconv.Itoa(pid) + " ", Trace: r.master.Trace}
		b, err := w.Cmd(ctx, command)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("stats of worker %d: %w", pid, err)
			}
			continue // an old worker that just left
		}
		out = append(out, hap.WorkerStats{Pid: pid, Current: i == 0, CSV: []byte(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("stats: no worker")
	}
	return out, nil
}
