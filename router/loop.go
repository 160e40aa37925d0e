package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/renameio/v2"
)

// loop is the state only Run's goroutine touches: the running HAProxy,
// what its configuration file says, and what its current worker holds.
type loop struct {
	r    *Router
	proc *proc

	file      *model // the model of the installed haproxy.cfg
	fileBytes []byte
	mapBytes  []byte
	mapOK     bool     // hosts.map holds mapBytes
	badBytes  []byte   // a configuration haproxy -c refused, not retried
	live      *live    // what the current worker holds
	tls       *tlsLive // certificates and redirects; nil without HTTPS

	dirty       bool      // the file may be behind the desired state
	dirtySince  time.Time // first change not yet written
	dueReload   bool      // the timer is armed for a reload
	reloadSince time.Time // first change that needs a reload

	checking   bool           // haproxy -c runs in the background
	flushAgain bool           // a flush was due while it ran
	stale      int            // validated configurations set aside in a row
	checked    chan candidate // haproxy -c's verdicts
}

// run applies updates until ctx ends. It returns ctx's error.
func (l *loop) run(ctx context.Context) error {
	r := l.r
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.kick:
			l.markDirty(timer, l.sync(ctx))
		case <-timer.C:
			l.dirty, l.dueReload = false, false
			l.flush(ctx)
		case c := <-l.checked:
			l.checkedConfig(ctx, c)
		case <-retry.C:
			l.r.res.refreshDue() // an answer that changes pokes the router
			if (l.live.pending() || l.tls.pending()) && l.sync(ctx) {
				l.markDirty(timer, true)
			}
		case <-l.proc.done:
			r.log.Error("haproxy exited, restarting", "pid", l.proc.pid, "err", l.proc.err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			p, err := r.startHAProxy(ctx)
			if err != nil {
				backoff = min(backoff*2, 5*time.Second)
				r.log.Error("restart haproxy", "err", err)
				// Keep waiting on the dead one's closed done channel.
				continue
			}
			backoff = 100 * time.Millisecond
			l.started(p)
			l.sync(ctx)
		}
	}
}

// markDirty arms the timer that writes the file, and reloads when
// reload is set: ReloadDebounce after the last change, at most
// ReloadMaxWait after the first one not yet written. Changes the runtime
// API already applied only need the file to catch up for the next start,
// so they wait for a quiet spell (persistDelay, at most persistMaxWait):
// haproxy -c on a large configuration takes a while, during which the
// loop would not apply instance changes.
func (l *loop) markDirty(timer *time.Timer, reload bool) {
	now := time.Now()
	if !l.dirty {
		l.dirty, l.dirtySince = true, now
	}
	var due time.Time
	switch {
	case reload:
		if !l.dueReload {
			l.dueReload, l.reloadSince = true, now
		}
		due = earliest(now.Add(l.r.cfg.ReloadDebounce), l.reloadSince.Add(l.r.cfg.ReloadMaxWait))
	case l.dueReload:
		return // the coming reload writes the file too
	default:
		due = earliest(now.Add(persistDelay), l.dirtySince.Add(persistMaxWait))
	}
	timer.Reset(max(time.Until(due), 0))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// The wait before the file catches up with runtime-only changes.
const (
	persistDelay   = 2 * time.Second
	persistMaxWait = 10 * time.Second
)

// started records a new master whose worker runs the installed file.
func (l *loop) started(p *proc) {
	l.proc = p
	l.setLive(newLive(l.file))
}

// setLive records a new worker, which loaded the files on disk.
func (l *loop) setLive(v *live) {
	l.live = v
	if l.tls != nil {
		l.tls.restarted()
	}
	l.r.mu.Lock()
	l.r.liveApps = v.apps()
	l.r.mu.Unlock()
	l.publish()
}

// publish tells the router what the worker routes now, when that changed:
// WaitRouted and the drains wait on it.
func (l *loop) publish() {
	if l.live.changed {
		l.r.setRoutes(l.live.routes())
	}
}

// sync brings the current worker's servers and map in step with the
// desired state through the runtime API; it returns whether backends must
// be added or removed, which only a reload can do.
func (l *loop) sync(ctx context.Context) bool {
	want := l.r.snapshot()
	reload := l.live.sync(ctx, l.r, want)
	if l.tls != nil {
		l.tls.sync(ctx, l.r, want)
	}
	l.publish()
	return reload
}

// flush writes the desired state to disk and reloads if the backends
// changed. haproxy -c runs in the background (it takes a while on a large
// configuration) while the loop goes on applying instance changes; the
// result comes back through l.checked.
func (l *loop) flush(ctx context.Context) {
	if l.checking {
		l.flushAgain = true
		return
	}
	m, gen := l.r.snapshotGen()
	c, err := l.prepare(m)
	c.gen = gen
	if errors.Is(err, errAlreadyRefused) {
		return
	}
	if err != nil {
		l.r.log.Error("configuration refused, the last good one keeps serving", "err", err)
		return
	}
	if c.tmp == "" { // nothing to validate
		l.afterInstall(ctx, c.m)
		return
	}
	l.checking = true
	go func() {
		c.err = l.r.checkConfig(ctx, c.tmp)
		l.checked <- c
	}()
}

// checkedConfig ends a flush once haproxy -c has answered.
func (l *loop) checkedConfig(ctx context.Context, c candidate) {
	l.checking = false
	if c.err == nil && l.live.needsReload(c.m) && c.gen != l.r.generation() && l.stale < maxStale {
		// The desired state moved while haproxy -c ran: a worker started
		// from this file would briefly route to instances already gone.
		// Render again (a few times at most, or churn would starve
		// reloads).
		l.stale++
		l.flush(ctx)
		return
	}
	l.stale = 0
	if err := l.commit(c); err != nil {
		l.r.log.Error("configuration refused, the last good one keeps serving", "err", err)
	} else {
		l.afterInstall(ctx, c.m)
	}
	if l.flushAgain {
		l.flushAgain = false
		l.flush(ctx)
	}
}

// afterInstall reloads when the installed file adds or removes backends.
func (l *loop) afterInstall(ctx context.Context, m *model) {
	r := l.r
	if !l.live.needsReload(m) {
		return
	}
	if err := l.reload(ctx); err != nil {
		r.mu.Lock()
		r.reloadErr = err
		r.mu.Unlock()
		r.log.Error("reload", "err", err)
		return
	}
	l.sync(ctx)
}

// candidate is a rendered configuration on its way to being installed.
type candidate struct {
	m   *model
	b   []byte
	tmp string // the temporary file to validate; "" if b is installed
	err error  // haproxy -c's verdict
	gen uint64 // the generation of the desired state m reflects
}

// maxStale bounds how many times in a row a validated configuration is
// set aside because the desired state moved on.
const maxStale = 3

// install renders m; when the bytes differ from the installed file it
// writes hosts.map and a temporary haproxy.cfg, validates it with haproxy
// -c and renames it into place. An invalid configuration is never
// installed: the error is kept for Err.
func (l *loop) install(ctx context.Context, m *model) error {
	c, err := l.prepare(m)
	if err != nil || c.tmp == "" {
		return err
	}
	c.err = l.r.checkConfig(ctx, c.tmp)
	return l.commit(c)
}

// prepare renders m and writes what must be validated.
func (l *loop) prepare(m *model) (candidate, error) {
	r := l.r
	b, err := r.rend.render(m)
	if err != nil {
		return candidate{}, l.refused(err)
	}
	r.mu.Lock()
	mutate := r.testMutate
	r.mu.Unlock()
	if mutate != nil {
		b = mutate(bytes.Clone(b))
	}
	s := r.settings
	mb := renderMap(m)
	if !l.mapOK || !bytes.Equal(mb, l.mapBytes) {
		// The map only matters when a worker starts; write it first so
		// that haproxy -c finds it.
		if err := writeFile(s.path(mapFile), mb); err != nil {
			return candidate{}, l.refused(err)
		}
		l.mapBytes, l.mapOK = mb, true
	}
	if bytes.Equal(b, l.fileBytes) {
		l.file = m
		return candidate{m: m}, nil
	}
	if l.badBytes != nil && bytes.Equal(b, l.badBytes) {
		return candidate{}, errAlreadyRefused
	}
	tmp := s.path(cfgFile + ".new")
	if err := writeFile(tmp, b); err != nil {
		return candidate{}, l.refused(err)
	}
	return candidate{m: m, b: b, tmp: tmp}, nil
}

// errAlreadyRefused: the same configuration was refused before and its
// error is already shown.
var errAlreadyRefused = errors.New("configuration already refused")

// commit installs a validated candidate, or keeps why it was refused.
func (l *loop) commit(c candidate) error {
	r := l.r
	if c.err != nil {
		os.Remove(c.tmp)
		l.badBytes = bytes.Clone(c.b)
		return l.refused(c.err)
	}
	if err := os.Rename(c.tmp, r.settings.path(cfgFile)); err != nil {
		return l.refused(err)
	}
	l.file, l.fileBytes, l.badBytes = c.m, c.b, nil
	r.mu.Lock()
	r.reloadErr = nil
	r.mu.Unlock()
	return nil
}

func (l *loop) refused(err error) error {
	err = fmt.Errorf("configuration not installed: %w", err)
	l.r.mu.Lock()
	l.r.reloadErr = err
	l.r.mu.Unlock()
	return err
}

// reload asks the master to reload the installed file and waits for the
// new worker. Old workers finish their requests (up to hard-stop-after).
func (l *loop) reload(ctx context.Context) error {
	r := l.r
	start := time.Now()
	old, err := r.admin.Pid(ctx)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if _, err := r.master.Cmd(ctx, "reload"); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := r.waitWorker(ctx, l.proc, old); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	// The master re-executed itself; wait until it answers again, so that
	// the next reload or stop finds it listening.
	if _, err := r.master.Workers(ctx); err != nil {
		return fmt.Errorf("reload: master: %w", err)
	}
	l.setLive(newLive(l.file))
	r.log.Debug("reloaded", "backends", len(l.file.backends), "took", time.Since(start))
	return nil
}

// writeFile writes b to path through a temporary file in the same folder,
// synced before the rename (renameio), so a reader never sees half a file.
func writeFile(path string, b []byte) error {
	return renameio.WriteFile(path, b, 0o644, renameio.WithStaticPermissions(0o644))
}
