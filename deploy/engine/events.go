package engine

import (
	"context"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Router is what the pipeline needs of the router; *router.Router
// implements it.
type Router interface {
	// WaitRouted returns once the router sends the app's host to the app.
	// A deploy waits for it (up to 10s) before it reports the release live,
	// so the URL it prints answers at once.
	WaitRouted(ctx context.Context, app string) error
	// Err says why the router does not route the app as asked (a refused
	// domain, a configuration HAProxy rejected); it shows as the app's
	// error. Empty when all is well.
	Err(app string) string
}

// Signer signs the slug URLs handed to schedulers, so that the artifact
// server serves them to machines without the token; *builder.Signer
// implements it.
type Signer interface {
	SignURL(url string) string
}

// HTTPSLinks gives an app's https:// URL when users should be sent there,
// else ""; cmd/flock's httpsLinks (the router's trusted certificates)
// implements it.
type HTTPSLinks interface {
	HTTPSURL(app string) string
}

// Subscribe returns a channel of events and a function that ends the
// subscription. A subscriber that does not keep up misses events (the
// channel is buffered and sends never block the platform).
func (s *Service) Subscribe() (<-chan deploy.Event, func()) {
	ch := make(chan deploy.Event, 256)
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(ch)
		}
		s.mu.Unlock()
	}
}

// publish sends e to every subscriber. Every event but traffic figures
// carries a snapshot of its app (deploy.Event.Snapshot): the router routes
// from it, and a drain learns of its successor from it without asking
// HAProxy. The app's publish lock keeps the events of one app in the order
// their snapshots were taken, so an older snapshot never overtakes a
// newer one.
func (s *Service) publish(e deploy.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if e.Type != "activity" && s.subscribed() {
		l, _ := s.pubLocks.LoadOrStore(e.App, &sync.Mutex{})
		l.(*sync.Mutex).Lock()
		defer l.(*sync.Mutex).Unlock()
		if e.Type != "destroyed" {
			if a, err := s.App(context.Background(), e.App); err == nil {
				e.Snapshot = &a
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// subscribed reports whether anyone listens: without subscribers no
// snapshot is taken.
func (s *Service) subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs) > 0
}
