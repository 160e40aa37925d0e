package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// gate is one wake (or one wait for a crashed app's new instance) of one
// app. Every request that arrives while no instance is healthy joins the
// app's open gate; one goroutine per gate wakes the app, probes its
// instances and opens the gate when the first one answers.
type gate struct {
	app     string
	started time.Time // arrival of the request that opened it
	poke    chan struct{}
	done    chan struct{} // closed when in or err is set

	held int // requests waiting, guarded by Waker.mu

	in  deploy.Instance
	err *pageError
}

func (g *gate) finished() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// hold queues the request on the app's gate and waits until the gate
// opens on a healthy instance, fails or the client goes away.
func (w *Waker) hold(ctx context.Context, app deploy.App, arrived time.Time) (deploy.Instance, error) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return deploy.Instance{}, shuttingDown()
	}
	g := w.gates[app.Name]
	if g == nil || g.finished() {
		g = &gate{app: app.Name, started: arrived, poke: make(chan struct{}, 1), done: make(chan struct{})}
		w.gates[app.Name] = g
		w.wg.Add(1)
		go w.runGate(g, app)
	}
	if g.held >= w.cfg.QueueSize {
		w.mu.Unlock()
		w.m.rejected.WithLabelValues(app.Name, "queue_full").Inc()
		return deploy.Instance{}, &pageError{status: http.StatusServiceUnavailable, retryAfter: 1,
			msg: app.Name + " is waking up and too many requests are waiting; try again in a moment"}
	}
	g.held++
	w.mu.Unlock()
	w.m.held.WithLabelValues(app.Name).Inc()
	defer func() {
		w.mu.Lock()
		g.held--
		w.mu.Unlock()
	}()
	select {
	case <-g.done:
		if g.err != nil {
			return deploy.Instance{}, g.err
		}
		return g.in, nil
	case <-ctx.Done():
		return deploy.Instance{}, ctx.Err()
	}
}

// heldCount reports how many requests wait on the app's gate.
func (w *Waker) heldCount(app string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if g := w.gates[app]; g != nil {
		return g.held
	}
	return 0
}

type probeResult struct {
	in deploy.Instance
	ok bool
}

// gateRun is the state of one runGate loop: what it asked of the
// platform, which probes are in flight, and the phase timings it reports.
type gateRun struct {
	w       *Waker
	g       *gate
	ctx     context.Context
	log     *slog.Logger
	results chan probeResult
	probing map[string]bool      // a probe is in flight
	probed  map[string]time.Time // when the last one began

	woke        time.Time // when our last Wake call returned
	awakeSince  bool      // the app was seen awake after our last Wake
	started     bool      // an instance was listed after our last Wake
	healthyFrom time.Time // start of the phase that ends at the first pass
	mayFail     bool      // a timeout may mark the app failed
}

// runGate wakes the app if it sleeps, then probes its instances every
// ProbeEvery until one passes its check, re-reading the app on each
// platform event and every refresh interval. It opens the gate on the
// first healthy instance, or fails it after Timeout.
func (w *Waker) runGate(g *gate, app deploy.App) {
	defer w.wg.Done()
	ctx, cancel := context.WithCancel(w.gatesCtx)
	defer cancel()
	timeout := time.NewTimer(w.cfg.Timeout)
	defer timeout.Stop()
	tick := time.NewTicker(w.cfg.ProbeEvery)
	defer tick.Stop()
	refreshEvery := min(max(10*w.cfg.ProbeEvery, 10*time.Millisecond), 250*time.Millisecond)
	lastRefresh := time.Now()
	r := &gateRun{w: w, g: g, ctx: ctx, log: w.log.With("app", g.app),
		results: make(chan probeResult), probing: map[string]bool{}, probed: map[string]time.Time{},
		healthyFrom: g.started, mayFail: true}
	for {
		if perr := r.step(app); perr != nil {
			w.finish(g, deploy.Instance{}, perr)
			return
		}
		refresh := false
		select {
		case res := <-r.results:
			delete(r.probing, res.in.ID)
			if res.ok {
				w.m.phase.WithLabelValues(g.app, "healthy").Observe(time.Since(r.healthyFrom).Seconds())
				r.log.Info("app has a healthy instance", "instance", res.in.ID, "waited", time.Since(g.started).Round(time.Millisecond))
				w.finish(g, res.in, nil)
				return
			}
		case <-tick.C:
			refresh = time.Since(lastRefresh) >= refreshEvery
		case <-g.poke:
			refresh = true
		case <-timeout.C:
			w.finish(g, deploy.Instance{}, r.timedOut(app))
			return
		case <-ctx.Done():
			w.finish(g, deploy.Instance{}, shuttingDown())
			return
		}
		if refresh {
			lastRefresh = time.Now()
			a, err := w.p.App(ctx, g.app)
			switch {
			case errors.Is(err, deploy.ErrNotFound):
				w.finish(g, deploy.Instance{}, &pageError{status: http.StatusNotFound, msg: "no app named " + g.app})
				return
			case err != nil:
				r.log.Warn("waker cannot read app; retrying", "err", err)
			default:
				app = a
			}
		}
	}
}

// step acts on the app as last read: wakes it if it sleeps, notes the
// phases, and starts a probe of every instance not probed lately. A
// non-nil result fails the gate.
func (r *gateRun) step(app deploy.App) *pageError {
	w, g := r.w, r.g
	if app.State == deploy.StateSleeping || app.State == deploy.StateFailed {
		// Wake once; again only if the app went back to sleep after our
		// wake (a sleep racing with it), or the platform has not taken
		// the first one after a second.
		if r.ctx.Err() == nil && (r.woke.IsZero() || r.awakeSince || time.Since(r.woke) > time.Second) {
			if perr := r.wake(); perr != nil {
				return perr
			}
		}
	} else if !r.woke.IsZero() {
		r.awakeSince = true
	}
	switch app.State {
	case deploy.StateStopped:
		return stoppedError(g.app)
	case deploy.StateDeploying:
		// The deploy pipeline owns the state of a deploying app.
		r.mayFail = false
	}
	if !r.woke.IsZero() && !r.started && app.State != deploy.StateSleeping && len(app.Instances) > 0 {
		// The scheduler lists the first instance: its process runs. What
		// follows, until it passes its check, is the app's boot.
		r.started, r.healthyFrom = true, time.Now()
		w.m.phase.WithLabelValues(g.app, "start").Observe(r.healthyFrom.Sub(r.woke).Seconds())
	}
	if app.State != deploy.StateSleeping {
		r.probeAll(app)
	}
	return nil
}

// wake asks the platform to wake the app and records the phase timings.
func (r *gateRun) wake() *pageError {
	w, g := r.w, r.g
	begin := time.Now()
	if r.woke.IsZero() {
		w.m.phase.WithLabelValues(g.app, "detect").Observe(begin.Sub(g.started).Seconds())
	}
	err := w.p.Wake(r.ctx, g.app)
	r.woke = time.Now()
	r.awakeSince, r.started = false, false
	r.healthyFrom = r.woke
	w.m.phase.WithLabelValues(g.app, "scale").Observe(r.woke.Sub(begin).Seconds())
	w.m.wakes.WithLabelValues(g.app).Inc()
	if err != nil {
		r.log.Warn("wake failed", "err", err)
		return wakeError(g.app, err)
	}
	r.log.Info("waking app")
	return nil
}

// probeAll starts a probe of each instance that has none in flight and
// was not probed within ProbeEvery, with the check HAProxy runs.
func (r *gateRun) probeAll(app deploy.App) {
	chk := app.Descriptor.RoutingCheck()
	for _, in := range app.Instances {
		if r.probing[in.ID] || time.Since(r.probed[in.ID]) < r.w.cfg.ProbeEvery || r.w.isDraining(in.ID) {
			continue
		}
		r.probing[in.ID], r.probed[in.ID] = true, time.Now()
		go func() {
			ok := r.w.probe(r.ctx, chk, in)
			select {
			case r.results <- probeResult{in: in, ok: ok}:
			case <-r.ctx.Done():
			}
		}()
	}
}

// timedOut fails the gate after Timeout, and the app with it unless a
// deploy owns its state.
func (r *gateRun) timedOut(app deploy.App) *pageError {
	w, g := r.w, r.g
	w.m.timedOut.WithLabelValues(g.app).Add(float64(w.heldCount(g.app)))
	reason := fmt.Sprintf("failed to wake within %s", human(w.cfg.Timeout))
	if r.woke.IsZero() && app.State != deploy.StateWaking {
		reason = fmt.Sprintf("no healthy instance within %s", human(w.cfg.Timeout))
	}
	if r.mayFail {
		w.p.Fail(g.app, reason)
	}
	r.log.Warn("wake timed out", "reason", reason)
	return &pageError{status: http.StatusGatewayTimeout,
		msg: fmt.Sprintf("%s failed to wake within %s", g.app, human(w.cfg.Timeout))}
}

// finish opens the gate on in, or fails it with perr.
func (w *Waker) finish(g *gate, in deploy.Instance, perr *pageError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g.in, g.err = in, perr
	if perr == nil {
		w.verified[g.app] = in
		delete(w.failedAt, g.app)
	} else if perr.status == http.StatusGatewayTimeout {
		w.failedAt[g.app] = time.Now()
	}
	close(g.done)
}

func wakeError(app string, err error) *pageError {
	switch {
	case errors.Is(err, deploy.ErrNotFound):
		return &pageError{status: http.StatusNotFound, msg: "no app named " + app}
	case errors.Is(err, context.Canceled):
		return shuttingDown()
	}
	return &pageError{status: http.StatusServiceUnavailable, retryAfter: 10, msg: fmt.Sprintf("%s could not be woken: %v", app, err)}
}

func shuttingDown() *pageError {
	return &pageError{status: http.StatusServiceUnavailable, retryAfter: 1, msg: "the platform is restarting"}
}

func stoppedError(app string) *pageError {
	return &pageError{status: http.StatusServiceUnavailable, retryAfter: 60, msg: app + " is stopped"}
}

// human prints whole seconds as "60s" instead of "1m0s".
func human(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
