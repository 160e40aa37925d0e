package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// The waker proxies straight to instances, so HAProxy neither counts
// those requests nor drains them. The waker therefore keeps its own count
// of requests in flight per instance, drains like the router does (it is
// a deploy.Drainer, to be called after the router's) and tells the scaler
// how many connections it holds open per app (a websocket opened through
// a wake keeps its app awake).

// drainMemory is how long the waker remembers that an instance was
// drained; instance IDs are not reused, so this only bounds memory.
const drainMemory = 10 * time.Minute

type flight struct {
	app string
	n   int
}

// acquire counts a request in flight to in, unless in is being drained.
func (w *Waker) acquire(app string, in deploy.Instance) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.draining[in.ID]; ok {
		return false
	}
	f := w.inflight[in.ID]
	if f == nil {
		f = &flight{app: app}
		w.inflight[in.ID] = f
	}
	f.n++
	return true
}

func (w *Waker) release(in deploy.Instance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f := w.inflight[in.ID]; f != nil {
		f.n--
		if f.n <= 0 {
			delete(w.inflight, in.ID)
		}
	}
}

func (w *Waker) isDraining(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.draining[id]
	return ok
}

// Drain stops sending requests to in and waits (up to ctx) until the
// requests the waker proxied to it are done. Schedulers call it, after
// the router's Drain, before they stop an instance.
func (w *Waker) Drain(ctx context.Context, app string, in deploy.Instance) error {
	w.mu.Lock()
	now := time.Now()
	for id, at := range w.draining {
		if now.Sub(at) > drainMemory {
			delete(w.draining, id)
		}
	}
	w.draining[in.ID] = now
	if v, ok := w.verified[app]; ok && v.ID == in.ID {
		delete(w.verified, app)
	}
	w.mu.Unlock()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		w.mu.Lock()
		f := w.inflight[in.ID]
		w.mu.Unlock()
		if f == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain %s of %s in the waker: %w", in.ID, app, ctx.Err())
		case <-t.C:
		}
	}
}

// Undrain lets the waker send requests to in again (see deploy.Undrainer).
func (w *Waker) Undrain(_ context.Context, _ string, in deploy.Instance) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.draining, in.ID)
	return nil
}

// ActiveApps returns the apps the waker is proxying at least one request
// or connection to right now.
func (w *Waker) ActiveApps() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, f := range w.inflight {
		if f.n > 0 && !seen[f.app] {
			seen[f.app] = true
			out = append(out, f.app)
		}
	}
	return out
}

var (
	_ deploy.Drainer   = (*Waker)(nil)
	_ deploy.Undrainer = (*Waker)(nil)
)
