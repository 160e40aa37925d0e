package scaler

import (
	"context"
	"fmt"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// ratioSlack absorbs float rounding when a share is compared with a ratio
// (9 of 10 overloaded must meet an up ratio of 0.9).
const ratioSlack = 1e-9

// appState is what the scaler remembers of one app between ticks.
type appState struct {
	state   deploy.State
	desired int

	// lastActive is the idle clock: the last sign of traffic, or when the
	// app was first seen or entered the running state.
	lastActive time.Time
	// lastRequest is the last request HAProxy saw, zero until one is seen.
	lastRequest time.Time

	// workers are the backend's counters in each HAProxy worker at the
	// previous tick (countRequests); hasBase is false until the first.
	workers []counters
	hasBase bool
	// requests counts the app's requests since Flock started
	// (flock_app_requests_total): the counters at first sight, then the
	// sum of every tick's increase.
	requests int64

	// servers holds each server's stot at the previous tick, for request
	// rates (autoscaled apps only).
	servers map[string]int64
	// changed is when the app's instance count last changed or it became
	// running: the start of the autoscaling cool-down.
	changed time.Time

	reported     deploy.Activity
	reportedOnce bool
}

// newAppState starts tracking an app: first sight counts as activity, so
// that a restart of Flock never puts every app to sleep at once.
func newAppState(app deploy.App, now time.Time) *appState {
	return &appState{state: app.State, desired: app.Desired, lastActive: now, changed: now}
}

// action is what a tick decided for one app; Tick carries it out without
// holding the scaler's lock (a sleep drains, which takes a while).
type action struct {
	app      string
	report   *deploy.Activity // activity to record, when it changed
	sleep    bool             // put the app to sleep
	scale    int              // new instance count, 0 for none
	from     int              // instance count before scale
	over     int              // overloaded running instances (for the log)
	running  int              // running instances (for the log)
	lastSeen time.Time        // last activity (for the log)
}

// decide updates one app's state from its backend's rows (merged over the
// workers) and counters (each worker's) and says what to do; found reports
// whether HAProxy has the backend at all.
func (s *Scaler) decide(app deploy.App, st *appState, rows []Row, cs []counters, found bool, now time.Time, elapsed time.Duration) action {
	act := action{app: app.Name, from: app.Desired}
	if app.State == deploy.StateRunning && st.state != deploy.StateRunning {
		// Deployed, woken or started by hand: a fresh idle period, and
		// time for the new instances to warm up before autoscaling.
		st.lastActive = later(st.lastActive, now)
		st.changed = now
	}
	if app.Desired != st.desired {
		st.changed = now // scaled by a user, a deploy or the waker
	}
	st.state, st.desired = app.State, app.Desired
	if !found {
		// No backend yet (or the router names it otherwise): nothing is
		// known, so nothing is decided.
		return act
	}
	rate := st.observe(rows, cs, now, elapsed)
	a := deploy.Activity{LastRequestAt: st.lastRequest, RequestRate: rate}
	if !st.reportedOnce || !a.LastRequestAt.Equal(st.reported.LastRequestAt) || a.RequestRate != st.reported.RequestRate {
		st.reported, st.reportedOnce = a, true
		act.report = &a
	}
	if idle(app, st, now) {
		act.sleep, act.lastSeen = true, st.lastActive
		return act
	}
	s.autoscale(app, st, rows, now, elapsed, &act)
	return act
}

// do carries out an action: the platform calls, outside the lock.
func (s *Scaler) do(ctx context.Context, act action) error {
	if act.report != nil {
		s.p.RecordActivity(act.app, *act.report)
	}
	switch {
	case act.sleep:
		if err := s.p.Sleep(ctx, act.app); err != nil {
			return fmt.Errorf("sleep %s: %w", act.app, err)
		}
		s.log.Info("app idle: put to sleep", "app", act.app, "lastActive", act.lastSeen)
	case act.scale > 0:
		if err := s.p.Scale(ctx, act.app, act.scale); err != nil {
			return fmt.Errorf("scale %s to %d: %w", act.app, act.scale, err)
		}
		s.log.Info("app autoscaled", "app", act.app, "from", act.from, "to", act.scale,
			"overloaded", act.over, "running", act.running)
	}
	return nil
}

// done records a carried-out action in the app's state.
func (st *appState) done(act action, now time.Time) {
	switch {
	case act.sleep:
		st.state = deploy.StateSleeping
	case act.scale > 0:
		st.desired, st.changed = act.scale, now
	}
}

// observe updates the app's activity from its backend's rows and each
// worker's counters, and returns the backend's request rate (requests per
// second since the last tick).
//
// Activity is: a counter (stot, req_tot) above its value at the last
// tick in some worker, or a worker that is new since (a reload), a current
// or queued session (a websocket or SSE stream keeps its app awake), or a
// last session (lastsess) more recent than known. A counter below its
// last value is a new baseline, and neither activity nor idleness.
func (st *appState) observe(rows []Row, cs []counters, now time.Time, elapsed time.Duration) float64 {
	var be *Row
	for i := range rows {
		if rows[i].Server == Backend {
			be = &rows[i]
			break
		}
	}
	if be == nil {
		return 0
	}
	var delta int64
	if n := st.countRequests(cs); st.hasBase {
		delta = n
		st.requests += n
	} else {
		// Flock runs its own HAProxy: at first sight, every request its
		// counters hold came since Flock started; but they are no sign of
		// activity now.
		st.requests += n
	}
	st.hasBase = true

	if be.LastSess >= 0 {
		// Seconds precision, and the most recent of every worker's.
		st.lastRequest = later(st.lastRequest, now.Add(-time.Duration(be.LastSess)*time.Second))
		st.lastActive = later(st.lastActive, st.lastRequest)
	} else if delta > 0 {
		st.lastRequest = now
	}
	if delta > 0 || be.Scur > 0 || be.Qcur > 0 {
		st.lastActive = now
	}
	if delta > 0 && elapsed > 0 {
		return float64(delta) / elapsed.Seconds()
	}
	return 0
}

// idle reports whether the app should go to sleep now: it runs with at
// least one instance wanted, may sleep (idle time set, minInstances 0 or
// unset), and showed no activity for its idle time.
func idle(app deploy.App, st *appState, now time.Time) bool {
	if app.State != deploy.StateRunning || app.Desired < 1 || app.IdleTimeout <= 0 {
		return false
	}
	if m := app.Descriptor.MinInstances; m != nil && *m > 0 {
		return false
	}
	return now.Sub(st.lastActive) >= app.IdleTimeout
}

// autoscale applies the load rule to an app that sets maxInstances: when
// at least UpRatio of its running instances are overloaded it adds Step
// (up to max), when at most DownRatio are it removes Step (down to min,
// and never below 1: going to zero is sleeping's job). After any change of
// the instance count it waits Cooldown.
func (s *Scaler) autoscale(app deploy.App, st *appState, rows []Row, now time.Time, elapsed time.Duration, act *action) {
	d := app.Descriptor
	if d.MaxInstances == nil || app.State != deploy.StateRunning || app.Desired < 1 {
		st.servers = nil
		return
	}
	lo := 1
	if d.MinInstances != nil && *d.MinInstances > lo {
		lo = *d.MinInstances
	}
	hi := max(*d.MaxInstances, lo)

	running, over := 0, 0
	servers := make(map[string]int64, len(rows))
	for _, r := range rows {
		if !r.IsServer() || r.Backup || !r.Up() {
			continue // summaries, the waker, drained or down instances
		}
		running++
		var rate float64
		if prev, ok := st.servers[r.Server]; ok && r.Stot >= prev && elapsed > 0 {
			rate = float64(r.Stot-prev) / elapsed.Seconds()
		}
		servers[r.Server] = r.Stot
		if r.Scur >= int64(s.cfg.TargetSessions) || (s.cfg.TargetRate > 0 && rate >= s.cfg.TargetRate) {
			over++
		}
	}
	st.servers = servers
	if running == 0 || now.Sub(st.changed) < s.cfg.Cooldown {
		return
	}
	share := float64(over) / float64(running)
	n := app.Desired
	switch {
	case share >= s.cfg.UpRatio-ratioSlack && n < hi:
		n = min(n+s.cfg.Step, hi)
	case share <= s.cfg.DownRatio+ratioSlack && n > lo:
		n = max(n-s.cfg.Step, lo)
	default:
		return
	}
	act.scale, act.over, act.running = n, over, running
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
