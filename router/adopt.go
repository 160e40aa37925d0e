package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/flock-paas/flock/deploy/procgroup"
)

// adoptHAProxy takes over the master a previous Flock on the same Dir
// left running (Flock crashed or was killed): HAProxy served all along,
// and goes on serving. The master is not our child, so its exit is
// watched through a pidfd; its output goes on into haproxy.out, tailed
// from its current end. The caller reloads it with the configuration it
// installed, since what the old worker holds (servers changed through the
// runtime API) is not known: a master-worker reload hands the listening
// sockets to the new worker (expose-fd listeners) and lets the old one
// finish its requests, so no connection is refused.
func (r *Router) adoptHAProxy(pid int) (*proc, error) {
	// The watch names one process for good; it holds while it is still our master.
	exited, err := procgroup.Watch(pid, func() bool { return r.leftover() == pid })
	if err != nil {
		return nil, fmt.Errorf("adopt haproxy %d: %w", pid, err)
	}
	p := &proc{pid: pid, done: make(chan struct{}), logged: make(chan struct{})}
	go func() {
		<-exited
		p.err = errors.New("adopted master exited (status unknown)")
		close(p.done)
	}()
	var from int64
	if st, err := os.Stat(r.settings.path(outFile)); err == nil {
		from = st.Size()
	}
	go r.logLines(p, from)
	return p, nil
}

// checkFree refuses the listen addresses that another process holds.
// HAProxy binds with SO_REUSEPORT (so that a reload, or a replacement of
// a leftover master, binds beside the old one): next to another HAProxy,
// a second Flock's on another data dir say, it would bind too and share
// the port silently, each answering part of the other's requests with
// 404. A plain bind, as here, fails against any holder.
func (r *Router) checkFree() error {
	for _, a := range []struct{ flag, addr string }{
		{"--http", r.cfg.HTTPAddr}, {"--https", r.cfg.HTTPSAddr}, {"--stats", r.cfg.StatsAddr},
	} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("start haproxy: %s %s is in use by another process (another Flock?): %w", a.flag, a.addr, err)
		}
		if err != nil {
			return fmt.Errorf("start haproxy: %s %s: %w", a.flag, a.addr, err)
		}
		l.Close()
	}
	return nil
}

// adoptOrStart returns the running HAProxy: the master a previous Flock
// left, adopted and reloaded with the installed configuration, or else a
// new one. A leftover that cannot be adopted is replaced: the new master
// binds next to it (SO_REUSEPORT) and the leftover is stopped softly once
// the new one serves.
func (r *Router) adoptOrStart(ctx context.Context, l *loop) (*proc, error) {
	old := r.leftover()
	if old != 0 {
		p, err := r.adoptHAProxy(old)
		if err == nil {
			l.started(p)
			if err = l.reload(ctx); err == nil {
				r.log.Info("adopted haproxy left by a previous run", "pid", old)
				return p, nil
			}
		}
		r.log.Warn("cannot adopt haproxy left by a previous run; replacing it", "pid", old, "err", err)
	} else if err := r.checkFree(); err != nil {
		return nil, err
	}
	p, err := r.startHAProxy(ctx)
	if err != nil {
		return nil, err
	}
	if old != 0 {
		go stopGroup(r.log, old, nil, r.cfg.DrainTimeout)
	}
	l.started(p)
	return p, nil
}
