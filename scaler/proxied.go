package scaler

import (
	"context"
	"time"
)

// Proxied tells which apps have connections HAProxy cannot see: the waker
// proxies the requests it held straight to an instance while an app
// wakes, and a websocket opened then lasts as long as it likes.
// *backup.Waker implements it.
type Proxied interface {
	// ActiveApps returns the apps with at least one request or
	// connection proxied right now.
	ActiveApps() []string
}

// touchEvery is how often Run asks Proxied which apps are active.
const touchEvery = time.Second

// touchProxied counts the apps cfg.Proxied is proxying to as active
// (Touch), every touchEvery, until ctx ends. Without Proxied it just
// waits for ctx.
func (s *Scaler) touchProxied(ctx context.Context) {
	if s.cfg.Proxied == nil {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(touchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, app := range s.cfg.Proxied.ActiveApps() {
			s.Touch(app)
		}
	}
}
