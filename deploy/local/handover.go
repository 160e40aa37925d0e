package local

import (
	"context"
	"io"
	"sync"

	"github.com/flock-paas/flock/deploy"
)

// handover moves an app's traffic from its old instances to a new release
// as soon as every new instance has passed its check, instead of at the
// end of the new release's stability window: the new code (or the new
// config: `flock config set`) serves within a fraction of a second, while
// "live" is still said only once it has stayed up for the window.
//
// The old instances leave rotation (drained, as before they stop) but keep
// running through the window. If a new instance fails in it, undo puts
// them back in rotation before the new ones stop, so the failed deploy
// loses nothing; if none does, the deploy retires them as usual, already
// drained. It needs a Drainer that can undo a drain (deploy.Undrainer);
// without one, or without a window, the old instances stay in rotation
// until the new release is stable, as Flock did before.
type handover struct {
	s       *Scheduler
	app     string
	old     []*instance
	undr    deploy.Undrainer
	w       io.Writer
	rel     string
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (s *Scheduler) newHandover(app string, rel *release, old []*instance, w io.Writer) *handover {
	h := &handover{s: s, app: app, old: old, w: w, rel: rel.name}
	if u, ok := s.cfg.Drainer.(deploy.Undrainer); ok && rel.stable > 0 {
		h.undr = u
	}
	return h
}

// start takes the old instances out of rotation, in the background (a
// drain waits for their requests in flight to finish). It does nothing
// when the handover cannot be undone, or there is nothing to hand over.
func (h *handover) start() {
	if h.undr == nil || len(h.old) == 0 || h.started {
		return
	}
	h.started = true
	logf(h.w, "%s: serving; %d old instance(s) out of rotation, kept running for the stability window", h.rel, len(h.old))
	var ctx context.Context
	ctx, h.cancel = context.WithTimeout(context.Background(), drainLimit)
	for _, in := range h.old {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			if err := h.s.cfg.Drainer.Drain(ctx, h.app, in.snapshot()); err != nil && ctx.Err() == nil {
				h.s.log.Warn("handover: drain failed", "app", h.app, "instance", in.id, "err", err)
			}
		}()
	}
}

// wait returns once the old instances' drains are done.
func (h *handover) wait() {
	if !h.started {
		return
	}
	h.wg.Wait()
	h.cancel()
}

// undo stops the drains and, with restore, puts the old instances back
// in rotation. It reports whether it did.
func (h *handover) undo(restore bool) bool {
	if !h.started {
		return false
	}
	h.cancel()
	h.wg.Wait()
	if !restore {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainLimit)
	defer cancel()
	var wg sync.WaitGroup
	for _, in := range h.old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.undr.Undrain(ctx, h.app, in.snapshot()); err != nil {
				h.s.log.Warn("handover: undrain failed", "app", h.app, "instance", in.id, "err", err)
			}
		}()
	}
	wg.Wait()
	return true
}
