package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/backup"
	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router"
	"github.com/flock-paas/flock/scaler"
)

// The loops below carry what one part of `flock up` learns to another.

// allStats reads every HAProxy worker's stats, old workers' too, so a
// connection an old worker still holds after a reload keeps its app awake.
func allStats(rt *router.Router) scaler.StatsFunc {
	return func(ctx context.Context) ([]byte, error) {
		ws, err := rt.StatsAll(ctx)
		if err != nil {
			return nil, err
		}
		var out []byte
		for _, w := range ws {
			out = append(out, w.CSV...)
		}
		return out, nil
	}
}

// keepProxiedAwake tells the scaler about requests HAProxy cannot see:
// those the waker proxies straight to an instance while an app wakes (a
// websocket opened then lasts as long as it likes).
func keepProxiedAwake(ctx context.Context, waker *backup.Waker, sc *scaler.Scaler) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, app := range waker.ActiveApps() {
			sc.Touch(app)
		}
	}
}

// feedRouter hands the router every app's state whenever something
// changes, bursts coalesced, and every few seconds in case an event was
// missed.
func feedRouter(ctx context.Context, svc *engine.Service, rt *router.Router) error {
	events, cancel := svc.Subscribe()
	defer cancel()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		if apps, err := svc.Apps(ctx); err == nil {
			rt.Update(apps)
		} else if ctx.Err() == nil {
			slog.Error("router feed", "err", err)
		}
		if !awaitRoutingChange(ctx, events, tick.C) {
			return nil
		}
		// Drain what else is already queued: one update covers them all.
	drain:
		for {
			select {
			case <-events:
			default:
				break drain
			}
		}
	}
}

// awaitRoutingChange waits for an event that may change routing (traffic
// figures do not) or the periodic tick; false when ctx ends.
func awaitRoutingChange(ctx context.Context, events <-chan deploy.Event, tick <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case e := <-events:
			if e.Type != "activity" {
				return true
			}
		case <-tick:
			return true
		}
	}
}
